"""Benchmark: opening bitmap kernel dumps and reading 100,000 random 8-byte virtual addresses,
lkdh (harness.dump.MemoryDump) against kdmp-parser's Python API, same files, same run.

Two sparse DumpType-5 dumps are generated (tests/memory_dump_gen.py): 4 GiB described / 1 GiB
present and 64 GiB / 16 GiB (4 MiB and 16 MiB ranges with holes between; page tables, 2 MiB pages
over all present memory and 64 MiB of 4 KiB mappings whose frames hold random bytes). Figures:

- open, cold (the file's pages dropped from the page cache first) and warm: lkdh vs kdmp-parser,
  and both against the file system's own time to read the header and the bitmap (pread, cold);
- ``lkdh inspect`` (open + describe) cold, against the same pread;
- single reads: ``read_virtual(va, 8)`` per address vs kdmp-parser's ``read_virtual_page`` + slice
  (its only way to read virtual memory);
- batch: ``read_u64(array)`` warm (median of 5, after one pass) vs kdmp-parser's per-address rate,
  and the same batch API on a hot working set (100,000 addresses in 1,024 distinct pages: what a
  verifier reading a few structures does), which separates the API's cost from the TLB and cache
  misses of 100,000 pages scattered over many GiB;
- memory: the anonymous memory (RssAnon: heap, not page cache) a fresh process gains by opening
  the dump and reading the addresses, each reader; and lkdh's traced heap peak.
Reads are timed with the page cache warm for the pages the addresses touch (one lkdh pass first),
so both readers are measured on CPU, not on the disk; the read rates are given in wall time and in
this process's CPU time (user + system), which is what they would be on an idle core when the
machine is shared (as it is here).
Every value lkdh returns is compared with kdmp-parser's for the same address.

Run: `python bench/bench_memory_dump.py [--only 4|64] [--keep DIR]`. Needs ~150 MiB of real disk
(the files are sparse: 20 GiB apparent). Goals (issue 14): open >= 10x faster at 64 GiB, single
reads >= 10x faster, batch > 5 million addresses/s warm, memory bounded by the mmap.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import kdmp_parser
import numpy as np
from memory_dump_gen import Generated, Plan, generate

from harness.dump import describe, open_dump

ADDRESSES = 100_000
SIZES = {4: (4 << 30, 1 << 30, 4 << 20), 64: (64 << 30, 16 << 30, 16 << 20)}  # described, present, range


def plan_for(gib: int) -> Plan:
    described, present, run = SIZES[gib]
    step = described // (present // run)
    ranges = [(start >> 12, run >> 12) for start in range(0, described, step)]
    return Plan(
        described >> 12, ranges, dump_type=5, seed=gib, small_pages=16384, fill_all=False, fill_small=True
    )


def addresses_for(g: Generated, count: int, pages: int | None = None) -> list[int]:
    """Half in 4 KiB mappings, half in fully present 2 MiB pages; 8-byte values inside one page.
    ``pages``: draw from only that many distinct pages of each kind (a hot working set)."""
    rng = random.Random(count)
    present = [pa for pa in g.large_pa if g.present_pfn(pa >> 12) and g.present_pfn((pa >> 12) + 511)]
    index = {pa: n for n, pa in enumerate(g.large_pa)}
    small = [va for va, _ in g.small]
    large = [g.large_va + (index[pa] << 21) + (n << 12) for pa in present for n in range(0, 512, 64)]
    if pages is not None:
        small, large = rng.sample(small, pages), rng.sample(large, pages)
    out = []
    for i in range(count):
        base = rng.choice(small) if i % 2 else rng.choice(large) + (rng.randrange(64) << 12) * (pages is None)
        out.append(base + rng.randrange(0, 0xFF9))
    return out


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


MEMORY_PROBE = """
import sys, numpy as np, kdmp_parser
from harness.dump import open_dump
def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) << 10
path, reader = sys.argv[1], sys.argv[2]
addresses = np.fromfile(sys.argv[3], dtype=np.uint64)
before = anon()
if reader == "lkdh":
    dump = open_dump(path)
    opened = anon()
    dump.read_u64(addresses)
