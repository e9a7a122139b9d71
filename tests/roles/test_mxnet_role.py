"""The mxnet role's logic, rendered through Ansible on localhost: config.mk as make reads it,
make -j from cores and memory, the expectations file, and the inputs it refuses."""

from __future__ import annotations

import getpass

import pytest
import yaml
from role_support import local_inventory, make_variables, run_playbook

NVCC_11_8 = {"stdout": "Cuda compilation tools, release 11.8, V11.8.89"}
CUDNN_WHEEL = "/opt/labrig/venv/lib/python3.11/site-packages/nvidia/cudnn"

SMALL_HOST = {
    "architecture": "x86_64",
    "processor_vcpus": 1,
    "memory_mb": {"nocache": {"free": 512}},
}

# host -> (host variables, facts of that host)
MATRIX = {
    "gpu_mkl_oneapi_turing_ampere": (
        {
            "labrig_use_cuda": True,
            "labrig_blas": "mkl",
            "labrig_gpus": [
                {"compute_capability": "7.5"},
                {"compute_capability": "8.6"},
                {"compute_capability": "8.6"},
            ],
            "__mxnet_nvcc": NVCC_11_8,
        },
        {"architecture": "x86_64", "processor_vcpus": 16, "memory_mb": {"nocache": {"free": 8192}}},
    ),
    "gpu_openblas_hopper_debian_toolkit": (
        {
            "labrig_use_cuda": True,
            "labrig_blas": "openblas",
            "labrig_gpus": [{"compute_capability": "9.0"}],
            "cuda_home": "/usr",
            "cudnn_include_dir": f"{CUDNN_WHEEL}/include",
            "cudnn_lib_dir": f"{CUDNN_WHEEL}/lib",
            "mxnet_use_nccl": True,
            "mxnet_nccl_path": "/opt/nccl",
            "__mxnet_nvcc": NVCC_11_8,
        },
        {"architecture": "x86_64", "processor_vcpus": 2, "memory_mb": {"nocache": {"free": 64000}}},
    ),
    "gpu_atlas_archs_overridden": (
        {
            "labrig_use_cuda": True,
            "labrig_blas": "atlas",
            "labrig_gpus": [{"compute_capability": "8.6"}],
            "mxnet_cuda_arch": [90, 75, 86],
            "mxnet_use_cudnn": False,
        },
        {"architecture": "x86_64", "processor_vcpus": 4, "memory_mb": {"nocache": {"free": 1500}}},
    ),
    "gpu_no_gpu_seen": (
        {"labrig_use_cuda": True, "labrig_blas": "openblas", "labrig_gpus": []},
        {
            "architecture": "x86_64",
            "processor_vcpus": 32,
            "memory_mb": {"nocache": {"free": 66560}},
        },
    ),
    "cpu_atlas_ubuntu_arm": (
        {
            "labrig_use_cuda": False,
            "labrig_blas": "atlas",
            "mxnet_extra_cflags": "-mcpu=native",
            "mxnet_use_opencv": False,
        },
        {"architecture": "aarch64", "processor_vcpus": 1, "memory_mb": {"nocache": {"free": 512}}},
    ),
    "cpu_mkl_debian_package": (
        {"labrig_use_cuda": False, "labrig_blas": "mkl", "mkl_root": "/usr", "mxnet_build_jobs": 6},
        {"architecture": "x86_64", "processor_vcpus": 1, "memory_mb": {"nocache": {"free": 512}}},
    ),
    # mxnet_mkl_lib_dirs is set by the fixture: a folder laid out like Debian's intel-mkl.
    "cpu_mkl_kernels": (
        {"labrig_use_cuda": False, "labrig_blas": "mkl", "mkl_root": "/usr"},
        {"architecture": "x86_64", "processor_vcpus": 1, "memory_mb": {"nocache": {"free": 512}}},
    ),
    "pip_cpu": ({"mxnet_install_method": "pip", "labrig_use_cuda": False}, SMALL_HOST),
    "pip_gpu": (
        {
            "mxnet_install_method": "pip",
            "labrig_use_cuda": True,
            "labrig_gpus": [{"compute_capability": "8.6"}],
        },
        SMALL_HOST,
    ),
}


