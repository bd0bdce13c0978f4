"""The dump map: an SVG of one dump's data blocks on the kernel address line, with the scenario's
expectations drawn over them, drawn from the verifier's evidence (`harness.verify.evidence`), never
from the dump file.

What a reader sees, top to bottom: the dump (file, kind, bugcheck, build); the 256 KiB buffer the
OS builds a live dump in (F08) with what the blocks cost and what SizeOfDump used; the legend; the
blocks in address order, wrapped into rows that start with their first address; secondary-data
blobs by GUID; one line per expectation with its verdict, its YAML position and its evidence.

Colours: found green, missing or differing red, unexpected amber, DMF data grey (labelled with the
module when `dmf_module_labels` can decode it), unattributed blocks light grey, scenario buffers no
expectation names blue. A range with no block (a missing `contains`, an absent `excludes`) is a
dashed outline at its place in address order.

Readable at 300 blocks (tests/test_dump_map.py): the address line is ordered, not to scale (a
cell's width grows with the logarithm of its size; a gap between non-adjacent blocks is a notch),
so tiny blocks stay visible next to large ones; a label is written only where it fits inside its
cell, and every cell has a hover title with address, size and first bytes. All text is monospace so
widths are known before a browser lays them out. Written by hand: no library draws memory maps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from harness.record import RunRecord, StepRecord
from harness.runner import RunListener
from harness.verify.evidence import (
    BLOCK_DESCRIPTOR_BYTES,
    DUMP_BUFFER_BYTES,
    BlockEvidence,
    DumpEvidence,
    ExpectationEvidence,
)

COLOURS = {
    "found": "#2e7d32",
    "absent": "#2e7d32",
    "missing": "#c62828",
    "differs": "#c62828",
    "unexpected": "#ef8f00",
    "dmf": "#9e9e9e",
    "other": "#d0d0d0",
    "buffer": "#7986cb",
}
LEGEND = (
    ("found", "found (expected and there)"),
    ("missing", "missing / bytes differ"),
    ("unexpected", "unexpected (excluded, yet there)"),
    ("dmf", "DMF data (by module when decodable)"),
    ("other", "not attributed"),
    ("buffer", "scenario buffer, no expectation"),
)
VERDICT_MARK = {"found": "OK  ", "absent": "OK  ", "missing": "FAIL", "differs": "FAIL", "unexpected": "FAIL"}
SEVERITY = {"found": 0, "absent": 0, "unexpected": 1, "differs": 2, "missing": 2}

WIDTH = 1000
MARGIN = 10
ADDRESS_COLUMN = 122
ROW_HEIGHT = 34
CELL_HEIGHT = 22
BAND_HEIGHT = 5
FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
BLOB_WIDTH = 130
"""Blobs are not on the address line: each gets room for its GUID's first group and its size."""
CHAR_WIDTH = 0.62
"""Advance of one monospace character per pixel of font size (DejaVu Sans Mono: 0.602), rounded up."""


@dataclass
class Cell:
    """One box on the address line: a block, or the place of a range no block covers."""

    address: int
    size: int
    role: str
    label: str
    title: list[str]
    phantom: bool = False
    band: str | None = None
    blob: bool = False
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    notch: bool = field(default=False)


def render_dump_map(evidence: DumpEvidence, *, title: str = "") -> str:
    """The SVG document for one dump."""
    canvas = Canvas()
    y = canvas.header(evidence, title)
    y = canvas.budget(evidence, y)
    y = canvas.legend(y)
    cells = address_cells(evidence)
    y = canvas.address_rows(cells, y, "data blocks (kernel VA)")
    y = canvas.address_rows(blob_cells(evidence), y, "secondary data")
    y = canvas.expectation_list(evidence.expectations, y)
    return canvas.document(y + MARGIN)


def address_cells(evidence: DumpEvidence) -> list[Cell]:
    """Blocks and uncovered expectation ranges, in address order, each with its role and title."""
    by_block: dict[int, list[ExpectationEvidence]] = {}
    phantoms: list[Cell] = []
    for item in evidence.expectations:
        if item.address is None:
            continue
        if item.verdict in ("missing", "absent"):
            phantoms.append(_phantom(item))
        targets = item.blocks if item.verdict != "missing" else ()
        for address in targets:
            by_block.setdefault(address, []).append(item)
    cells = [_block_cell(block, by_block.get(block.address, [])) for block in evidence.blocks] + phantoms
    return sorted(cells, key=lambda cell: (cell.address, cell.phantom))