else:
    dump = kdmp_parser.KernelDumpParser(path)
    opened = anon()
    for va in addresses.tolist():
        dump.read_virtual_page(va & ~0xFFF)
print((opened - before) >> 20, (anon() - before) >> 20)
"""


def anonymous_growth(path: Path, reader: str, addresses: np.ndarray, folder: Path) -> tuple[int, int]:
    """MiB of anonymous memory (heap, not mapped file pages) a fresh process gains by opening the
    dump, and by then reading the addresses: what each reader's index and reads cost."""
    import subprocess

    listing = folder / "addresses.u64"
    addresses.tofile(listing)
    argv = [sys.executable, "-c", MEMORY_PROBE, str(path), reader, str(listing)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split()
    return int(out[-2]), int(out[-1])


CPU: dict[int, float] = {}  # id(call) -> median process CPU seconds of the last timed() of it


def timed(call, repeat: int = 1) -> float:
    """Median wall seconds of ``call``; its median CPU seconds (this process only, so what the
    figure would be on an idle core of a shared machine) go to CPU[id(call)]."""
    runs, cpu = [], []
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        call()
        runs.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    CPU[id(call)] = statistics.median(cpu)
    return statistics.median(runs)


def header_and_bitmap(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        pages = int.from_bytes(os.pread(fd, 8, 0x2030), "little")
        os.pread(fd, 0x2038 + (pages + 7) // 8, 0)
    finally:
        os.close(fd)


def cold(path: Path, call) -> float:
    runs = []
    for _ in range(3):
        drop_cache(path)
        runs.append(timed(call))
    return statistics.median(runs)


def bench(gib: int, folder: Path) -> dict[str, float]:
    began = time.perf_counter()
    g = generate(folder / f"bitmap{gib}.dmp", plan_for(gib))
    stat = g.path.stat()
    print(f"\n== {gib} GiB described / {SIZES[gib][1] >> 30} GiB present: {stat.st_size >> 20} MiB file,")
    print(f"   {stat.st_blocks * 512 >> 20} MiB on disk, generated in {time.perf_counter() - began:.1f} s")
    addresses = addresses_for(g, ADDRESSES)
    array = np.array(addresses, dtype=np.uint64)
    r: dict[str, float] = {}

    def lkdh_open() -> None:
        open_dump(g.path).close()

    def lkdh_inspect() -> None:
        with open_dump(g.path) as dump:
            describe(dump)

    r["fs header+bitmap cold"] = cold(g.path, lambda: header_and_bitmap(g.path))
    r["lkdh open cold"] = cold(g.path, lkdh_open)
    r["lkdh inspect cold"] = cold(g.path, lkdh_inspect)
    r["kdmp open cold"] = cold(g.path, lambda: kdmp_parser.KernelDumpParser(g.path))
    r["lkdh open warm"] = timed(lkdh_open, 5)
    r["kdmp open warm"] = timed(lambda: kdmp_parser.KernelDumpParser(g.path), 3)

    with open_dump(g.path) as dump:  # warm the page cache with the pages the addresses touch
        values = dump.read_u64(array).tolist()
    peer = kdmp_parser.KernelDumpParser(g.path)
    theirs_values = []

    def kdmp_reads() -> None:
        theirs_values.clear()
        for va in addresses:
            page = peer.read_virtual_page(va & ~0xFFF)
            theirs_values.append(int.from_bytes(page[va & 0xFFF : (va & 0xFFF) + 8], "little"))

    r["kdmp single s"] = timed(kdmp_reads)
    r["kdmp single cpu"] = CPU[id(kdmp_reads)]
    peer = None
    with open_dump(g.path) as dump:
        ours_single: list[bytes] = []

        def singles() -> None:
            ours_single.extend(dump.read_virtual(va, 8) for va in addresses)

        def batch() -> None:
            dump.read_u64(array)

        r["lkdh single s"] = timed(singles)
        r["lkdh single cpu"] = CPU[id(singles)]
        r["lkdh batch s"] = timed(batch, 5)
        r["lkdh batch cpu"] = CPU[id(batch)]
        hot = np.array(addresses_for(g, ADDRESSES, pages=512), dtype=np.uint64)

        def hot_batch() -> None:
            dump.read_u64(hot)

        hot_batch()
        r["lkdh hot batch s"] = timed(hot_batch, 5)
        tracemalloc.start()
        dump.read_u64(array)
        r["lkdh heap peak MiB"] = tracemalloc.get_traced_memory()[1] / (1 << 20)
        tracemalloc.stop()
    r["lkdh anon open MiB"], r["lkdh anon read MiB"] = anonymous_growth(g.path, "lkdh", array, folder)
    r["kdmp anon open MiB"], r["kdmp anon read MiB"] = anonymous_growth(g.path, "kdmp", array, folder)
    singles = [int.from_bytes(b, "little") for b in ours_single]
    assert values == theirs_values == singles, "lkdh and kdmp-parser disagree"
    r["nonzero values"] = sum(1 for v in values if v)
    report(gib, r)
    return r


def report(gib: int, r: dict[str, float]) -> None:
    n = ADDRESSES
    rows = [
        ("open cold: lkdh / kdmp-parser", r["lkdh open cold"], r["kdmp open cold"]),
        ("open warm: lkdh / kdmp-parser", r["lkdh open warm"], r["kdmp open warm"]),
        ("open cold: lkdh / fs header+bitmap", r["lkdh open cold"], r["fs header+bitmap cold"]),
        ("inspect cold: lkdh / fs header+bitmap", r["lkdh inspect cold"], r["fs header+bitmap cold"]),
    ]
    for label, ours, theirs in rows:
        times = f"  {label:<40} {ours * 1e3:9.2f} ms vs {theirs * 1e3:9.2f} ms"
        if "kdmp" in label:
            print(f"{times}   ratio {theirs / ours:7.1f}x faster")
        else:
            print(f"{times}   ({ours / theirs:.1f}x the fs time)")
    single, peer, batch = n / r["lkdh single s"], n / r["kdmp single s"], n / r["lkdh batch s"]
    for label, ours in (
        ("single reads: lkdh / kdmp-parser", single),
        ("batch warm: lkdh / kdmp singles", batch),
    ):
        print(f"  {label:<40} {ours:9.0f} /s vs {peer:9.0f} /s   ratio {ours / peer:7.1f}x")
    cpu = {k: n / r[k] for k in ("lkdh single cpu", "kdmp single cpu", "lkdh batch cpu")}
    print(
        f"  {'(CPU time) single: lkdh / kdmp-parser':<40} {cpu['lkdh single cpu']:9.0f} /s vs "
        f"{cpu['kdmp single cpu']:9.0f} /s   ratio {cpu['lkdh single cpu'] / cpu['kdmp single cpu']:7.1f}x"
    )
    print(f"  {'(CPU time) batch: lkdh':<40} {cpu['lkdh batch cpu']:9.0f} /s")
    print(f"  {'batch warm, 1,024 hot pages: lkdh':<40} {n / r['lkdh hot batch s']:9.0f} /s")
    lkdh = f"+{r['lkdh anon open MiB']:.0f} / +{r['lkdh anon read MiB']:.0f} MiB"
    kdmp = f"+{r['kdmp anon open MiB']:.0f} / +{r['kdmp anon read MiB']:.0f} MiB"
    print(f"  memory (anonymous, fresh process; open / open+reads): lkdh {lkdh}, kdmp-parser {kdmp}")
    print(f"  lkdh traced heap peak during reads {r['lkdh heap peak MiB']:.1f} MiB")
    print(f"  all {n} values agree ({int(r['nonzero values'])} non-zero)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, choices=sorted(SIZES))
    parser.add_argument("--keep", type=Path, help="generate into (and leave the files in) this folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="lkdh-bench-", dir="/var/tmp"))
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < 1 << 30:
        print(f"cannot run: {free >> 20} MiB free at {folder}", file=sys.stderr)
        return 2
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 30
    v = kdmp_parser.version
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, {memory} GiB, load {load:.1f}; numpy {np.__version__},")
    print(f"kdmp-parser {v.major}.{v.minor}.{v.patch}")
    try:
        for gib in [args.only] if args.only else sorted(SIZES):
            bench(gib, folder)
    finally:
        if args.keep is None:
            shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
