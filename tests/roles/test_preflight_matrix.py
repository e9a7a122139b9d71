"""The preflight compatibility matrix, run through Ansible: each bad combination fails its host
with one line naming the variable to change; good ones pass and describe the GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from role_support import ROLES

DEBIAN12 = {"distribution": "Debian", "version": "12", "codename": "bookworm", "arch": "x86_64"}
UBUNTU22 = {"distribution": "Ubuntu", "version": "22.04", "codename": "jammy", "arch": "x86_64"}
UBUNTU20 = {"distribution": "Ubuntu", "version": "20.04", "codename": "focal", "arch": "x86_64"}
UBUNTU24 = {"distribution": "Ubuntu", "version": "24.04", "codename": "noble", "arch": "x86_64"}
DEBIAN13 = {"distribution": "Debian", "version": "13", "codename": "trixie", "arch": "x86_64"}
INTEL_AUDIO = "0000:00:1f.3 0x8086 0x51c8 0x040380"
RTX3090 = "0000:01:00.0 0x10de 0x2204 0x030000"
RTX3090_AUDIO = "0000:01:00.1 0x10de 0x1aef 0x040300"
V100 = "0000:3b:00.0 0x10de 0x1db4 0x030200"
H100 = "0000:17:00.0 0x10de 0x2331 0x030200"
RTX5090 = "0000:01:00.0 0x10de 0x2b85 0x030000"
UNKNOWN_NV = "0000:02:00.0 0x10de 0xffff 0x030000"
RTX_PRO_6000_BLACKWELL = "0000:01:00.0 0x10de 0x2bb1 0x030000"
# Cards named by the PCI id database alone (no hand table): device id -> (model, capability).
FROM_PCI_IDS = {
    "2503": ("GeForce RTX 3060", "8.6"),
    "24b0": ("RTX A4000", "8.6"),
    "2786": ("GeForce RTX 4070", "8.9"),
    "20b7": ("A30 PCIe", "8.0"),
    "2324": ("H800", "9.0"),
    "27b8": ("L4", "8.9"),
    "102d": ("Tesla K80", "3.7"),
}
PCI_IDS = Path(__file__).resolve().parents[1] / "fixtures" / "pci_ids"
DEBIAN_PCI_IDS = str(PCI_IDS / "debian12.ids")
NEWER_PCI_IDS = str(PCI_IDS / "lab-newer.ids")

# Every path on one roomy filesystem, as gather.yml reports it.
ROOMY = {
    path: {"mount": "/", "free_mib": 200000} for path in ("/", "/usr", "/opt", "/var", "/boot")
}

CHECKS = [{"ansible.builtin.include_role": {"name": "preflight", "tasks_from": "checks.yml"}}]


@pytest.fixture(scope="module")
def cudnn_wheel(tmp_path_factory) -> str:
    wheel = (
        tmp_path_factory.mktemp("wheels")
        / "nvidia_cudnn_cu11-8.9.6.50-py3-none-manylinux1_x86_64.whl"
    )
    wheel.write_bytes(b"not a real wheel: preflight only checks it exists")
    nccl = wheel.with_name("nvidia_nccl_cu11-2.21.5-py3-none-manylinux2014_x86_64.whl")
    nccl.write_bytes(b"not a real wheel either")
    # NVIDIA's CUDA 11 runtime wheels the pip lock pins (the cuda role's wheel method).
    lock = yaml.safe_load((ROLES / "labrig" / "files" / "pip-lock.yml").read_text())
    for line in lock["files"]["cuda11"]:
        name, version = line.split()[0].split("==")
        name = name.replace("-", "_")
        wheel.with_name(f"{name}-{version}-py3-none-manylinux2014_x86_64.whl").write_bytes(b"x")
    # The pinned CPython source (preflight checks the files are there).
    sources = wheel.parent.parent / "sources"
    sources.mkdir()
    for item in yaml.safe_load((ROLES / "labrig" / "vars" / "main.yml").read_text())[
        "__labrig_python_source"
    ]["files"]:
        (sources / item["name"]).write_bytes(b"not a real tarball")
    return str(wheel)


def _sources(wheel: str) -> str:
    return str(Path(wheel).parent.parent / "sources")


def good_debian13(wheel: str, **overrides) -> dict:
    """Debian 13 with the design card's GPU wheel: its own driver 550, the CUDA 11 runtime from
    NVIDIA's wheels, the pinned CPython 3.11."""
    host = good_debian(
        wheel,
        labrig_platform=DEBIAN13,
        mxnet_install_method="pip",
        labrig_wheelhouse=str(Path(wheel).parent),
        python_runtime_source_dir=_sources(wheel),
    )
    host.update(overrides)
    return host