def blob_cells(evidence: DumpEvidence) -> list[Cell]:
    """One cell per secondary-data blob, coloured by the expectations on its GUID, then a dashed
    cell for each expected blob that is not there."""
    on_guid: dict[str, list[ExpectationEvidence]] = {}
    for item in evidence.expectations:
        if item.guid is not None:
            on_guid.setdefault(item.guid, []).append(item)
    cells = []
    for blob in evidence.blobs:
        items = on_guid.get(blob.guid, [])
        role = _worst(items) or "other"
        lines = [f"secondary data {blob.guid}", f"size {blob.size} bytes", f"first bytes: {_hex(blob.head)}"]
        lines += [_verdict_line(item) for item in items]
        label = f"{blob.guid[:8]} {blob.size} B"
        cells.append(Cell(0, blob.size, role, label, lines, band=_band(items), blob=True))
    for guid, items in on_guid.items():
        missing = [item for item in items if item.verdict == "missing"]
        if missing and not any(blob.guid == guid for blob in evidence.blobs):
            lines = [f"secondary data {guid}: no blob", *(_verdict_line(item) for item in missing)]
            label = f"{guid[:8]} missing"
            cells.append(Cell(0, 16, "missing", label, lines, phantom=True, band="missing", blob=True))
    return cells


def _block_cell(block: BlockEvidence, items: list[ExpectationEvidence]) -> Cell:
    role = _worst(items) or ("dmf" if block.module else "buffer" if block.owner else "other")
    name = block.module or block.owner or ""
    if items:
        name = items[0].label
    lines = [
        name or "data block",
        f"address 0x{block.address:016X}",
        f"size 0x{block.size:X} ({block.size} bytes), costs {block.cost} of the 256 KiB buffer",
        f"first bytes: {_hex(block.head)}",
    ]
    if block.module:
        lines.insert(1, f"DMF data of module {block.module}")
    elif not block.owner and not items:
        lines.insert(1, "not a scenario buffer (DMF data when the create included it, F16/F35)")
    lines += [_verdict_line(item) for item in items]
    return Cell(block.address, block.size, role, name or f"0x{block.size:X}", lines, band=_band(items))


def _phantom(item: ExpectationEvidence) -> Cell:
    assert item.address is not None
    length = item.length or 1
    lines = [
        f"{_named(item)}: {item.verdict}",
        f"range 0x{item.address:016X}+0x{length:X}",
        "no data block covers this range" if item.verdict == "missing" else "no data block overlaps it",
    ]
    if item.expected_head:
        lines.append(f"expected first bytes: {_hex(item.expected_head)}")
    if item.verdict == "missing" and item.blocks:
        lines.append("nearest blocks: " + ", ".join(f"0x{a:X}" for a in item.blocks))
    if item.where:
        lines.append(f"at {item.where}")
    return Cell(item.address, length, item.verdict, item.label, lines, phantom=True, band=item.verdict)


def _worst(items: Sequence[ExpectationEvidence]) -> str | None:
    if not items:
        return None
    return max(items, key=lambda item: SEVERITY[item.verdict]).verdict


def _band(items: Sequence[ExpectationEvidence]) -> str | None:
    return _worst(items)


def _verdict_line(item: ExpectationEvidence) -> str:
    where = f" ({item.where})" if item.where else ""
    detail = f": {item.detail}" if item.detail else ""
    return f"{_named(item)}{where}: {item.verdict}{detail}"


def _named(item: ExpectationEvidence) -> str:
    """'contains ring_a', 'excludes secret', 'secondary data <guid>'."""
    return item.label if item.kind == "secondary_data" else f"{item.kind} {item.label}"


def _hex(data: bytes | None) -> str:
    return data.hex(" ").upper() if data else "(none)"


def cell_width(size: int) -> float:
    """Grows with log2 of the size: 16 bytes 40 px, 4 KiB 96 px, 64 KiB and more 124 px."""
    return float(min(max(12 + 7 * math.log2(max(size, 1)), 18), 124))


def text_width(text: str, font_size: float) -> float:
    return len(text) * font_size * CHAR_WIDTH


def fit(text: str, width: float, font_size: float) -> str:
    """`text` cut (with '…') to fit `width` pixels."""
    limit = int(width / (font_size * CHAR_WIDTH))
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


