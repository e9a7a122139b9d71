"""The suite against real recorded `nvidia-smi -q -x` dumps (tests/fixtures/real/).

Each dump's expected statuses were written by hand in verdicts.yml from reading the dump; here
`python -m verify --nvidia-smi-xml` (or `--snapshot` for the derived GPL figures) judges it and
every result is compared with its verdict.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from verify import cli, smi_xml
from verify import snapshot as snapshot_module

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
VERDICTS = yaml.safe_load((REAL / "verdicts.yml").read_text(encoding="utf-8"))
FIXTURES = sorted(name for name in VERDICTS if not name.startswith("_"))

# git blob ids of the byte-identical copies (SOURCES.md names their repositories and paths).
BLOBS = {
    "datakit-8x-v100s-pcie-32gb-460-v11.xml": "3ec65fa4749092cc660af1b214dd1c1bf7047320",
    "datakit-gtx-1050-515-noheader.xml": "2e3c63bc02099cb7e5c654df66d975c958c4ad62",
    "datakit-v100-pcie-32gb-460-v11.xml": "5d5be5165e5e7c09f88c16488b7336b0e10991ea",
    "pai-2x-rtx-2080-ti-410-v10.xml": "3d024e0cfcccd13a677dd35ef2ade221dde6d26c",
    "pai-4x-tesla-k80-azure-430-v10-ecc-retired.xml": "eff21c20fe787988935b48ac31895838e8826304",
    "pai-6x-gtx-1070-384-v9.xml": "8eeb918b6f75d158d16222c172858482c5253348",
    "pai-v100-sxm3-32gb-410-v10-ecc-retired.xml": "fa07d3f049fdea5527da7f5e060ec20753e65b04",
    "telegraf-a100-sxm4-80gb-mig-535-v12.xml": "29bf40cae9961b6cb8869df36589dae684a5f455",
    "telegraf-a10g-515-v11.xml": "77f3c17c8b239632458405a00dbeea1327f0551e",
    "telegraf-dual-rtx-2070-590-v13.xml": "9f163f0b47defb7117d26cb3509861a232a4e3fd",
    "telegraf-dual-rtx-2080-590-v13.xml": "fe839ae1deb224008291d619df569eb6005ddced",
    "telegraf-dual-rtx-a5000-590-v13.xml": "6fd436799b82ce4423819e0846345ecca3ee346b",
    "telegraf-grid-p4-1q-vgpu-513win-v11.xml": "f2be7d7aa52d2835249bbc88cd10fc5754edafb5",
    "telegraf-gt-1030-470-v11.xml": "954d5fbd8366346face43ceb1dfb1c8539773cbf",
    "telegraf-gtx-1660-ti-418-nodtd.xml": "1a6c7d0891935817c805c3e2433dc67ba5c6d721",
    "telegraf-quadro-p2000-525-v12.xml": "669113e7c3243ed18ceb43ef41034844e9c7dc4c",
    "telegraf-quadro-p400-418-nodtd.xml": "ca9e2191ec94f706cf1955bf712a0c264bb13cdd",
    "telegraf-rtx-3060-570-v12.xml": "fe442f419de31c90b4347e601c4f52bd82b7e6c8",
    "telegraf-rtx-3080-536win-v12.xml": "e427481ca62de9efdfb7f08d1cb3a57270def247",
    "telegraf-rtx-3080-595-v13.xml": "8f088f09283888a1ff6f9430c651bd2230a2e38f",
    "telegraf-rtx-3090-525-v12.xml": "405c34cde22a10558982b36bd2a3535b5bde0059",
    "telegraf-rtx-3090-590-v13.xml": "51d1e853dcbaf58f19d97176c79aacd8712f5417",
    "telegraf-rtx-4000-sff-ada-595-v13.xml": "bb951db81cfac54ffa2ada9226699e0261fd106c",
    "telegraf-rtx-pro-6000-blackwell-maxq-590-v13.xml": "8fdde4c6e021b0b08301e71dba8ae8457adcbefd",
    "telegraf-tesla-t4-512win-v11.xml": "78de605e872a33c8d3b5687f574c9d78628418ce",
    "telegraf-tesla-t4-515-v11.xml": "3a4e962ca8ff98bbb78b8a1e09e8fc6f143b75c6",
}


def expected_statuses(fixture: str) -> dict[str, str]:
    return {key: value for key, value in VERDICTS[fixture].items()}


def judge(fixture: str, tmp_path: Path) -> dict[str, Any]:
    """The JSON report `python -m verify` writes for this fixture (no expectations given)."""
    report = tmp_path / "report.json"
    source = "--nvidia-smi-xml" if fixture.endswith(".xml") else "--snapshot"
    argv = [source, str(REAL / fixture), "--json", str(report), "--no-color"]
    argv += ["--expectations-dir", str(tmp_path / "none")]
    with open(tmp_path / "terminal.txt", "w", encoding="utf-8") as terminal:
        code = cli.main(argv, stdout=terminal)
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["exit_code"] == code
    return data


def disagreements(fixture: str, report: dict[str, Any]) -> list[str]:
    verdicts = expected_statuses(fixture)
    found = []
    used = set()
    for check in report["checks"]:
        gpu_key = f"{check['check_id']}[gpu{check['gpu']}]"
        key = gpu_key if gpu_key in verdicts else check["check_id"]
        used.add(key)
        wanted = verdicts.get(key)
        if wanted != check["status"]:
            found.append(
                f"{gpu_key if check['gpu'] is not None else check['check_id']}: "
                f"verdict {wanted}, suite {check['status']} ({check['reason']})"
            )
    found += [f"{key}: verdict {verdicts[key]}, no result" for key in sorted(set(verdicts) - used)]
    return found


@pytest.mark.parametrize("fixture", FIXTURES)
def test_suite_agrees_with_the_hand_verdict(fixture: str, tmp_path: Path) -> None:
    report = judge(fixture, tmp_path)
    assert disagreements(fixture, report) == []
    blocking = {c["check_id"] for c in report["checks"] if c["status"] in ("failed", "error")}
    blocking -= {"gpu.persistence"}
    assert report["exit_code"] == (1 if blocking else 0)


def test_at_least_twelve_dumps_of_four_driver_generations() -> None:
    drivers = set()
    for fixture in FIXTURES:
        if fixture.endswith(".xml"):
            drivers.add(smi_xml.load(REAL / fixture)["source"]["driver_version"].split(".")[0])
        else:
            drivers.add(snapshot_module.load(REAL / fixture)["source"]["driver_version"][:3])
    assert len(FIXTURES) >= 12
    assert len({d[:2] for d in drivers}) >= 4, drivers


@pytest.mark.parametrize("name", sorted(BLOBS))
def test_xml_fixtures_are_byte_identical_to_their_sources(name: str) -> None:
    path = REAL / "xml" / name
    blob = subprocess.run(
        ["git", "hash-object", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert blob == BLOBS[name]


def test_every_xml_fixture_has_a_blob_and_a_verdict() -> None:
    on_disk = {path.name for path in (REAL / "xml").glob("*.xml")}
    assert on_disk == set(BLOBS)
    assert {f"xml/{name}" for name in on_disk} <= set(FIXTURES)
    for path in (REAL / "derived").glob("*.json"):
        assert f"derived/{path.name}" in FIXTURES
        source = snapshot_module.load(path)["source"]
        assert source["repository"] == "netdata/netdata" and source["licence"] == "GPL-3.0"