def good_debian(cudnn_wheel: str, **overrides) -> dict:
    host = {
        "labrig_platform": DEBIAN12,
        "preflight_pci_devices": [INTEL_AUDIO, RTX3090, RTX3090_AUDIO],
        "preflight_secure_boot_output": "SecureBoot disabled",
        "preflight_filesystems": ROOMY,
        "cudnn_accept_license": True,
        "cudnn_wheel_file": cudnn_wheel,
        "cudnn_wheel_sha256": "a" * 64,
        "preflight_pci_ids_file": DEBIAN_PCI_IDS,
    }
    host.update(overrides)
    return host


def good_ubuntu22(**overrides) -> dict:
    host = {
        "labrig_platform": UBUNTU22,
        "preflight_pci_devices": [RTX3090],
        "preflight_secure_boot_output": "SecureBoot disabled",
        "preflight_filesystems": ROOMY,
        "cudnn_accept_license": True,
        "preflight_pci_ids_file": DEBIAN_PCI_IDS,
    }
    host.update(overrides)
    return host


# host name -> (overrides on a good Debian 12 host, or a full Ubuntu host, expected message part)
def cases(wheel: str) -> dict[str, tuple[dict, str | None]]:
    deb = lambda **kw: good_debian(wheel, **kw)  # noqa: E731
    return {
        "ok_debian_rtx3090": (deb(), None),
        "ok_ubuntu22_defaults": (good_ubuntu22(), None),
        "ok_unknown_device": (deb(preflight_pci_devices=[UNKNOWN_NV]), None),
        "ok_gpu_less_when_allowed": (
            deb(preflight_pci_devices=[INTEL_AUDIO], preflight_require_gpu=False),
            None,
        ),
        "ok_cpu_only": (
            deb(preflight_pci_devices=[], labrig_use_cuda=False, cudnn_accept_license=False),
            None,
        ),
        "ok_secure_boot_with_signing": (
            deb(
                preflight_secure_boot_output="SecureBoot enabled",
                nvidia_driver_secure_boot_signing="dkms_mok",
                nvidia_driver_mok_password="enrol-me",
            ),
            None,
        ),
        "bad_os": (
            deb(labrig_platform={**DEBIAN12, "distribution": "CentOS", "version": "7"}),
            "CentOS 7 is not supported",
        ),
        "bad_ubuntu1804": (
            deb(labrig_platform={**UBUNTU22, "version": "18.04"}),
            "Ubuntu 18.04 is not supported",
        ),
        "bad_arch": (
            deb(labrig_platform={**DEBIAN12, "arch": "aarch64"}),
            "architecture aarch64",
        ),
        "bad_no_gpu": (
            deb(preflight_pci_devices=[INTEL_AUDIO]),
            "set preflight_require_gpu: false",
        ),
        "bad_secure_boot": (
            deb(preflight_secure_boot_output="SecureBoot enabled"),
            "set nvidia_driver_secure_boot_signing: dkms_mok",
        ),
        "bad_signing_without_password": (
            deb(
                preflight_secure_boot_output="SecureBoot enabled",
                nvidia_driver_secure_boot_signing="dkms_mok",
            ),
            "set nvidia_driver_mok_password",
        ),
        "bad_cuda12": (deb(cuda_version="12.2"), "CUDA 12.2 cannot build or run MXNet 1.9.1"),
        "bad_driver_too_old": (
            deb(nvidia_driver_branch="515"),
            "set nvidia_driver_branch to 520 or newer",
        ),
        "bad_debian_branch": (deb(nvidia_driver_branch="550"), "ships driver branch 535 only"),
        "bad_open_modules_on_volta": (
            deb(preflight_pci_devices=[V100], nvidia_driver_kernel_modules="open"),
            "set nvidia_driver_kernel_modules: proprietary",
        ),
        "bad_driver_runfile_missing": (
            deb(nvidia_driver_install_method="runfile"),
            "needs nvidia_driver_runfile",
        ),
        "bad_ubuntu_distro_cuda": (
            good_ubuntu22(cuda_install_method="distro"),
            "CUDA 11.5, not 11.8; set cuda_install_method: nvidia_repo",
        ),
        "bad_debian_nvidia_repo_cuda": (
            deb(cuda_install_method="nvidia_repo"),
            "no CUDA 11.8 for Debian 12; set cuda_install_method: distro",
        ),
        "bad_cuda_runfile_missing": (deb(cuda_install_method="runfile"), "needs cuda_runfile"),
        "bad_gcc12": (deb(cuda_host_compiler="g++-12"), "set cuda_host_compiler: g++-11"),
        "bad_ubuntu20_gcc11": (
            good_ubuntu22(labrig_platform=UBUNTU20, cuda_host_compiler="g++-11"),
            "has no g++-11",
        ),
        "bad_blackwell": (
            deb(preflight_pci_devices=[RTX5090], preflight_pci_ids_file=NEWER_PCI_IDS),
            "sm_120 (GeForce RTX 5090) is newer than CUDA 11.8",
        ),
        "bad_blackwell_workstation": (
            deb(
                preflight_pci_devices=[RTX_PRO_6000_BLACKWELL],
                preflight_pci_ids_file=NEWER_PCI_IDS,
            ),
            "MXNet 1.9.1 cannot use this GPU at all; PyTorch can",
        ),
        "ok_blackwell_unknown_to_debians_pci_ids": (
            deb(preflight_pci_devices=[RTX_PRO_6000_BLACKWELL]),
            None,
        ),
        "ok_blackwell_named_by_the_lab": (
            deb(
                preflight_pci_devices=[RTX_PRO_6000_BLACKWELL],
                preflight_gpu_overrides={
                    "2bb1": {"model": "RTX PRO 6000", "compute_capability": "8.9"}
                },
            ),
            None,
        ),
        "ok_cards_from_the_pci_id_database": (
            deb(
                preflight_pci_devices=[
                    f"0000:{n:02x}:00.0 0x10de 0x{device} 0x030000"
                    for n, device in enumerate(FROM_PCI_IDS, start=1)
                ]
            ),
            None,
        ),
        "bad_hopper_cuda117": (
            good_ubuntu22(preflight_pci_devices=[H100], cuda_version="11.7"),
            "sm_90 needs CUDA 11.8",
        ),
        "bad_arch_override_cuda117": (
            good_ubuntu22(cuda_version="11.7", mxnet_cuda_arch=[86, 90]),
            "sm_90 needs CUDA 11.8",
        ),
        "bad_hopper_pip_wheel": (
            deb(preflight_pci_devices=[H100], mxnet_install_method="pip"),
            "set mxnet_install_method: source",
        ),
        "ok_gpu_wheel_with_nccl_in_the_wheelhouse": (
            deb(mxnet_install_method="pip", labrig_wheelhouse=str(Path(wheel).parent)),
            None,
        ),
        # NCCL from the hash-locked wheel on Ubuntu too (no libnccl2 pin fits every release there).
        "ok_gpu_wheel_with_nccl_wheel_on_ubuntu22": (
            good_ubuntu22(mxnet_install_method="pip", labrig_wheelhouse=str(Path(wheel).parent)),
            None,
        ),
        "bad_gpu_wheel_without_nccl_on_ubuntu22": (
            good_ubuntu22(mxnet_install_method="pip", labrig_wheelhouse="/nonexistent"),
            "no nvidia_nccl_cu11-2.21.5-*.whl in labrig_wheelhouse",
        ),
        # The documented inventory's choices on Ubuntu 24.04: the CUDA 11.8 runfile (no CUDA 11
        # in any apt repository there) and cuDNN 8 from the wheel (NVIDIA's ubuntu2404
        # repository has cuDNN 9 only).
        "ok_ubuntu24_defaults": (
            good_ubuntu22(
                labrig_platform=UBUNTU24,
                python_runtime_source_dir=_sources(wheel),
                cudnn_wheel_file=wheel,
                cudnn_wheel_sha256="a" * 64,
                cuda_runfile="/srv/labrig/cuda_11.8.0_520.61.05_linux.run",
                cuda_runfile_sha256="b" * 64,
            ),
            None,
        ),
        "ok_ubuntu24_gpu_wheel": (
            good_ubuntu22(
                labrig_platform=UBUNTU24,
                mxnet_install_method="pip",
                labrig_wheelhouse=str(Path(wheel).parent),
                cudnn_wheel_file=wheel,
                cudnn_wheel_sha256="a" * 64,
                python_runtime_source_dir=_sources(wheel),
            ),
            None,
        ),
        "ok_debian13_gpu_wheel": (good_debian13(wheel), None),
        "ok_debian13_torch_on_its_own_python": (
            good_debian13(
                wheel,
                labrig_framework="torch",
                labrig_use_cuda=False,
                python_runtime_source_dir="/nonexistent",
            ),
            None,
        ),
        "ok_debian13_prebuilt_python": (
            good_debian13(
                wheel,
                python_runtime_method="prebuilt",
                python_runtime_prebuilt_archive=wheel,
                python_runtime_prebuilt_sha256="c" * 64,
                python_runtime_source_dir="/nonexistent",
            ),
            None,
        ),
        "bad_debian13_cuda_source_build": (
            good_debian13(wheel, mxnet_install_method="source"),
            "has no CUDA 11 toolkit (its own is CUDA 12.4, which MXNet 1.9.1 cannot build with)",
        ),
        "bad_debian13_system_python": (
            good_debian13(wheel, python_runtime_method="system"),
            "MXNet 1.9.1 imports only under Python 3.11 or older",
        ),
        "bad_debian13_python_source_missing": (
            good_debian13(wheel, python_runtime_source_dir="/nonexistent"),
            "python3.11_3.11.2.orig.tar.gz, /nonexistent/python3.11_3.11.2-6+deb12u8.debian.tar.xz,"
            " which are not on the controller",
        ),
        "bad_debian13_cuda_wheels_missing": (
            good_debian13(wheel, labrig_wheelhouse="/nonexistent"),
            "nvidia_cuda_runtime_cu11-11.8.89-*.whl",
        ),
        "bad_debian13_branch": (
            good_debian13(wheel, nvidia_driver_branch="535"),
            "ships driver branch 550 only",
        ),
        "ok_ubuntu22_secure_boot_takes_the_signed_modules": (
            good_ubuntu22(preflight_secure_boot_output="SecureBoot enabled"),
            None,
        ),
        "bad_signed_modules_on_debian": (
            deb(nvidia_driver_secure_boot_signing="ubuntu_signed"),
            "installs Canonical's signed modules, which only Ubuntu's own driver packages have",
        ),
        "bad_gpu_wheel_without_nccl": (
            deb(mxnet_install_method="pip", labrig_wheelhouse="/nonexistent"),
            "no nvidia_nccl_cu11-2.21.5-*.whl in labrig_wheelhouse",
        ),
        "bad_license": (deb(cudnn_accept_license=False), "set cudnn_accept_license: true"),
        "bad_cudnn9_repo": (good_ubuntu22(cudnn_version="9.1.0.70"), "cuDNN 9.1.0.70 does not fit"),
        "bad_debian_cudnn_repo": (deb(cudnn_method="repo"), "set cudnn_method: wheel"),
        "bad_cudnn_wheel_missing": (
            deb(cudnn_wheel_file="/nonexistent/nvidia_cudnn_cu11-8.9.6.50-py3-none-any.whl"),
            "needs cudnn_wheel_file",
        ),
        "bad_oneapi_unverified": (
            deb(mkl_method="oneapi"),
            "set apt_sources_intel_key_fingerprint",
        ),
        "bad_disk": (
            deb(preflight_filesystems={**ROOMY, "/opt": {"mount": "/opt", "free_mib": 60}}),
            "60 MiB free on /opt but 9800 MiB go there"
            " (1800 MiB for cudnn in /opt, 8000 MiB for mxnet_source",
        ),
        "ok_disk_when_installed_already": (
            deb(
                preflight_filesystems={**ROOMY, "/opt": {"mount": "/opt", "free_mib": 60}},
                preflight_installed_components=["cudnn", "mxnet_source"],
            ),
            None,
        ),
    }


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory, cudnn_wheel):
    from role_support import run_tasks

    hosts = {name: host for name, (host, _) in cases(cudnn_wheel).items()}
    return run_tasks(
        tmp_path_factory.mktemp("preflight"),
        CHECKS,
        hosts,
        report_vars=("preflight_gpus", "preflight_plan", "preflight_required_mib"),
    )


