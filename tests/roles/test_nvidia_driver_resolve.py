"""Driver package names per platform x method x module flavour, rendered by the role itself."""

import pytest


@pytest.mark.parametrize(
    ("case", "versioned", "dkms_module"),
    [
        ("debian12_defaults", ["nvidia-driver", "nvidia-kernel-dkms"], "nvidia-current"),
        ("debian12_open_nvidia_repo_openblas", ["cuda-drivers-535"], "nvidia-open"),
        ("ubuntu22_defaults", ["nvidia-driver-580", "nvidia-dkms-580"], "nvidia"),
        (
            "ubuntu22_server_open_atlas",
            ["nvidia-driver-535-server-open", "nvidia-dkms-535-server-open"],
            "nvidia",
        ),
        ("ubuntu20_nvidia_repo_oneapi", ["cuda-drivers-535"], "nvidia"),
        ("ubuntu24_runfiles_tarball", [], "nvidia"),
    ],
)
def test_driver_packages(resolution, case, versioned, dkms_module):
    plan = resolution.value(case, "nvidia_driver_plan")
    assert plan["versioned"] == versioned
    assert plan["dkms_module"] == dkms_module
    assert "dkms" in plan["support"]


def test_secure_boot_on_ubuntu_takes_canonicals_signed_modules_without_dkms(resolution):
    plan = resolution.value("ubuntu22_secure_boot", "nvidia_driver_plan")
    assert plan["versioned"] == ["nvidia-driver-580"]
    assert plan["support"] == ["linux-modules-nvidia-580-generic-hwe-22.04"]
    assert plan["dkms_module"] == ""


def test_debian_driver_brings_firmware_and_persistence_daemon(resolution):
    plan = resolution.value("debian12_defaults", "nvidia_driver_plan")
    assert "firmware-misc-nonfree" in plan["support"]
    assert plan["persistenced_packages"] == ["nvidia-persistenced"]
    # Libraries that must not move under a loaded module are held too, where installed.
    assert {"libcuda1", "libnvidia-ml1"} <= set(plan["hold_also"])


@pytest.mark.parametrize(
    ("case", "nvml"),
    [
        ("debian12_defaults", "535.216.03"),
        ("ubuntu22_defaults", "580.126.09"),
        ("debian12_open_nvidia_repo_openblas", "550.54.15"),
    ],
)
def test_expected_driver_version_is_in_nvml_form(resolution, case, nvml):
    assert resolution.value(case, "nvidia_driver_nvml_version") == nvml


@pytest.mark.parametrize(
    ("case", "version"),
    [
        ("debian12_defaults", "535.309.01-0+deb12u1"),
        ("ubuntu22_defaults", "580.126.09-0ubuntu0.22.04.1"),
        ("ubuntu22_server_open_atlas", "535.216.01-0ubuntu0.22.04.1"),
        ("ubuntu20_nvidia_repo_oneapi", "535.216.03-1"),
    ],
)
def test_version_to_pin_from_apt_policy(resolution, case, version):
    assert resolution.value(case, "nvidia_driver_resolved_version") == version
