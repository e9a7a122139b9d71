"""BLAS packages per choice and MKL source, and the mkl_root other roles build against."""

import pytest


@pytest.mark.parametrize(
    ("case", "method", "install", "root"),
    [
        ("debian12_defaults", "distro", ["intel-mkl"], "/usr"),
        ("ubuntu22_defaults", "distro", ["intel-mkl"], "/usr"),
        (
            "debian12_open_nvidia_repo_openblas",
            "openblas",
            ["libopenblas-dev", "liblapack-dev"],
            "",
        ),
        ("ubuntu22_server_open_atlas", "atlas", ["libatlas-base-dev"], ""),
        (
            "ubuntu20_nvidia_repo_oneapi",
            "oneapi",
            ["intel-oneapi-mkl-devel=2024.2.1-103"],
            "/opt/intel/oneapi/mkl/latest",
        ),
    ],
)
def test_blas_packages_and_root(resolution, case, method, install, root):
    plan = resolution.value(case, "mkl_plan")
    assert plan["method"] == method
    assert plan["install"] == install
    assert plan["root"] == root