REFUSED = {
    "jobs_not_an_int": ({"mxnet_build_jobs": "many"}, "mxnet_build_jobs"),
    "arch_not_an_int": ({"mxnet_cuda_arch": ["sm_86"]}, "mxnet_cuda_arch"),
    "unknown_method": ({"mxnet_install_method": "conda"}, "mxnet_install_method"),
    "unknown_blas": ({"labrig_blas": "blis"}, "labrig_blas"),
    "cuda_not_a_bool": ({"labrig_use_cuda": "perhaps"}, "labrig_use_cuda"),
    "wheel_on_hopper": (
        {
            "mxnet_install_method": "pip",
            "labrig_use_cuda": True,
            "labrig_gpus": [{"compute_capability": "8.6"}, {"compute_capability": "9.0"}],
        },
        "need mxnet_install_method=source",
    ),
    "commit_not_pinned": ({"mxnet_git_commit": "3f8f3be"}, "commit 3f8f3be"),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mxnet-render")
    hosts = {
        name: {
            **variables,
            "test_facts": facts,
            "mxnet_src_dir": str(workdir / name),
            "mxnet_expectations_dir": str(workdir / name / "expectations.d"),
        }
        for name, (variables, facts) in MATRIX.items()
    }
    play = {
        "name": "Render the mxnet role's config, -j and expectations",
        "hosts": "rendered",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Pretend facts",
                "ansible.builtin.set_fact": {
                    "cacheable": True,
                    **{key: f"{{{{ test_facts['{key}'] }}}}" for key in ("architecture",)},
                },
            },
            {
                "name": "Pretend cores and memory",
                "ansible.builtin.set_fact": {
                    "cacheable": True,
                    "processor_vcpus": "{{ test_facts['processor_vcpus'] | default(1) }}",
                    "memory_mb": "{{ test_facts['memory_mb'] }}",
                },
            },
            {
                "name": "Render",
                "ansible.builtin.include_role": {"name": "mxnet", "tasks_from": "config.yml"},
                "when": "mxnet_install_method | default('source') == 'source'",
                "vars": {"mxnet_owner": getpass.getuser()},
            },
            {
                # As build.yml does, on a host that builds.
                "name": "Write config.mk",
                "ansible.builtin.copy": {
                    "content": "{{ __mxnet_config_mk }}",
                    "dest": "{{ mxnet_src_dir }}/config.mk",
                    "mode": "0644",
                },
                "when": "mxnet_install_method | default('source') == 'source'",
            },
            {
                "name": "Jobs",
                "ansible.builtin.include_role": {"name": "mxnet", "tasks_from": "build_jobs.yml"},
            },
            {
                "name": "Expectations",
                "ansible.builtin.include_role": {"name": "mxnet", "tasks_from": "expectations.yml"},
            },
        ],
    }
    refusals = {
        "name": "Run the whole role with bad inputs, in check mode",
        "hosts": "refused",
        "gather_facts": False,
        "check_mode": True,
        "tasks": [{"name": "Role", "ansible.builtin.include_role": {"name": "mxnet"}}],
    }
    for name in hosts:
        (workdir / name).mkdir()
    mkl_libs = workdir / "mkl-libs"
    mkl_libs.mkdir()
    for library in MKL_LIBRARIES:
        (mkl_libs / library).touch()
    hosts["cpu_mkl_kernels"]["mxnet_mkl_lib_dirs"] = [str(mkl_libs)]
    inventory = local_inventory(hosts)
    inventory["all"]["children"] = {
        "rendered": {"hosts": dict.fromkeys(hosts)},
        "refused": {"hosts": {name: variables for name, (variables, _) in REFUSED.items()}},
    }
    run = run_playbook(workdir, [play, refusals], inventory)
    assert all(run.failure(host) is None for host in hosts), {
        host: run.failure_message(host) for host in hosts
    }
    return workdir, run


def _config(rendered, host):
    workdir, _ = rendered
    return make_variables(workdir / host / "config.mk")


def _expectations(rendered, host):
    workdir, _ = rendered
    return yaml.safe_load((workdir / host / "expectations.d" / "50-framework.yml").read_text())


