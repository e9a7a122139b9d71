#!/usr/bin/python
"""Package a built MXNet tree's Python binding, with its libmxnet.so, as one wheel.

Written here rather than with the tree's own python/setup.py: 1.9.1's setup.py puts libmxnet.so
in data_files (sys.prefix/mxnet), where its own libinfo never looks, and needs setuptools on the
build host. This wheel holds the package directory as it is (no bytecode, no other .so) and
libmxnet.so inside the package, where libinfo.find_lib_path() looks first. It is reproducible:
the same tree and stamp give the same bytes (sorted entries, fixed times), so its sha256 names the
build.
Its version carries the stamp (1.9.1+labrig.<first 12 hex digits>) and its dist-info the whole
stamp (labrig-build-stamp), which the controller's artifact cache checks (action mxnet_artifact).
"""

from __future__ import annotations

import base64
import hashlib
import os
import platform
import re
import tempfile
import zipfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: mxnet_wheel
short_description: Package a built MXNet binding and libmxnet.so as a reproducible wheel
description: See the module's docstring (roles/mxnet/library/mxnet_wheel.py).
options:
  package_dir: {type: path, required: true, description: "The tree's python/ (holds mxnet/)."}
  library: {type: path, required: true, description: The built libmxnet.so.}
  version: {type: str, required: true, description: MXNet's release, e.g. 1.9.1.}
  stamp: {type: str, required: true, description: The build stamp, 64 hex digits.}
  dest: {type: path, required: true, description: The wheel's directory (older ones removed).}
"""

STAMP_FILE = "labrig-build-stamp"
# Zip's earliest representable time: no build time in the bytes.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def wheel_version(version: str, stamp: str) -> str:
    return f"{version}+labrig.{stamp[:12]}"


def wheel_name(version: str, stamp: str, machine: str) -> str:
    return f"mxnet-{wheel_version(version, stamp)}-py3-none-linux_{machine}.whl"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def package_files(package_dir: str) -> list[tuple[str, str]]:
    """(archive name, path) of every file of the mxnet package, sorted; no bytecode, no .so."""
    root = os.path.join(package_dir, "mxnet")
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.endswith(".egg-info"))
        for name in files:
            if name.endswith((".pyc", ".pyo", ".so")) or name.startswith(".labrig"):
                continue
            path = os.path.join(folder, name)
            found.append((os.path.relpath(path, package_dir).replace(os.sep, "/"), path))
    return sorted(found)


def build_wheel(package_dir: str, library: str, version: str, stamp: str, out: str) -> None:
    """Write the wheel to `out`; the caller names it with wheel_name()."""
    dist_info = f"mxnet-{wheel_version(version, stamp)}.dist-info"
    entries: list[tuple[str, bytes, int]] = []
    for name, path in package_files(package_dir):
        with open(path, "rb") as handle:
            entries.append((name, handle.read(), 0o644))
    with open(library, "rb") as handle:
        entries.append(("mxnet/libmxnet.so", handle.read(), 0o755))
    metadata = (
        f"Metadata-Version: 2.1\nName: mxnet\nVersion: {wheel_version(version, stamp)}\n"
        "Summary: Apache MXNet built from source by labrig (one build shared by the hosts whose "
        "build stamp it carries)\n"
    )
    wheel = "Wheel-Version: 1.0\nGenerator: labrig mxnet_wheel\nRoot-Is-Purelib: false\n"
    wheel += f"Tag: py3-none-linux_{platform.machine()}\n"
    entries += [
        (f"{dist_info}/METADATA", metadata.encode(), 0o644),
        (f"{dist_info}/WHEEL", wheel.encode(), 0o644),
        (f"{dist_info}/{STAMP_FILE}", f"{stamp}\n".encode(), 0o644),
    ]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data, _ in entries)
    record += f"{dist_info}/RECORD,,\n"
    entries.append((f"{dist_info}/RECORD", record.encode(), 0o644))
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "package_dir": {"type": "path", "required": True},
            "library": {"type": "path", "required": True},
            "version": {"type": "str", "required": True},
            "stamp": {"type": "str", "required": True},
            "dest": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not re.fullmatch(r"[0-9a-f]{64}", params["stamp"]):
        module.fail_json(msg=f"mxnet_wheel: stamp {params['stamp']!r} is not 64 hex digits")
    for key in ("library", "package_dir"):
        if not os.path.exists(params[key]):
            module.fail_json(
                msg=f"mxnet_wheel: {key} {params[key]} does not exist: nothing to package"
            )
    name = wheel_name(params["version"], params["stamp"], platform.machine())
    path = os.path.join(params["dest"], name)
    if module.check_mode:
        module.exit_json(changed=True, name=name, path=path, sha256="")
    os.makedirs(params["dest"], mode=0o755, exist_ok=True)
    for old in os.listdir(params["dest"]):
        if old.startswith("mxnet-") and old.endswith(".whl") and old != name:
            os.unlink(os.path.join(params["dest"], old))
    handle, partial = tempfile.mkstemp(dir=params["dest"], suffix=".partial")
    os.close(handle)
    try:
        build_wheel(
            params["package_dir"], params["library"], params["version"], params["stamp"], partial
        )
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    module.exit_json(changed=True, name=name, path=path, sha256=sha256_of(path))


if __name__ == "__main__":
    main()
