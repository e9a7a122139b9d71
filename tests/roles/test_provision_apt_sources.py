"""Repository lines the apt_sources role writes: Debian components next to the host's own sources,
NVIDIA's and Intel's repositories with signed-by keys, and the proxy setting."""


def test_debian_components_follow_the_hosts_own_sources(resolution):
    extra = resolution.value("debian12_defaults", "apt_sources_debian_extra_sources")
    assert extra == [
        {
            "uris": "http://mirror.invalid/debian",
            "suites": "bookworm bookworm-updates",
            "components": ["contrib", "non-free", "non-free-firmware"],
        },
        {
            "uris": "http://mirror.invalid/debian-security",
            "suites": "bookworm-security",
            "components": ["contrib", "non-free", "non-free-firmware"],
        },
        # contrib is already there: only what is missing is added. deb-src, disabled, commented
        # and cdrom entries are left alone.
        {
            "uris": "http://other.invalid/debian",
            "suites": "bookworm",
            "components": ["non-free", "non-free-firmware"],
        },
    ]
    text = resolution.value("debian12_defaults", "apt_sources_rendered")["debian"]
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in text
    assert text.count("Types: deb\n") == 3


def test_debian_sources_can_be_given_explicitly(resolution):
    extra = resolution.value(
        "debian12_open_nvidia_repo_openblas", "apt_sources_debian_extra_sources"
    )
    assert extra == [
        {
            "uris": "http://local-mirror.invalid/debian",
            "suites": "bookworm",
            "components": ["contrib", "non-free", "non-free-firmware"],
        }
    ]


def test_nvidia_repository_line_per_platform(resolution):
    base = "https://developer.download.nvidia.com/compute/cuda/repos"
    for case, slug in (
        ("debian12_defaults", "debian12"),
        ("ubuntu20_nvidia_repo_oneapi", "ubuntu2004"),
        ("ubuntu22_defaults", "ubuntu2204"),
        ("ubuntu24_runfiles_tarball", "ubuntu2404"),
    ):
        text = resolution.value(case, "apt_sources_rendered")["nvidia"]
        assert f"URIs: {base}/{slug}/x86_64/\n" in text, text
        assert "Suites: /\n" in text
        assert "Components" not in text
        assert "Signed-By: /etc/apt/keyrings/labrig-nvidia-cuda.asc" in text


def test_intel_repository_line(resolution):
    text = resolution.value("ubuntu20_nvidia_repo_oneapi", "apt_sources_rendered")["intel"]
    assert "URIs: https://apt.repos.intel.com/oneapi\nSuites: all\nComponents: main\n" in text
    assert "Signed-By: /etc/apt/keyrings/labrig-intel-oneapi.asc" in text


def test_proxy_setting(resolution):
    assert (
        'Acquire::http::Proxy "http://10.203.0.1:3142";'
        in (resolution.value("debian12_defaults", "apt_sources_rendered")["proxy"])
    )
    both = resolution.value("ubuntu22_server_open_atlas", "apt_sources_rendered")["proxy"]
    assert 'Acquire::https::Proxy "http://10.203.0.1:3128";' in both
    assert resolution.value("ubuntu22_defaults", "apt_sources_rendered")["proxy"] == ""