def test_gpu_build_with_oneapi_mkl_targets_exactly_the_gpus_found(rendered):
    config = _config(rendered, "gpu_mkl_oneapi_turing_ampere")
    assert config["USE_CUDA"] == "1"
    assert config["USE_CUDA_PATH"] == "/usr/local/cuda"
    assert config["USE_CUDNN"] == "1"
    assert config["USE_NCCL"] == "0"
    assert config["ENABLE_CUDA_RTC"] == "1"
    assert config["CUDA_ARCH"].split() == [
        "-gencode",
        "arch=compute_75,code=sm_75",
        "-gencode",
        "arch=compute_86,code=[sm_86,compute_86]",
    ]
    assert config["USE_BLAS"] == "mkl"
    # oneAPI's layout bypasses USE_INTEL_PATH; static MKL would look under $(USE_INTEL_PATH)/mkl.
    assert config["USE_INTEL_PATH"] == "NONE"
    assert config["USE_STATIC_MKL"] == "NONE"
    assert config["ADD_CFLAGS"].split() == ["-I/opt/intel/oneapi/mkl/latest/include"]
    ldflags = config["ADD_LDFLAGS"].split()
    assert "-L/opt/intel/oneapi/mkl/latest/lib/intel64" in ldflags
    assert "-Wl,-rpath,/opt/intel/oneapi/mkl/latest/lib" in ldflags
    assert "-L/opt/intel/oneapi/mkl/latest/../../compiler/latest/lib" in ldflags  # libiomp5
    assert config["USE_LAPACK"] == "1"
    assert config["USE_LAPACK_PATH"] == "/usr/lib/x86_64-linux-gnu"
    assert config["USE_MKLDNN"] == "1"
    assert config["USE_INTGEMM"] == "1"
    assert config["INTGEMM_PATH"] == "3rdparty/intgemm"
    assert config["USE_OPENCV"] == "1"
    assert config["USE_OPENMP"] == "1"
    assert config["NVCC"] == "/usr/local/cuda/bin/nvcc"


def test_hopper_on_debians_toolkit_with_cudnn_from_its_wheel(rendered):
    config = _config(rendered, "gpu_openblas_hopper_debian_toolkit")
    assert config["CUDA_ARCH"].split() == ["-gencode", "arch=compute_90,code=[sm_90,compute_90]"]
    assert config["USE_CUDA_PATH"] == "/usr"
    assert config["NVCC"] == "/usr/bin/nvcc"
    assert config["USE_BLAS"] == "openblas"
    assert config["ADD_CFLAGS"].split() == [f"-I{CUDNN_WHEEL}/include"]
    assert config["ADD_LDFLAGS"].split() == [
        f"-L{CUDNN_WHEEL}/lib",
        f"-Wl,-rpath,{CUDNN_WHEEL}/lib",
    ]
    assert config["USE_NCCL"] == "1"
    assert config["USE_NCCL_PATH"] == "/opt/nccl"


def test_explicit_archs_win_over_the_gpus_found(rendered):
    config = _config(rendered, "gpu_atlas_archs_overridden")
    assert config["CUDA_ARCH"].split() == [
        "-gencode",
        "arch=compute_75,code=sm_75",
        "-gencode",
        "arch=compute_86,code=sm_86",
        "-gencode",
        "arch=compute_90,code=[sm_90,compute_90]",
    ]
    assert config["USE_CUDNN"] == "0"
    assert config["USE_BLAS"] == "atlas"


def test_no_gpu_seen_falls_back_to_the_common_archs(rendered):
    config = _config(rendered, "gpu_no_gpu_seen")
    archs = [flag.split("code=")[1] for flag in config["CUDA_ARCH"].split() if "code=" in flag]
    assert archs == ["sm_60", "sm_70", "sm_75", "sm_80", "[sm_86,compute_86]"]


def test_cpu_build_on_arm_ubuntu_paths(rendered):
    config = _config(rendered, "cpu_atlas_ubuntu_arm")
    assert config["USE_CUDA"] == "0"
    assert config["USE_CUDA_PATH"] == "NONE"
    assert config["USE_CUDNN"] == "0"
    assert config["CUDA_ARCH"] == ""
    assert config["USE_BLAS"] == "atlas"
    assert config["USE_LAPACK_PATH"] == "/usr/lib/aarch64-linux-gnu"
    assert config["USE_OPENCV"] == "0"
    assert config["ADD_CFLAGS"] == "-mcpu=native"
    assert config["ADD_LDFLAGS"] == ""


def test_cpu_build_with_debians_mkl_package(rendered):
    config = _config(rendered, "cpu_mkl_debian_package")
    assert config["ADD_CFLAGS"].split() == ["-I/usr/include/mkl"]
    assert config["ADD_LDFLAGS"].split() == [
        "-L/usr/lib/x86_64-linux-gnu",
        "-Wl,-rpath,/usr/lib/x86_64-linux-gnu",
    ]


MKL_LIBRARIES = [
    "libmkl_core.so",
    "libmkl_rt.so",
    "libmkl_intel_lp64.so",
    "libmkl_def.so",
    "libmkl_avx2.so",
    "libmkl_avx512.so",
    "libmkl_avx512_mic.so",
    "libmkl_mc3.so",
    "libmkl_vml_def.so",
    "libmkl_vml_avx512.so",
    "libmkl_vml_cmpt.so",
    "libmkl_avx2.so.2",
    "libmkl_core.a",
]


