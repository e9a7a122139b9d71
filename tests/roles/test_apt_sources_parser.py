"""The apt sources reader the roles use (filter_plugins/apt_sources.py): one-line and deb822 files,
and the entries that already point at a repository, as NVIDIA's cuda-keyring package writes them."""

from __future__ import annotations

from role_support import load_plugin

NVIDIA = "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2204/x86_64/"


def _filters():
    return load_plugin("apt_sources", "filter_plugins", "apt_sources")


def test_the_cuda_keyring_source_is_found_with_its_keyring():
    filters = _filters()
    files = [
        {
            # The line NVIDIA's cuda-keyring package installs (its documented format).
            "path": "/etc/apt/sources.list.d/cuda-ubuntu2204-x86_64.list",
            "content": "deb [signed-by=/usr/share/keyrings/cuda-archive-keyring.gpg] "
            + NVIDIA
            + " /\n",
        },
        {
            "path": "/etc/apt/sources.list.d/ubuntu.sources",
            "content": "Types: deb\nURIs: http://archive.invalid/ubuntu\nSuites: jammy\n"
            "Components: main restricted\n\n"
            "# an admin's disabled copy, in deb822\n"
            "Types: deb\nEnabled: no\nURIs: " + NVIDIA.rstrip("/") + "\nSuites: /\n",
        },
    ]

    found = filters.labrig_apt_sources_for(filters.labrig_apt_sources(files), NVIDIA)

    assert [(entry["path"], entry["signed_by"]) for entry in found] == [
        (
            "/etc/apt/sources.list.d/cuda-ubuntu2204-x86_64.list",
            "/usr/share/keyrings/cuda-archive-keyring.gpg",
        )
    ]


def test_a_deb822_source_matches_without_its_trailing_slash_and_deb_src_never():
    filters = _filters()
    files = [
        {
            "path": "/etc/apt/sources.list.d/nvidia.sources",
            "content": "Types: deb\nURIs: "
            + NVIDIA.rstrip("/")
            + "\nSuites: /\nSigned-By: /etc/apt/keyrings/nvidia.gpg\n",
        },
        {"path": "/etc/apt/sources.list", "content": f"deb-src {NVIDIA} /\n# deb {NVIDIA} /\n"},
    ]

    found = filters.labrig_apt_sources_for(filters.labrig_apt_sources(files), NVIDIA)

    assert [entry["signed_by"] for entry in found] == ["/etc/apt/keyrings/nvidia.gpg"]


COMPONENTS = ["contrib", "non-free", "non-free-firmware"]


def test_archive_sources_lacking_components_deb822_and_one_line():
    filters = _filters()
    files = [
        {
            "path": "/etc/apt/sources.list.d/debian.sources",
            "content": "Types: deb deb-src\nURIs: http://mirror.invalid/debian\n"
            "Suites: bookworm bookworm-updates\nComponents: main contrib\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            "Types: deb\nEnabled: no\nURIs: http://off.invalid/debian\nSuites: bookworm\n"
            "Components: main\n\n"
            "Types: deb-src\nURIs: http://src.invalid/debian\nSuites: bookworm\nComponents: main\n",
        },
        {
            "path": "/etc/apt/sources.list",
            "content": "deb [arch=amd64] http://other.invalid/debian bookworm main\n"
            "# deb http://commented.invalid/debian bookworm main\n"
            "deb cdrom:[Debian 12]/ bookworm main\n"
            "deb http://full.invalid/debian bookworm main contrib non-free non-free-firmware\n"
            "deb http://nomain.invalid/debian bookworm contrib\n",
        },
    ]

    lacking = filters.labrig_debian_sources_lacking(files, COMPONENTS)

    assert lacking == [
        {
            "uris": "http://mirror.invalid/debian",
            "suites": "bookworm bookworm-updates",
            "components": ["non-free", "non-free-firmware"],
        },
        {"uris": "http://other.invalid/debian", "suites": "bookworm", "components": COMPONENTS},
    ]


def test_the_operators_own_sources_take_every_component():
    filters = _filters()
    explicit = [{"uris": "http://lab.invalid/debian", "suites": "trixie", "extra": 1}]

    lacking = filters.labrig_debian_sources_lacking([], COMPONENTS, explicit)

    assert lacking == [
        {"uris": "http://lab.invalid/debian", "suites": "trixie", "components": COMPONENTS}
    ]
