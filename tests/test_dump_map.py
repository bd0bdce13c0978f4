"""The dump map: the verifier's evidence agrees with its verdicts, the SVG shows each verdict in its
colour with hover titles, and a 300-block dump stays readable in a real browser."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from browser import browser_page

from harness.dump import KernelDump, TriageDumpSpec, write_triage_dump
from harness.report import dump_map
from harness.report.dump_map import COLOURS, DumpMapFiles, map_path, render_dump_map
from harness.runner import run_scenario
from harness.scenario import load_scenario_file
from harness.scenario.model import DumpExpect
from harness.targets import TargetFactory
from harness.verify import BufferView, DumpContext, check_dump
from harness.verify import evidence as evidence_module
from harness.verify.evidence import dump_evidence

SVG = "{http://www.w3.org/2000/svg}"
GUID = uuid.UUID("6b1f5a0e-8c1d-4c35-9a57-4c4b44480001")
OTHER_GUID = "0f0e0d0c-0b0a-0908-0706-050403020100"
BASE = 0xFFFF_8000_0000_0000
BUFFERS = {
    "kept": BufferView("kept", BASE + 0x1000, b"kept|" * 6 + b"ke"),
    "changed": BufferView("changed", BASE + 0x2000, b"changed|changed|"),
    "lost": BufferView("lost", BASE + 0x3000, b"lost|lost|lost|l"),
    "secret": BufferView("secret", BASE + 0x4000, b"secret|secret|se"),
    "gone": BufferView("gone", BASE + 0x5000, b"gone|gon"),
}
EXPECT = {
    "contains": ["kept", "changed", "lost"],
    "excludes": ["secret", "gone"],
    "secondary_data": [
        {"guid": str(GUID), "hex": "78 79 7A"},
        {"guid": OTHER_GUID},
        {"guid": str(GUID), "absent": True},
        {"guid": str(GUID), "size": 5},
    ],
}


@pytest.fixture
def judged_dump(tmp_path: Path) -> Path:
    """A dump holding `kept` exactly, `changed`'s range with other bytes, `secret`, and one blob."""
    blocks = [
        (BUFFERS["kept"].address, BUFFERS["kept"].data),
        (BUFFERS["changed"].address, b"CHANGED!" * 2),
        (BUFFERS["secret"].address, BUFFERS["secret"].data),
        (BASE + 0x9000, bytes(range(0x68))),  # not a scenario buffer
    ]
    spec = TriageDumpSpec(0x1A2, (0x1234, 0, 0, 0), blocks, secondary_data=[(GUID, b"xyz")])
    return write_triage_dump(tmp_path / "judged.dmp", spec)


def context() -> DumpContext:
    return DumpContext(BUFFERS, collection_handle=0, secondary_data_guid=GUID, create_bugcheck_code=0x1A2)


def test_evidence_verdicts_agree_with_the_verifiers_mismatches(judged_dump: Path) -> None:
    expect = DumpExpect.model_validate(EXPECT)
    with KernelDump(judged_dump) as dump:
        mismatches = check_dump(expect, dump, context())
        evidence = dump_evidence(dump, expect, context())
    verdicts = {item.path[2:]: item.verdict for item in evidence.expectations}
    assert verdicts == {
        ("contains", 0): "found",
        ("contains", 1): "differs",
        ("contains", 2): "missing",
        ("excludes", 0): "unexpected",
        ("excludes", 1): "absent",
        ("secondary_data", 0): "found",
        ("secondary_data", 1): "missing",
        ("secondary_data", 2): "unexpected",
        ("secondary_data", 3): "differs",
    }
    unmet = {item.path for item in evidence.expectations if not item.met}
    failing = {m.path[:4] for m in mismatches}  # a size mismatch names ("...", 3, "size")
    assert unmet == failing
    blocks = {block.address: block for block in evidence.blocks}
    assert blocks[BUFFERS["kept"].address].owner == "kept"
    assert blocks[BASE + 0x9000].owner is None
    assert blocks[BASE + 0x9000].head == bytes(range(16))
    assert evidence.block_cost == (16 + 32) + (16 + 16) + (16 + 16) + (16 + 0x68)  # F08


