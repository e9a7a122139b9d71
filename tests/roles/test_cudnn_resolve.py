"""cuDNN per method: repo pinned to the +cuda11.x build, the seed's tarball, the offline wheel."""


def test_repo_packages_are_pinned_to_the_cuda_build(resolution):
    plan = resolution.value("ubuntu22_defaults", "cudnn_plan")
    assert plan["method"] == "repo"
    assert plan["packages"] == [
        "libcudnn8=8.9.7.29-1+cuda11.8",
        "libcudnn8-dev=8.9.7.29-1+cuda11.8",
    ]
    older = resolution.value("ubuntu20_nvidia_repo_oneapi", "cudnn_plan")
    assert older["packages"][0] == "libcudnn8=8.6.0.163-1+cuda11.8"


def test_wheel_is_unpacked_under_its_version(resolution):
    plan = resolution.value("debian12_defaults", "cudnn_plan")
    assert plan["method"] == "wheel"
    assert plan["version"] == "8.9.6.50"
    assert plan["include_dir"] == "/opt/labrig/cudnn/8.9.6.50/nvidia/cudnn/include"
    assert plan["lib_dir"] == "/opt/labrig/cudnn/8.9.6.50/nvidia/cudnn/lib"


def test_tarball_goes_into_the_cuda_tree(resolution):
    plan = resolution.value("ubuntu24_runfiles_tarball", "cudnn_plan")
    assert plan["method"] == "tarball"
    assert plan["include_dir"] == "/usr/local/cuda-11.8/include"
    assert plan["lib_dir"] == "/usr/local/cuda-11.8/lib64"