def test_mkls_cpu_kernels_are_linked_in_so_a_python_process_can_load_them(rendered):
    # Found by the real build: loaded by MKL's dlopen from a libmxnet.so that Python opened
    # RTLD_LOCAL, the kernels miss the core's symbols and the first GEMM aborts the process.
    ldflags = _config(rendered, "cpu_mkl_kernels")["ADD_LDFLAGS"].split()
    assert ldflags[2:] == [
        "-Wl,--push-state,--no-as-needed",
        "-lmkl_avx2",
        "-lmkl_avx512",
        "-lmkl_avx512_mic",
        "-lmkl_def",
        "-lmkl_mc3",
        "-lmkl_vml_avx512",
        "-lmkl_vml_cmpt",
        "-lmkl_vml_def",
        "-Wl,--pop-state",
    ]


def test_rendered_file_says_it_is_generated(rendered):
    workdir, _ = rendered
    head = (workdir / "cpu_atlas_ubuntu_arm" / "config.mk").read_text().splitlines()[:4]
    assert any("Generated by labrig" in line for line in head)


@pytest.mark.parametrize(
    ("host", "jobs"),
    [
        ("gpu_mkl_oneapi_turing_ampere", 3),  # 16 cores, 8 GB free: memory bounds it
        ("gpu_openblas_hopper_debian_toolkit", 2),  # 2 cores, 64 GB free: cores bound it
        ("gpu_atlas_archs_overridden", 1),  # 1.5 GB free: never below one job
        ("gpu_no_gpu_seen", 32),  # 65 GB free, 32 cores
        ("cpu_mkl_debian_package", 6),  # mxnet_build_jobs given
    ],
)
def test_make_jobs_from_cores_and_free_memory(rendered, host, jobs):
    _, run = rendered
    assert int(run.fact(host, "__mxnet_make_jobs")) == jobs


def test_expectations_of_a_source_gpu_build(rendered):
    assert _expectations(rendered, "gpu_mkl_oneapi_turing_ampere") == {
        "framework": "mxnet",
        "mxnet_features": {
            "CUDA": True,
            "CUDNN": True,
            "NCCL": False,
            "CUDA_RTC": True,
            "BLAS_OPEN": False,
            "BLAS_MKL": True,
            "BLAS_ATLAS": False,
            "LAPACK": True,
            "MKLDNN": True,
            "OPENCV": True,
            "OPENMP": True,
        },
        "mxnet_cuda_archs": [75, 86],
        "min_cuda_driver_version": "11.8",
    }


def test_expectations_of_a_source_cpu_build_have_no_cuda_keys(rendered):
    expected = _expectations(rendered, "cpu_atlas_ubuntu_arm")
    assert expected["mxnet_features"]["CUDA"] is False
    assert expected["mxnet_features"]["BLAS_ATLAS"] is True
    assert expected["mxnet_features"]["OPENCV"] is False
    assert "mxnet_cuda_archs" not in expected
    assert "min_cuda_driver_version" not in expected


def test_expectations_of_the_wheels(rendered):
    cpu = _expectations(rendered, "pip_cpu")
    assert cpu["mxnet_features"]["BLAS_OPEN"] is True
    assert cpu["mxnet_features"]["MKLDNN"] is True
    assert cpu["mxnet_features"]["CUDA"] is False
    assert "mxnet_cuda_archs" not in cpu
    gpu = _expectations(rendered, "pip_gpu")
    assert gpu["mxnet_features"]["CUDA"] is True
    assert gpu["mxnet_features"]["CUDNN"] is True
    assert gpu["mxnet_cuda_archs"] == [50, 60, 70, 80, 86]
    assert gpu["min_cuda_driver_version"] == "11.2"


def test_the_cpu_wheel_features_are_the_real_ones(rendered):
    """The pip expectations for the CPU wheel match mx.runtime.Features() of the installed wheel."""
    mxnet = pytest.importorskip("mxnet")
    real = {name: feature.enabled for name, feature in mxnet.runtime.Features().items()}
    for name, enabled in _expectations(rendered, "pip_cpu")["mxnet_features"].items():
        assert real[name] is enabled, name


def test_bad_inputs_are_refused_before_anything_runs(rendered):
    _, run = rendered
    for host, (_, message) in REFUSED.items():
        failure = run.failure(host)
        assert failure is not None, f"{host} was not refused"
        assert message in failure["msg"], (host, failure["msg"])
        assert run.stats[host]["changed"] == 0