def test_each_bad_combination_fails_with_its_message(matrix_run, cudnn_wheel):
    wrong = {}
    for name, (_, expected) in cases(cudnn_wheel).items():
        message = matrix_run.failure_message(name)
        if expected is None:
            if message is not None:
                wrong[name] = f"expected to pass, failed: {message}"
        elif message is None or expected not in message:
            wrong[name] = f"expected {expected!r}, got {message!r}"
        elif "\n" in message.strip() or not message.startswith("preflight: "):
            wrong[name] = f"message is not one 'preflight: ' line: {message!r}"
    assert not wrong, wrong


def test_gpus_are_described_from_the_pci_table(matrix_run):
    assert matrix_run.value("ok_debian_rtx3090", "preflight_gpus") == [
        {
            "pci_slot": "0000:01:00.0",
            "pci_id": "10de:2204",
            "model": "GeForce RTX 3090",
            "compute_capability": "8.6",
        }
    ]
    assert matrix_run.value("ok_gpu_less_when_allowed", "preflight_gpus") == []


def test_unknown_device_gets_empty_compute_capability(matrix_run):
    gpu = matrix_run.value("ok_unknown_device", "preflight_gpus")[0]
    assert gpu["pci_id"] == "10de:ffff"
    assert gpu["compute_capability"] == ""


