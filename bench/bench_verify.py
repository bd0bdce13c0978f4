"""Benchmark: validating a triage dump of 2,000 data blocks against 500 expectations with the
harness's verifier (harness.verify.check_dump, its public API), against a plain Python scan of the
same blocks, same file, same run.

The dump is written by the simulator's writer (harness.dump.write_triage_dump): 2,000 blocks of
16-256 bytes at scattered kernel addresses. The expectations are those of a scenario's
``expect.dump``: 400 ``contains`` (the buffer's exact bytes) and 100 ``excludes``, measured twice:
all met, and with failures (1 in 10 ``contains`` absent, 1 in 20 with one byte changed, half the
``excludes`` present), since a failing check also gathers its evidence (the nearest blocks), and
the 400 ``contains`` alone. The peer parses the same data-block table with ``struct`` and, per
expectation, scans every block for one that covers the range and compares its bytes: what a script
without an index does. Both must reach the same verdicts (checked). Figures: microseconds per
check, with and without opening the dump.

A fourth set checks the 400 ``contains`` on a full live dump (DumpType 6) holding the same 2,000
ranges, written by harness.dump.memory_writer: the verifier reads each range by virtual address
through the page tables; the peer is kdmp-parser (its Python API) reading the pages of each range
with ``read_virtual_page`` and comparing the bytes. Both must agree.

Run: `python bench/bench_verify.py [--repeat N]`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from harness.dump import TriageDumpSpec, open_dump, write_triage_dump
from harness.dump.memory_writer import MemoryDumpSpec, write_memory_dump
from harness.scenario.model import DumpExpect
from harness.verify import BufferView, DumpContext, check_dump

BLOCKS, CONTAINS, EXCLUDES = 2000, 400, 100


def build(folder: Path, failing: bool) -> tuple[Path, DumpExpect, DumpContext, list[tuple[str, int, bytes]]]:
    """The dump and 500 expectations: all met, or (``failing``) about one in five not met."""
    rng = random.Random(14)
    blocks = []
    address = 0xFFFF_C000_0000_0000
    for _ in range(BLOCKS):
        address += rng.randrange(0x100, 0x4000) & ~7
        blocks.append((address, rng.randbytes(rng.randrange(16, 257))))
    path = write_triage_dump(folder / "bench.dmp", TriageDumpSpec(0x1A2, (0, 0, 0, 0), data_blocks=blocks))
    buffers, contains, excludes, plain = {}, [], [], []
    for i in range(CONTAINS):
        va, data = blocks[rng.randrange(BLOCKS)]
        name = f"b{i}"
        if failing and i % 10 == 0:
            va = va + 0x80_0000_0000  # not in the dump
        elif failing and i % 20 == 1:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])  # one byte differs
        buffers[name] = BufferView(name, va, data)
        contains.append(name)
        plain.append(("contains", va, data))
    for i in range(EXCLUDES):
        va, data = blocks[rng.randrange(BLOCKS)]
        va = va if failing and i % 2 else va + 0x40_0000_0000  # (failing: half are in the dump)
        name = f"x{i}"
        buffers[name] = BufferView(name, va, data)
        excludes.append(name)
        plain.append(("excludes", va, data))
    expect = DumpExpect(contains=contains, excludes=excludes)
    context = DumpContext(buffers, 0, uuid.UUID(int=1), 0x1A2)
    return path, expect, context, plain


def plain_scan(path: Path, plain: list[tuple[str, int, bytes]]) -> int:
    """The peer: read the table with struct, scan all blocks per expectation. Returns mismatches."""
    data = path.read_bytes()
    table_offset, count = struct.unpack_from("<II", data, 0x2000 + 0x78)
    blocks = list(struct.iter_unpack("<QII", data[table_offset : table_offset + 16 * count]))
    mismatches = 0
    for kind, va, want in plain:
        end = va + len(want)
        if kind == "contains":
            for address, offset, size in blocks:
                if address <= va and end <= address + size:
                    start = offset + va - address
                    mismatches += data[start : start + len(want)] != want
                    break
            else:
                mismatches += 1
        else:
            mismatches += any(address < end and va < address + size for address, _, size in blocks)
    return mismatches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for failing in (False, True):
        measure(failing, args.repeat, with_excludes=True)
    measure(False, args.repeat, with_excludes=False)
    measure_memory_dump(args.repeat)
    return 0


def kdmp_scan(path: Path, plain: list[tuple[str, int, bytes]]) -> int:
    """The memory-dump peer: kdmp-parser reads each range's pages by VA and compares the bytes."""
    import kdmp_parser

    peer = kdmp_parser.KernelDumpParser(path)
    mismatches = 0
    for _, va, want in plain:
        got = b""
        for page in range(va & ~0xFFF, va + len(want), 0x1000):
            data = peer.read_virtual_page(page)
            if data is None:
                break
            got += bytes(data)
        start = va & 0xFFF
        mismatches += got[start : start + len(want)] != want
    return mismatches


