"""`--nvidia-smi-xml`: every schema generation in the real dumps converts to the snapshot's NVML
answers, and a file that is not a dump stops the suite with one line (exit 2)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from verify import cli, smi_xml
from verify.checks import run_host_checks

XML = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "xml"


def gpu(name: str, index: int = 0) -> dict:
    return smi_xml.load(XML / name)["nvml"]["gpus"][index]


def val(device: dict, key: str):
    return device[key].get("value")


def test_throttle_and_event_reason_spellings_give_the_same_mask():
    # <= 525: clocks_throttle_reasons; >= 535: clocks_event_reasons (a v12 DTD has either).
    assert (
        val(gpu("telegraf-quadro-p2000-525-v12.xml"), "nvmlDeviceGetCurrentClocksEventReasons")
        == 0x1
    )
    assert (
        val(gpu("telegraf-rtx-3080-536win-v12.xml"), "nvmlDeviceGetCurrentClocksEventReasons")
        == 0x1
    )
    assert (
        val(gpu("telegraf-rtx-3090-590-v13.xml"), "nvmlDeviceGetCurrentClocksEventReasons") == 0x4
    )
    k80 = gpu("pai-4x-tesla-k80-azure-430-v10-ecc-retired.xml")
    assert val(k80, "nvmlDeviceGetCurrentClocksEventReasons") == 0x2
    counters = val(gpu("telegraf-rtx-3090-590-v13.xml"), "clocks_event_reasons_counters")
    assert counters["sw_power_cap"] == 9840338777


def test_power_readings_of_every_generation():
    # power_readings (<= 525), gpu_power_readings/power_draw (535), average/instant (570+).
    assert (
        val(gpu("pai-v100-sxm3-32gb-410-v10-ecc-retired.xml"), "nvmlDeviceGetPowerUsage") == 50600
    )
    assert val(gpu("telegraf-a100-sxm4-80gb-mig-535-v12.xml"), "nvmlDeviceGetPowerUsage") > 0
    ada = gpu("telegraf-rtx-4000-sff-ada-595-v13.xml")
    assert val(ada, "nvmlDeviceGetPowerUsage") == 8440
    assert val(ada, "nvmlDeviceGetEnforcedPowerLimit") == 70000
    gt1030 = gpu("telegraf-gt-1030-470-v11.xml")
    assert gt1030["nvmlDeviceGetPowerUsage"]["error"] == "NVMLError_NotSupported"


def test_ecc_counters_nested_flat_and_split():
    v100 = gpu("pai-v100-sxm3-32gb-410-v10-ecc-retired.xml")  # nested per memory unit
    assert val(v100, "nvmlDeviceGetTotalEccErrors:UNCORRECTED:VOLATILE") == 1
    assert val(v100, "nvmlDeviceGetTotalEccErrors:UNCORRECTED:AGGREGATE") == 7627
    t4 = gpu("telegraf-tesla-t4-515-v11.xml")  # flat sram_/dram_
    assert val(t4, "nvmlDeviceGetTotalEccErrors:UNCORRECTED:VOLATILE") == 0
    a5000 = gpu("telegraf-dual-rtx-a5000-590-v13.xml")  # 570+ split, ECC disabled: all N/A
    assert val(a5000, "nvmlDeviceGetEccMode") == [0, 0]
    assert a5000["nvmlDeviceGetTotalEccErrors:UNCORRECTED:VOLATILE"]["error"] == (
        "NVMLError_NotSupported"
    )


def test_retired_pages_and_remapped_rows_of_every_generation():
    v100 = gpu("pai-v100-sxm3-32gb-410-v10-ecc-retired.xml")
    assert val(v100, "nvmlDeviceGetRetiredPagesPendingStatus") == 1
    dbe = val(v100, "nvmlDeviceGetRetiredPages_v2:DOUBLE_BIT_ECC_ERROR")
    assert [page["address"] for page in dbe] == [0x44E99D, 0x1D9963]
    assert all(page["timestamp"] for page in dbe)
    # pending_blacklist is the older name of the same flag.
    k80 = gpu("pai-4x-tesla-k80-azure-430-v10-ecc-retired.xml", 1)
    assert val(k80, "nvmlDeviceGetRetiredPagesPendingStatus") == 0
    assert len(val(k80, "nvmlDeviceGetRetiredPages_v2:MULTIPLE_SINGLE_BIT_ECC_ERRORS")) == 1
    # remapped_rows: absent in v10, "N/A" (pre-Ampere, MIG), populated on Ampere+.
    assert v100["nvmlDeviceGetRemappedRows"]["error"] == "NotRecorded"
    a100 = gpu("telegraf-a100-sxm4-80gb-mig-535-v12.xml")
    assert a100["nvmlDeviceGetRemappedRows"]["error"] == "NVMLError_NotSupported"
    assert val(gpu("telegraf-a10g-515-v11.xml"), "nvmlDeviceGetRemappedRows") == [0, 0, 0, 0]
    ada = gpu("telegraf-rtx-4000-sff-ada-595-v13.xml")  # with the *_inactive fields
    assert val(ada, "nvmlDeviceGetRemappedRows") == [0, 0, 0, 0]
    assert val(ada, "nvmlDeviceGetRowRemapperHistogram")["max"] == 96


def test_link_generations_old_and_new():
    # <= 520: max_link_gen is already the lower of host and device.
    rig = gpu("pai-6x-gtx-1070-384-v9.xml", 1)
    assert val(rig, "nvmlDeviceGetMaxPcieLinkGeneration") == 2
    assert rig["nvmlDeviceGetGpuMaxPcieLinkGeneration"]["error"] == "NotRecorded"
    # 525+: the device's and the host's maxima are printed too.
    blackwell = gpu("telegraf-rtx-pro-6000-blackwell-maxq-590-v13.xml")
    assert val(blackwell, "nvmlDeviceGetMaxPcieLinkGeneration") == 4
    assert val(blackwell, "nvmlDeviceGetGpuMaxPcieLinkGeneration") == 5
    assert val(blackwell, "pcie_host") == {
        "max_gen": 4,
        "max_width": None,
        "source": "nvidia-smi -q -x",
    }
    assert val(gpu("telegraf-tesla-t4-515-v11.xml"), "nvmlDeviceGetCurrPcieLinkWidth") == 8


def test_mig_and_t_limit_temperatures():
    a100 = gpu("telegraf-a100-sxm4-80gb-mig-535-v12.xml")
    assert val(a100, "nvmlDeviceGetMigMode") == [1, 1]
    assert val(a100, "mig_devices") == 4
    # Ada: 38 °C now, 49 °C below T.Limit, slowdown 2 °C past it.
    ada = gpu("telegraf-rtx-4000-sff-ada-595-v13.xml")
    assert val(ada, "nvmlDeviceGetTemperatureThreshold:SLOWDOWN") == 38 + 49 + 2
    assert val(ada, "nvmlDeviceGetTemperatureThreshold:SHUTDOWN") == 38 + 49 + 7


def test_windows_and_vgpu_answers_are_unsupported_never_passed():
    t4 = gpu("telegraf-tesla-t4-512win-v11.xml")
    assert t4["nvmlDeviceGetPersistenceMode"]["error"] == "NVMLError_NotSupported"
    processes = val(t4, "nvmlDeviceGetComputeRunningProcesses")
    assert len(processes) == 15 and {p["usedGpuMemory"] for p in processes} == {None}
    vgpu = smi_xml.load(XML / "telegraf-grid-p4-1q-vgpu-513win-v11.xml")
    results = run_host_checks(vgpu, {}, only=["gpu"])
    assert "passed" not in {r.status.value for r in results if r.check_id != "gpu.xid"}


def test_gpus_with_one_anonymised_uuid_are_told_apart_by_bus_id():
    snapshot = smi_xml.load(XML / "telegraf-dual-rtx-2080-590-v13.xml")
    gpus = snapshot["nvml"]["gpus"]
    assert len({val(g, "nvmlDeviceGetUUID") for g in gpus}) == 1
    assert [val(g, "nvmlDeviceGetPciInfo_v3")["busId"] for g in gpus] == [
        "00000000:01:00.0",
        "00000000:02:00.0",
    ]


def test_dump_without_declaration_or_doctype_and_the_source_record():
    snapshot = smi_xml.load(XML / "datakit-gtx-1050-515-noheader.xml", host="bundle-17")
    assert snapshot["host"] == "bundle-17"
    assert snapshot["source"]["dtd"] is None and snapshot["source"]["driver_version"] == "515.65.01"
    assert snapshot["recorded"] == "2022-09-01T15:20:22"
    trimmed = smi_xml.load(XML / "pai-v100-sxm3-32gb-410-v10-ecc-retired.xml")
    assert trimmed["nvidia_smi"]["attached_gpus"] == 16 and trimmed["nvidia_smi"]["gpu_count"] == 1


# --- The command line -----------------------------------------------------------------------------


def run(argv: list[str], capsys, tmp_path: Path) -> tuple[int, str, str]:
    code = cli.main([*argv, "--expectations-dir", str(tmp_path / "none"), "--no-color"])
    out, err = capsys.readouterr()
    return code, out, err


def test_judging_a_dump_writes_json_and_junit(tmp_path, capsys):
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    dump = XML / "pai-v100-sxm3-32gb-410-v10-ecc-retired.xml"
    argv = ["--nvidia-smi-xml", str(dump), "--json", str(report), "--junit", str(junit)]
    code, out, _ = run(argv, capsys, tmp_path)
    assert code == 1
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["host"] == dump.stem and data["source"]["kind"] == "nvidia-smi -q -x"
    [workload] = [c for c in data["checks"] if c["check_id"] == "workload"]
    assert workload["status"] == "skipped" and "recorded dump" in workload["reason"]
    assert data["summary"]["first_failure"]["check_id"] == "gpu.ecc"
    failing = {c["check_id"] for c in data["checks"] if c["status"] == "failed"}
    assert failing == {"gpu.ecc", "gpu.retired_pages"}
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert cases["gpu.retired_pages[gpu0]"].find("failure") is not None
    assert "page retirement pending" in out


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"<nvidia_smi_log><gpu>", "is not well-formed XML (line 1"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "is not well-formed XML"),
        (b'<?xml version="1.0"?><html><body/></html>', "root element <html>"),
        (
            b'<?xml version="1.0"?><!DOCTYPE nvidia_smi_log [<!ENTITY a "aaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;">]><nvidia_smi_log>&b;</nvidia_smi_log>',
            "internal DTD subset, which is refused",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">'
            b"<nvidia_smi_log>&undefined;</nvidia_smi_log>",
            "the XML entity &undefined;, which is refused",
        ),
    ],
)
def test_a_file_that_is_not_a_dump_is_exit_2_with_one_line(content, said, tmp_path, capsys):
    path = tmp_path / "bundle.xml"
    path.write_bytes(content)
    code, out, err = run(["--nvidia-smi-xml", str(path)], capsys, tmp_path)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"verify: {path}") and said in err
    assert "Traceback" not in err


def test_a_missing_dump_is_exit_2(tmp_path, capsys):
    code, _, err = run(["--nvidia-smi-xml", str(tmp_path / "nope.xml")], capsys, tmp_path)
    assert code == 2 and "cannot read nvidia-smi dump" in err and err.count("\n") == 1


def test_a_dump_cannot_be_combined_with_a_snapshot(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--nvidia-smi-xml", "a.xml", "--snapshot", "b.json"])
    assert stop.value.code == 2