def test_cards_are_named_and_placed_by_the_pci_id_database(matrix_run):
    gpus = matrix_run.value("ok_cards_from_the_pci_id_database", "preflight_gpus")
    found = {gpu["pci_id"][5:]: (gpu["model"], gpu["compute_capability"]) for gpu in gpus}
    assert found == FROM_PCI_IDS


def test_a_card_the_database_does_not_know_is_a_warning_naming_it(matrix_run):
    gpu = matrix_run.value("ok_blackwell_unknown_to_debians_pci_ids", "preflight_gpus")[0]
    assert (gpu["model"], gpu["compute_capability"]) == ("NVIDIA device 10de:2bb1", "")
    warning = matrix_run.result(
        "ok_blackwell_unknown_to_debians_pci_ids",
        "preflight : Warn about GPUs the PCI id database does not name",
    )
    message = warning["results"][0]["msg"]
    assert "10de:2bb1 at 0000:01:00.0 is not in" in message
    assert "falls back to archs 60, 70, 75, 80, 86" in message
    named = matrix_run.value("ok_blackwell_named_by_the_lab", "preflight_gpus")[0]
    assert (named["model"], named["compute_capability"]) == ("RTX PRO 6000", "8.9")


@pytest.mark.skipif(
    not Path("/usr/share/misc/pci.ids").is_file(), reason="no pci.ids on this controller"
)
def test_the_controllers_own_database_names_the_same_cards():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "roles/preflight/filter_plugins"))
    from pci_ids import labrig_nvidia_pci_names

    names = labrig_nvidia_pci_names(list(FROM_PCI_IDS), "/usr/share/misc/pci.ids")
    assert all(FROM_PCI_IDS[device][0] in name for device, name in names.items()), names


