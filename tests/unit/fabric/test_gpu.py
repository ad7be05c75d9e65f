"""GPU facts and checks, on what nvidia-smi printed on a real 2x H200 machine (captured by the gpu_check run
on the device machine, tests/fixtures/gpu), and on copies of it with one fault planted each."""
import re
from pathlib import Path

import pytest

from ansible_collections.llmd.wide_ep.plugins.module_utils.fabric import gpu

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "gpu"
XML = (FIX / "h200x2-nvidia-smi-q-x.xml").read_text()
NVLINK = (FIX / "h200x2-nvlink-s.txt").read_text()
P = {"min_driver": "570.0.0", "gpu_count": 2, "min_busbw_gbps": 300}
BUSBW = {"busbw_gbps": 328.0, "world": 2, "size_mib": 1024, "iters": 20}


def checks(xml=XML, nvlink=NVLINK, xids=(), busbw=BUSBW, **over):
    return {c["check"]: c for c in gpu.evaluate(gpu.parse_smi_xml(xml), gpu.parse_nvlink_status(nvlink),
                                                list(xids), busbw, {**P, **over})}


def test_facts_from_a_real_h200_node():
    facts = gpu.parse_smi_xml(XML)
    assert (facts["driver_version"], facts["cuda_version"], facts["count"]) == ("580.159.04", "13.0", 2)
    g = facts["gpus"][0]
    assert (g["name"], g["persistence_mode"], g["ecc_mode"]) == ("NVIDIA H200", "Enabled", "Enabled")
    assert (g["ecc_uncorrectable_volatile"], g["remapped_rows_uncorrectable"], g["remapped_rows_pending"]) == \
        (0, 0, "No")
    assert (g["fabric_state"], g["memory_total_mib"]) == ("Completed", 143771)
    links = gpu.parse_nvlink_status(NVLINK)
    assert sorted(links) == [0, 1] and all(len(v) == 18 for v in links.values())   # H200 SXM: 18 NVLinks
    assert all(ln["up"] and ln["gbps"] == 26.562 for v in links.values() for ln in v)


def test_the_healthy_node_passes_every_check():
    assert {k: c["ok"] for k, c in checks().items()} == {
        "driver": True, "gpu count": True, "ecc": True, "xid": True, "nvlink": True, "nccl all-reduce": True}


@pytest.mark.parametrize("fault,check,detail", [
    (dict(xml=XML.replace("<dram_uncorrectable>0</dram_uncorrectable>",
                          "<dram_uncorrectable>3</dram_uncorrectable>", 1)),
     "ecc", "GPU 0: 3 uncorrectable ECC errors since the driver loaded"),
    (dict(xml=XML.replace("<remapped_row_pending>No</remapped_row_pending>",
                          "<remapped_row_pending>Yes</remapped_row_pending>", 1)),
     "ecc", "GPU 0: row remap pending (reset the GPU)"),
    (dict(nvlink=NVLINK.replace("Link 5: 26.562 GB/s", "Link 5: <inactive>", 1)), "nvlink", "GPU 0 link 5 down"),
    (dict(xids=gpu.parse_xids("[ 12.3] NVRM: Xid (PCI:0000:00:07): 79, pid=1234, GPU has fallen off the bus.")),
     "xid", "Xid 79 on 0000:00:07"),
    (dict(min_driver="590.1.0"), "driver", "driver 580.159.04 (minimum 590.1.0)"),
    (dict(gpu_count=8), "gpu count", "2 GPUs (NVIDIA H200), expected 8"),
    (dict(busbw=dict(BUSBW, busbw_gbps=120.5)), "nccl all-reduce", "120.5 GB/s bus bandwidth over 2 GPUs"),
])
def test_each_planted_fault_fails_its_check_only(fault, check, detail):
    result = checks(**fault)
    assert not result[check]["ok"] and detail in result[check]["detail"], result[check]
    assert all(c["ok"] for k, c in result.items() if k != check)


def test_benign_xids_and_an_unreadable_kernel_log_do_not_fail():
    benign = gpu.parse_xids("NVRM: Xid (PCI:0000:00:06): 13, pid=99, Graphics SM Warp Exception")
    assert benign == [{"bus_id": "0000:00:06", "xid": 13, "detail": "pid=99, Graphics SM Warp Exception"}]
    assert checks(xids=benign)["xid"]["ok"]
    unread = gpu.evaluate(gpu.parse_smi_xml(XML), None, "dmesg failed: Operation not permitted", None, P)
    assert {c["check"]: c["detail"] for c in unread}["xid"] == "not checked: dmesg failed: Operation not permitted"


def pcie_xml(name="NVIDIA H100 PCIe"):
    """The real node's output as a PCIe card would print it: another product name, no NVLink fabric."""
    return re.sub(r"<fabric>\s*<state>Completed</state>", "<fabric>\n\t\t\t<state>N/A</state>",
                  XML.replace("<product_name>NVIDIA H200</product_name>", "<product_name>%s</product_name>" % name))


def test_no_nvlink_on_an_sxm_board_is_a_failure_naming_each_gpu():
    result = checks(nvlink="")          # nvidia-smi nvlink -s printed nothing
    assert result["nvlink"]["status"] == "fail"
    assert "GPU 0 (it belongs to an NVLink fabric (fabric state Completed))" in result["nvlink"]["detail"]
    assert "GPU 1 (" in result["nvlink"]["detail"]
    # by name alone, where the driver reports no fabric state
    no_fabric = XML.replace("<state>Completed</state>", "<state>N/A</state>")
    result = checks(xml=no_fabric, nvlink="")
    assert result["nvlink"]["status"] == "fail"
    assert "NVIDIA H200 is an SXM module of an NVLink board" in result["nvlink"]["detail"]


