"""CUDA toolkit packages and paths per platform x method, rendered by the role itself."""

import pytest


@pytest.mark.parametrize(
    ("case", "method", "packages", "lib_dir"),
    [
        (
            "debian12_defaults",
            "distro",
            ["nvidia-cuda-toolkit", "nvidia-cuda-dev"],
            "/usr/lib/x86_64-linux-gnu",
        ),
        ("ubuntu22_defaults", "nvidia_repo", ["cuda-toolkit-11-8"], "/usr/local/cuda-11.8/lib64"),
        (
            "ubuntu20_nvidia_repo_oneapi",
            "nvidia_repo",
            ["cuda-toolkit-11-8"],
            "/usr/local/cuda-11.8/lib64",
        ),
        ("ubuntu24_runfiles_tarball", "runfile", [], "/usr/local/cuda-11.8/lib64"),
    ],
)
def test_toolkit_method_packages_and_paths(resolution, case, method, packages, lib_dir):
    plan = resolution.value(case, "cuda_plan")
    assert plan["method"] == method
    assert plan["packages"] == packages
    assert plan["lib_dir"] == lib_dir


def test_debian_cuda_home_is_found_on_the_host_not_assumed(resolution):
    # Debian's toolkit has no fixed prefix: environment.yml probes cuda_debian_home_candidates.
    assert resolution.value("debian12_defaults", "cuda_plan")["home"] == ""
    assert resolution.value("ubuntu22_defaults", "cuda_plan")["home"] == "/usr/local/cuda-11.8"


@pytest.mark.parametrize(
    ("case", "compiler"),
    [
        ("debian12_defaults", "g++-11"),
        ("ubuntu20_nvidia_repo_oneapi", "g++-9"),
        ("ubuntu22_defaults", "g++-11"),
        ("ubuntu24_runfiles_tarball", "g++-11"),
    ],
)
def test_host_compiler_is_gcc_11_or_older(resolution, case, compiler):
    assert resolution.value(case, "cuda_host_compiler") == compiler


def test_the_runfile_installer_gets_the_libxml2_it_links(resolution):
    # cuda-installer links libxml2.so.2, which a minimal Ubuntu 24.04 does not have.
    assert resolution.value("ubuntu24_runfiles_tarball", "cuda_plan")["installer_packages"] == [
        "libxml2"
    ]