def time_rounds(
    path: Path, expect: DumpExpect, context: DumpContext, peer_name: str, peer: Callable[[], int], repeat: int
) -> tuple[dict[str, list[float]], int, int]:
    """`repeat` alternating rounds of lkdh's check_dump (checks alone, and open + checks) and the
    peer on the same file; the verdicts must be the same in every round."""
    runs: dict[str, list[float]] = {"lkdh checks": [], "lkdh open+checks": [], peer_name: []}
    verdicts = set()
    for _ in range(repeat):
        began = time.perf_counter()
        with open_dump(path) as dump:
            opened = time.perf_counter()
            found = check_dump(expect, dump, context)
            done = time.perf_counter()
        runs["lkdh checks"].append(done - opened)
        runs["lkdh open+checks"].append(done - began)
        began = time.perf_counter()
        theirs = peer()
        runs[peer_name].append(time.perf_counter() - began)
        verdicts.add((len(found), theirs))
    ((ours, theirs),) = verdicts
    return runs, ours, theirs


def print_per_check(per: dict[str, float], peer_name: str) -> None:
    for name, micro in per.items():
        print(f"  {name:<18} {micro:9.1f} us/check")
    print(f"  ratio {peer_name} / lkdh checks      {per[peer_name] / per['lkdh checks']:6.1f}x")
    print(f"  ratio {peer_name} / lkdh open+checks {per[peer_name] / per['lkdh open+checks']:6.1f}x")


def measure_memory_dump(repeat: int) -> None:
    """The 400 contains on a full live dump of the same ranges: lkdh by page walk vs kdmp-parser."""
    with tempfile.TemporaryDirectory() as folder:
        triage, expect, context, plain = build(Path(folder), False)
        with open_dump(triage) as dump:
            ranges = [(block.address, dump.block_bytes(block)) for block in dump.data_blocks]
        header = TriageDumpSpec(0x1A2, (0, 0, 0, 0), [], live=True)
        path = write_memory_dump(Path(folder) / "full.dmp", MemoryDumpSpec(header, ranges, dump_type=6))
        expect = DumpExpect(contains=expect.contains)
        plain = [item for item in plain if item[0] == "contains"]
        runs, ours, theirs = time_rounds(
            path, expect, context, "kdmp-parser", lambda: kdmp_scan(path, plain), repeat
        )
    assert ours == theirs, f"verifier found {ours} mismatches, kdmp-parser {theirs}"
    per = {name: statistics.median(times) / len(plain) * 1e6 for name, times in runs.items()}
    print(f"full live dump of the same {BLOCKS} ranges, {len(plain)} contains: {ours} mismatches (both)")
    print_per_check(per, "kdmp-parser")


def measure(failing: bool, repeat: int, with_excludes: bool) -> None:
    """One set: per-check times of lkdh and the peer. Without excludes only the 400 contains run
    (the checks the block index serves; an exclude check scans every block, in verify/)."""
    with tempfile.TemporaryDirectory() as folder:
        path, expect, context, plain = build(Path(folder), failing)
        if not with_excludes:
            expect = DumpExpect(contains=expect.contains)
            plain = [item for item in plain if item[0] == "contains"]
        checks = len(plain)
        runs, ours, theirs = time_rounds(
            path, expect, context, "plain scan", lambda: plain_scan(path, plain), repeat
        )
    assert ours == theirs, f"verifier found {ours} mismatches, the plain scan {theirs}"
    per = {name: statistics.median(times) / checks * 1e6 for name, times in runs.items()}
    kind = ("with failures" if failing else "all met") + ("" if with_excludes else ", contains only")
    print(f"{BLOCKS} blocks, {checks} expectations, {kind}: {ours} mismatches (both), median of {repeat}")
    print_per_check(per, "plain scan")


if __name__ == "__main__":
    sys.exit(main())