def test_one_gpu_of_an_sxm_board_without_links_fails():
    only_gpu0 = NVLINK.split("GPU 1:")[0]
    result = checks(nvlink=only_gpu0)
    assert result["nvlink"]["status"] == "fail" and "GPU 1 (" in result["nvlink"]["detail"]
    assert "GPU 0 (" not in result["nvlink"]["detail"]


@pytest.mark.parametrize("name", ["NVIDIA H100 PCIe", "NVIDIA H200 NVL", "NVIDIA L40S"])
def test_pcie_cards_without_nvlink_say_skip_not_ok(name):
    result = checks(xml=pcie_xml(name), nvlink="")
    assert result["nvlink"]["status"] == "skip" and result["nvlink"]["ok"]
    assert "PCIe cards" in result["nvlink"]["detail"] and name in result["nvlink"]["detail"]
    assert gpu.report_lines([result["nvlink"]])[0].startswith("SKIP  nvlink")


def test_unmeasured_checks_say_skip_with_the_reason():
    one = gpu.evaluate(gpu.parse_smi_xml(XML), gpu.parse_nvlink_status(NVLINK), [],
                       "1 GPU on this host: an all-reduce needs at least 2", P)
    by = {c["check"]: c for c in one}
    assert by["nccl all-reduce"]["status"] == "skip"
    assert by["nccl all-reduce"]["detail"] == "not measured: 1 GPU on this host: an all-reduce needs at least 2"
    unread = {c["check"]: c for c in gpu.evaluate(gpu.parse_smi_xml(XML), gpu.parse_nvlink_status(NVLINK),
                                                  "dmesg failed", BUSBW, P)}
    assert unread["xid"]["status"] == "skip"
    lines = gpu.report_lines(one)
    assert [ln.split()[0] for ln in lines] == ["OK", "OK", "OK", "OK", "OK", "SKIP"]


def eight_gpu_xml():
    """An 8x H200 HGX board's nvidia-smi -q -x: the real node's first GPU entry eight times, each with the bus
    address and UUID of its own slot (HGX H200 PCIe addresses 18, 2a, 3a, 5d, 9a, ab, ba, db)."""
    head, rest = XML.split("<gpu id=", 1)
    first = "<gpu id=" + rest.split("</gpu>", 1)[0] + "</gpu>"
    tail = XML.rsplit("</gpu>", 1)[1]
    gpus = []
    for i, bus in enumerate(("18", "2a", "3a", "5d", "9a", "ab", "ba", "db")):
        entry = re.sub(r'<gpu id="[^"]+">', '<gpu id="00000000:%s:00.0">' % bus.upper(), first, count=1)
        gpus.append(re.sub(r"<uuid>[^<]+</uuid>", "<uuid>GPU-%08d-0000-0000-0000-000000000000</uuid>" % i, entry))
    return head.replace("<attached_gpus>2</attached_gpus>", "<attached_gpus>8</attached_gpus>") + \
        "\n\t".join(gpus) + tail


def test_facts_of_an_eight_gpu_board():
    facts = gpu.parse_smi_xml(eight_gpu_xml())
    assert facts["count"] == 8 and len(facts["gpus"]) == 8
    assert [g["bus_id"] for g in facts["gpus"]] == ["00000000:%s:00.0" % b for b in
                                                   ("18", "2a", "3a", "5d", "9a", "ab", "ba", "db")]
    assert len({g["uuid"] for g in facts["gpus"]}) == 8
    result = {c["check"]: c for c in gpu.evaluate(facts, None, [], None, {**P, "gpu_count": 8})}
    assert result["gpu count"]["ok"] and result["gpu count"]["detail"] == "8 GPUs (NVIDIA H200), expected 8"


def test_a_real_single_h200_vm_fails_nvlink_by_name_and_skips_the_all_reduce():
    """nvidia-smi of a one-GPU H200 VM (device machine, 2026-12-04): fabric state N/A and `nvlink -s` empty, so
    the SXM name decides; the gpu_check run there printed the report kept beside it (h200x1-gpu-check-report.txt)."""
    xml = (FIX / "h200x1-nvidia-smi-q-x.xml").read_text()
    facts = gpu.parse_smi_xml(xml)
    assert [g["name"] for g in facts["gpus"]] == ["NVIDIA H200"] and facts["gpus"][0]["fabric_state"] is None
    one = {c["check"]: c for c in gpu.evaluate(facts, None, [], "1 GPU on this host: an all-reduce needs at least 2",
                                               dict(P, gpu_count=1))}
    assert one["nvlink"]["status"] == "fail"
    assert one["nvlink"]["detail"].startswith("no NVLink reported on GPU 0 (NVIDIA H200 is an SXM module")
    assert one["nccl all-reduce"]["status"] == "skip"
    report = (FIX / "h200x1-gpu-check-report.txt").read_text()
    assert "FAIL  nvlink           no NVLink reported on GPU 0" in report
    assert "SKIP  nccl all-reduce  not measured: 1 GPU on this host" in report