def _groups(svg: str, kinds: tuple[str, ...] = ("block", "phantom")) -> list[ET.Element]:
    """The drawn cells of these kinds (class "<kind> <role>")."""
    return [g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class", "").split(" ")[0] in kinds]


def test_svg_draws_each_verdict_in_its_colour_with_hover_titles(judged_dump: Path) -> None:
    expect = DumpExpect.model_validate(EXPECT)
    with KernelDump(judged_dump) as dump:
        evidence = dump_evidence(dump, expect, context()).located(lambda path: f"s.yaml:{len(path)}:1")
    svg = render_dump_map(evidence, title="judged")
    roles = {}
    for group in _groups(svg):
        kind, role = group.get("class", "").split()
        fill = group.find(f"{SVG}rect").get("fill")
        assert fill == COLOURS[role]
        title = group.find(f"{SVG}title").text or ""
        assert "0x" in title
        roles.setdefault(role, []).append((kind, title, group.get("data-address")))
    kept = next(t for k, t, a in roles["found"] if a == f"0x{BUFFERS['kept'].address:X}")
    assert f"address 0x{BUFFERS['kept'].address:016X}" in kept
    assert "size 0x20 (32 bytes)" in kept and "first bytes: 6B 65 70 74 7C" in kept
    assert any(k == "phantom" and "lost" in t and "no data block covers" in t for k, t, _ in roles["missing"])
    assert any(k == "block" and "secret" in t for k, t, _ in roles["unexpected"])
    assert any("changed" in t for _, t, _ in roles["differs"])
    assert any(k == "phantom" and "gone" in t for k, t, _ in roles["absent"])
    blobs = {(g.find(f"{SVG}title").text or "").splitlines()[0]: g for g in _groups(svg, ("blob",))}
    held = blobs[f"secondary data {GUID}"]
    assert held.get("class") == "blob differs"  # its worst verdict: the size differs
    assert held.find(f"{SVG}rect").get("fill") == COLOURS["differs"] == COLOURS["missing"]
    assert "first bytes: 78 79 7A" in held.find(f"{SVG}title").text
    assert blobs[f"secondary data {OTHER_GUID}: no blob"].get("class") == "blob missing"
    assert "other" in roles  # the block no scenario buffer explains
    assert "256 KiB dump buffer (0x40000, F08)" in svg
    assert "FAIL missing" in svg and "s.yaml:" in svg


def test_dmf_decoder_seam_labels_dmf_blocks_grey(judged_dump: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When DMF data can be decoded (issue 9's decoder plugs into dmf_module_labels), its blocks
    are drawn grey with the module's instance name."""
    monkeypatch.setattr(evidence_module, "dmf_module_labels", lambda dump: {BASE + 0x9000: "Bridge"})
    with KernelDump(judged_dump) as dump:
        evidence = evidence_module.dump_evidence(dump, None, context())
    (block,) = [b for b in evidence.blocks if b.address == BASE + 0x9000]
    assert block.module == "Bridge"
    (group,) = [g for g in _groups(render_dump_map(evidence)) if g.get("class") == "block dmf"]
    assert group.find(f"{SVG}rect").get("fill") == COLOURS["dmf"]
    assert group.find(f"{SVG}text").text == "Bridge"
    assert "DMF data of module Bridge" in (group.find(f"{SVG}title").text or "")


def test_a_dump_without_a_dmf_collection_labels_nothing(judged_dump: Path) -> None:
    with KernelDump(judged_dump) as dump:
        assert evidence_module.dmf_module_labels(dump) == {}


def test_a_simulated_live_dump_labels_its_dmf_data_by_module(tmp_path: Path) -> None:
    """The decoder behind the seam (harness/dump/dmf.py, F32/F35) on a real simulated dump: the
    collection block found through P2 and every module's object, config and context blocks."""
    from harness.target.ops import Create
    from harness.target.sim import SimSettings, SimulatedMachine

    machine = SimulatedMachine(tmp_path / "sim", SimSettings())
    machine.prepare()
    assert machine.execute(Create(bugcheck_code=0x1A2)).status == 0
    (live,) = [d for d in machine.collect_dumps() if d.kind == "live"]
    with KernelDump(live.path) as dump:
        labels = evidence_module.dmf_module_labels(dump)
        collection = next(
            b for b in dump.data_blocks if b.address in labels and labels[b.address] == "DMF collection"
        )
        assert dump.block_bytes(collection)[:8] == dump.header.bugcheck_parameters[1].to_bytes(8, "little")
    names = set(labels.values())
    assert {"LiveKernelDump", "Bridge"} <= names, names
    assert len(labels) > 3 * 8, "object, config and context of each of the 8 modules (F35)"


def three_hundred_block_dump(folder: Path) -> Path:
    """300 blocks of mixed sizes, runs of adjacent blocks and gaps, as a driver with many stored
    buffers and DMF data would leave."""
    blocks = []
    address = 0xFFFF_9A26_2000_0000
    sizes = [8, 13, 64, 0x68, 256, 40, 1024, 16, 0x1C8, 4096]
    for index in range(300):
        size = sizes[index % len(sizes)]
        blocks.append((address, bytes([index % 256]) * size))
        address += size if index % 3 else size + 0x1000
    spec = TriageDumpSpec(0x1A2, (0, 0, 0, 0), blocks, secondary_data=[(GUID, b"s" * 300)])
    return write_triage_dump(folder / "many.dmp", spec)


def test_three_hundred_blocks_stay_readable_in_chromium(tmp_path: Path) -> None:
    with KernelDump(three_hundred_block_dump(tmp_path)) as dump:
        evidence = dump_evidence(dump, None, None)
    svg = render_dump_map(evidence, title="300 blocks")
    assert len(svg.encode()) < 256 * 1024
    page_file = tmp_path / "many.svg"
    page_file.write_text(svg)
    with browser_page() as page:
        page.goto(page_file.as_uri())
        boxes = page.evaluate(
            """() => [...document.querySelectorAll('text')].map(t => {
                 const b = t.getBBox();
                 const cell = t.parentNode.querySelector('rect');
                 const c = cell && t.parentNode.tagName === 'g' && t.parentNode.getAttribute('data-address')
                   ? cell.getBBox() : null;
                 return {x: b.x, y: b.y, w: b.width, h: b.height, text: t.textContent, cell: c &&
                   {x: c.x, y: c.y, w: c.width, h: c.height}};
               })"""
        )
        titles = page.evaluate(
            "() => [...document.querySelectorAll('g.block')].map(g => g.querySelector('title').textContent)"
        )
    assert len(titles) == 300
    assert all("address 0x" in t and "size 0x" in t and "first bytes:" in t for t in titles)
    labelled = [box for box in boxes if box["cell"]]
    assert len(labelled) > 150, "most blocks carry a visible label"
    for box in labelled:  # a label sits inside its own cell, so labels cannot collide
        cell = box["cell"]
        assert cell["x"] - 0.5 <= box["x"] and box["x"] + box["w"] <= cell["x"] + cell["w"] + 0.5, box
    ordered = sorted(boxes, key=lambda b: (b["y"], b["x"]))
    for i, first in enumerate(ordered):
        for second in ordered[i + 1 : i + 40]:
            overlap_x = (
                first["x"] < second["x"] + second["w"] - 0.5 and second["x"] < first["x"] + first["w"] - 0.5
            )
            overlap_y = (
                first["y"] < second["y"] + second["h"] - 0.5 and second["y"] < first["y"] + first["h"] - 0.5
            )
            assert not (overlap_x and overlap_y), (first, second)
    assert any("256 KiB dump buffer" in box["text"] for box in boxes)


def test_runner_feeds_a_map_beside_every_collected_dump(tmp_path: Path) -> None:
    """A live dump's map shows the failed expectation; the crash dump of a known defect gets one too."""
    scenario = tmp_path / "maps.yaml"
    scenario.write_text(
        "name: maps\nsteps:\n  - alloc: {name: a, size: 16}\n  - store: a\n"
        "  - create: {bugcheck_code: 0x1A2}\n"
        "    expect: {dump: {excludes: [a]}}\n  - remove: a\n    expect: {bugcheck: [0xD1, 0xA]}\n"
    )
    (loaded,) = load_scenario_file(scenario)
    seen = []

    class Seen(DumpMapFiles):
        def dump_mapped(self, record, step, evidence):  # type: ignore[no-untyped-def]
            seen.append((step.index if step else None, evidence.kind))
            super().dump_mapped(record, step, evidence)

    with TargetFactory().target("sim", tmp_path / "out") as target:
        record = run_scenario(loaded, target, [Seen()])
    assert record.outcome == "failed"
    assert sorted(seen) == [(3, "live"), (4, "crash")]
    for dump in record.dumps:
        drawn = map_path(dump.path).read_text()
        assert drawn.startswith("<svg")
    live = next(d for d in record.dumps if d.kind == "live")
    assert "FAIL unexpected excludes a" in map_path(live.path).read_text()
    assert dump_map.map_path(live.path).name == live.path.name + ".svg"