class Canvas:
    """Collects SVG elements top to bottom; every text is placed where its estimated box is free."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(
        self, x: float, y: float, text: str, size: float = 11, fill: str = "#212121", **attrs: str
    ) -> None:
        extra = "".join(f" {name.replace('_', '-')}={quoteattr(value)}" for name, value in attrs.items())
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}"{extra}>{escape(text)}</text>'
        )

    def header(self, evidence: DumpEvidence, title: str) -> float:
        code = "unset" if evidence.bugcheck_code is None else f"0x{evidence.bugcheck_code:X}"
        parameters = ", ".join("unset" if p is None else f"0x{p:X}" for p in evidence.parameters)
        build = f", build {evidence.build}" if evidence.build else ""
        heading = title or evidence.path.name
        self.text(MARGIN, 20, fit(heading, WIDTH - 2 * MARGIN, 13), 13, font_weight="bold")
        line = f"{evidence.kind} dump, {evidence.dump_type}{build}: BugCheckCode {code} ({parameters})"
        self.text(MARGIN, 38, fit(line, WIDTH - 2 * MARGIN, 11), 11)
        return 48

    def budget(self, evidence: DumpEvidence, y: float) -> float:
        """The 256 KiB buffer: what the blocks cost (F08) and the rest of SizeOfDump (header, context,
        stacks, driver list)."""
        bar = WIDTH - 2 * MARGIN
        used = evidence.size_of_dump or 0
        cost = evidence.block_cost
        scale = bar / max(DUMP_BUFFER_BYTES, used)
        self.parts.append(
            f'<g class="budget"><title>{escape(self._budget_title(evidence))}</title>'
            f'<rect x="{MARGIN}" y="{y}" width="{bar}" height="12" fill="#ffffff" stroke="#757575"/>'
            f'<rect class="budget-used" x="{MARGIN}" y="{y}" width="{used * scale:.1f}" height="12" '
            'fill="#cfd8dc"/>'
            f'<rect class="budget-blocks" x="{MARGIN + (used - cost) * scale:.1f}" y="{y}" '
            f'width="{min(cost, used) * scale:.1f}" height="12" fill="#607d8b"/></g>'
        )
        share = 100 * used / DUMP_BUFFER_BYTES
        line = (
            f"256 KiB dump buffer (0x{DUMP_BUFFER_BYTES:X}, F08): SizeOfDump 0x{used:X} = {share:.1f}% used; "
            f"{len(evidence.blocks)} data blocks cost {cost} bytes"
        )
        self.text(MARGIN, y + 26, fit(line, WIDTH - 2 * MARGIN, 11), 11)
        blob_bytes = sum(blob.size for blob in evidence.blobs)
        second = (
            f"secondary data after it: {len(evidence.blobs)} blob(s), {blob_bytes} bytes; "
            f"file {evidence.file_size} bytes"
        )
        self.text(MARGIN, y + 41, fit(second, WIDTH - 2 * MARGIN, 11), 11)
        return y + 52

    @staticmethod
    def _budget_title(evidence: DumpEvidence) -> str:
        return (
            f"SizeOfDump 0x{evidence.size_of_dump or 0:X} of the 0x{DUMP_BUFFER_BYTES:X}-byte buffer\n"
            f"data blocks: {evidence.block_cost} bytes ({BLOCK_DESCRIPTOR_BYTES}-byte descriptor + size "
            "rounded up to 8 each)"
        )

    def legend(self, y: float) -> float:
        x = MARGIN
        for role, label in LEGEND:
            width = 16 + text_width(label, 10) + 14
            if x + width > WIDTH - MARGIN:
                x, y = MARGIN, y + 16
            dash = ' stroke-dasharray="3 2"' if role == "missing" else ""
            self.parts.append(
                f'<rect class="legend {role}" x="{x}" y="{y + 2}" width="12" height="10" '
                f'fill="{COLOURS[role]}" stroke="#424242"{dash}/>'
            )
            self.text(x + 16, y + 11, label, 10)
            x += width
        return y + 22

    def address_rows(self, cells: list[Cell], y: float, caption: str) -> float:
        if not cells:
            return y
        self.text(MARGIN, y + 10, f"{caption}: {sum(not c.phantom for c in cells)}", 10, font_weight="bold")
        y += 16
        right = WIDTH - MARGIN
        x = ADDRESS_COLUMN
        row_start = True
        previous: Cell | None = None
        for cell in cells:
            cell.width = BLOB_WIDTH if cell.blob else cell_width(cell.size)
            gap = (
                0.0
                if row_start
                else (1.0 if previous and previous.address + previous.size == cell.address else 6.0)
            )
            if not row_start and x + gap + cell.width > right:
                y += ROW_HEIGHT
                x, gap, row_start = ADDRESS_COLUMN, 0.0, True
            if row_start:
                label = "" if cell.blob else f"{cell.address:016X}"
                self.text(MARGIN, y + BAND_HEIGHT + 15, label, 10, fill="#616161")
                row_start = False
            cell.notch = gap > 1
            cell.x, cell.y = x + gap, y
            self.cell(cell)
            x = cell.x + cell.width
            previous = cell
        return y + ROW_HEIGHT + 6

    def cell(self, cell: Cell) -> None:
        top = cell.y + BAND_HEIGHT + 1
        fill = COLOURS[cell.role]
        if cell.phantom:
            shape = (
                f'<rect x="{cell.x:.1f}" y="{top:.1f}" width="{cell.width:.1f}" height="{CELL_HEIGHT}" '
                f'fill="{fill}" fill-opacity="0.15" stroke="{fill}" stroke-width="1.5" '
                'stroke-dasharray="4 2"/>'
            )
        else:
            shape = (
                f'<rect x="{cell.x:.1f}" y="{top:.1f}" width="{cell.width:.1f}" height="{CELL_HEIGHT}" '
                f'fill="{fill}" stroke="#424242" stroke-width="0.5"/>'
            )
        band = ""
        if cell.band:
            band = (
                f'<rect class="band" x="{cell.x:.1f}" y="{cell.y:.1f}" width="{cell.width:.1f}" '
                f'height="{BAND_HEIGHT}" fill="{COLOURS[cell.band]}"/>'
            )
        label = ""
        if text_width(cell.label, 10) + 6 <= cell.width:
            ink = (
                "#ffffff"
                if cell.role in ("found", "missing", "differs", "buffer") and not cell.phantom
                else "#212121"
            )
            label = (
                f'<text x="{cell.x + 3:.1f}" y="{top + 15:.1f}" font-size="10" fill="{ink}">'
                f"{escape(cell.label)}</text>"
            )
        kind = "blob" if cell.blob else "phantom" if cell.phantom else "block"
        where = "" if cell.blob else f' data-address="0x{cell.address:X}"'
        self.parts.append(
            f'<g class="{kind} {cell.role}"{where} data-size="{cell.size}">'
            f"<title>{escape(chr(10).join(cell.title))}</title>{shape}{band}{label}</g>"
        )

    def expectation_list(self, items: Iterable[ExpectationEvidence], y: float) -> float:
        items = list(items)
        self.text(
            MARGIN,
            y + 10,
            "expectations" if items else "no expectation was checked against this dump",
            10,
            font_weight="bold",
        )
        y += 16
        for item in items:
            span = f" 0x{item.address:X}+0x{item.length or 0:X}" if item.address is not None else ""
            where = f"  {item.where}" if item.where else ""
            detail = f"  {item.detail}" if item.detail else ""
            mark = VERDICT_MARK[item.verdict]
            line = f"{mark} {item.verdict:<10} {_named(item)}{span}{where}{detail}"
            colour = "#1b5e20" if item.met else COLOURS[item.verdict]
            self.parts.append(
                f'<g class="expectation {item.verdict}"><title>{escape(_verdict_line(item))}</title>'
                f'<text x="{MARGIN}" y="{y + 11:.1f}" font-size="11" fill="{colour}">'
                f"{escape(fit(line, WIDTH - 2 * MARGIN, 11))}</text></g>"
            )
            y += 16
        return y

    def document(self, height: float) -> str:
        body = "\n".join(self.parts)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
            f'viewBox="0 0 {WIDTH} {height:.0f}" font-family="{FONT}">\n'
            f'<rect width="100%" height="100%" fill="#fafafa"/>\n{body}\n</svg>\n'
        )


class DumpMapFiles(RunListener):
    """Writes each collected dump's map beside it, as `<dump>.svg` (next to its `<dump>.txt`)."""

    def dump_mapped(self, record: RunRecord, step: StepRecord | None, evidence: DumpEvidence) -> None:
        where = f"step {step.index} ({step.title})" if step is not None else "collected after the run"
        svg = render_dump_map(evidence, title=f"{record.scenario} {where}: {evidence.path.name}")
        map_path(evidence.path).write_text(svg, encoding="utf-8")


def map_path(dump: Path) -> Path:
    """Where a dump's map is written: beside it, `<dump file name>.svg`."""
    return dump.with_name(dump.name + ".svg")