def test_platform_defaults_resolve_per_os(matrix_run):
    debian = matrix_run.value("ok_debian_rtx3090", "preflight_plan")
    ubuntu = matrix_run.value("ok_ubuntu22_defaults", "preflight_plan")
    assert (debian["cuda_method"], debian["cudnn_method"]) == ("distro", "wheel")
    assert (ubuntu["cuda_method"], ubuntu["cudnn_method"]) == ("nvidia_repo", "repo")
    assert debian["python_method"] == ubuntu["python_method"] == "system"
    # No CUDA 11 in the archive and a python3 newer than 3.11: the wheels and the pinned CPython.
    for host in ("ok_debian13_gpu_wheel", "ok_ubuntu24_gpu_wheel"):
        plan = matrix_run.value(host, "preflight_plan")
        assert (plan["cuda_method"], plan["python_method"]) == ("wheel", "source"), (host, plan)
    # ...and a source build on Ubuntu 24.04 takes the runfile's nvcc.
    assert matrix_run.value("ok_ubuntu24_defaults", "preflight_plan")["cuda_method"] == "runfile"
    torch = matrix_run.value("ok_debian13_torch_on_its_own_python", "preflight_plan")
    assert torch["python_method"] == "system"
    # A CPU-only stack needs no driver, toolkit or cuDNN space.
    assert matrix_run.value("ok_cpu_only", "preflight_required_mib") < matrix_run.value(
        "ok_debian_rtx3090", "preflight_required_mib"
    )


def test_an_unsupported_platform_is_reported_alone(matrix_run):
    # The rest of the matrix is per platform: it has no answer there.
    for host in ("bad_os", "bad_ubuntu1804"):
        assert " | " not in matrix_run.failure_message(host), matrix_run.failure_message(host)
