"""Test tooling: hostile dumps for every reader, driven by hypothesis.

A case is a seed file (the real fixtures in ../shared, a simulated triage dump, generated memory
dumps of DumpType 5, 6 and 1) with up to four mutations: a documented field set to an extreme
value, flipped bytes anywhere, random bytes in a structure the reader walks, a page-table entry
pointed at a table (loops, large-page bits on tables), and perhaps a truncation. ``run_case``
writes the case to a file (only the bytes that change), opens it with ``open_dump`` and drives
everything the reader offers (describe, summary, reads of blocks, blobs, drivers, physical and
virtual memory, the batch API). The only outcomes allowed are success, DumpFormatError (with a
field and an offset inside the file, or None) and AddressNotInDump; anything else, a case running
longer than ``CASE_SECONDS``, or a case whose traced allocations peak above ``memory_limit`` is a
Finding. tests/test_dump_fuzz.py runs a seeded, bounded sample; bench/fuzz_dumps.py the long run.
"""

from __future__ import annotations

import os
import random
import signal
import struct
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import strategies as st
from memory_dump_gen import Generated, Plan, generate

from harness.dump import (
    AddressNotInDump,
    DumpFormatError,
    KernelDump,
    MemoryDump,
    TriageDumpSpec,
    UserModeMinidump,
    describe,
    open_dump,
    summary,
    write_triage_dump,
)

CASE_SECONDS = 20.0  # a hang is a loop of billions; this only has to outlast a loaded machine

U32_EXTREMES = (0, 1, 4, 0x7F, 0x80, 0xFFF, 0x1000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF)
U64_EXTREMES = (*U32_EXTREMES, 1 << 32, 1 << 40, 1 << 52, 1 << 63, (1 << 64) - 1, 0x4547_4150_4547_4150)

# (name, offset, width) of the header fields every kernel reader trusts (DUMP_FORMAT.md).
HEADER_FIELDS = [
    ("DirectoryTableBase", 0x10, 8),
    ("MachineImageType", 0x30, 4),
    ("BugCheckCode", 0x38, 4),
    ("NumberOfRuns", 0x88, 4),
    ("NumberOfPages", 0x90, 8),
    ("Run[0].BasePage", 0x98, 8),
    ("Run[0].PageCount", 0xA0, 8),
    ("Run[1].BasePage", 0xA8, 8),
    ("Run[1].PageCount", 0xB0, 8),
    ("DumpType", 0xF98, 4),
    ("Attributes", 0x1050, 4),
]
TRIAGE_FIELDS = [(f"TRIAGE_DUMP64+0x{o:x}", 0x2000 + o, 4) for o in range(0, 0x48, 4)] + [
    (f"TRIAGE_DUMP64+0x{o:x}", 0x2000 + o, 4) for o in range(0x68, 0x80, 4)
]
BITMAP_FIELDS = [
    ("Signature", 0x2000, 4),
    ("ValidDump", 0x2004, 4),
    ("FirstPage", 0x2020, 8),
    ("TotalPresentPages", 0x2028, 8),
    ("Pages", 0x2030, 8),
]
MDMP_FIELDS = [("NumberOfStreams", 8, 4), ("StreamDirectoryRva", 12, 4)]


class Seed:
    """A well-formed dump to start from, and where its structures are (for biased mutations).

    A plain class, not a dataclass: hypothesis pretty-prints dataclass arguments of strategies
    field by field, megabytes of ``data`` included."""

    def __init__(
        self,
        name: str,
        data: bytes,
        fields: list[tuple[str, int, int]],
        regions: list[tuple[int, int]],  # [start, end) ranges worth scribbling in
        virtual: list[int] | None = None,  # kernel VAs worth reading
        physical: list[int] | None = None,
        table_entries: list[int] | None = None,  # file offsets of page-table entries
        table_frames: list[int] | None = None,  # page frames holding tables
    ) -> None:
        self.name, self.data, self.fields, self.regions = name, data, fields, regions
        self.virtual = virtual or []
        self.physical = physical or []
        self.table_entries = table_entries or []
        self.table_frames = table_frames or []

    def __repr__(self) -> str:
        return f"Seed({self.name!r}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class Case:
    seed: int
    mutations: tuple[tuple[int, bytes], ...]
    truncate: int | None


@dataclass
class Finding:
    """A reader misbehaved: what it did, on which seed and mutations."""

    seed: str
    case: Case
    problem: str

    def __str__(self) -> str:
        muts = ", ".join(f"0x{o:x}={d.hex()}" for o, d in self.case.mutations)
        cut = "" if self.case.truncate is None else f", truncated to 0x{self.case.truncate:x}"
        return f"{self.seed}: [{muts}{cut}]: {self.problem}"


# --- seeds ----------------------------------------------------------------------------------------
def _kernel_regions(data: bytes) -> list[tuple[int, int]]:
    return [(0, 0x2000), (0x2000, min(len(data), 0x2100))]


def _triage_seed(name: str, path: Path) -> Seed:
    data = path.read_bytes()
    with open_dump(path) as dump:
        assert isinstance(dump, KernelDump) and dump.triage is not None
        t = dump.triage
        regions = _kernel_regions(data)
        regions.append((t.data_blocks_offset, t.data_blocks_offset + 16 * max(1, t.data_blocks_count)))
        regions.append((t.driver_list_offset, t.driver_list_offset + 0x90 * max(1, min(t.driver_count, 8))))
        regions.append((t.string_pool_offset, t.string_pool_offset + min(t.string_pool_size, 0x400) + 4))
        regions.append((t.size_of_dump - 8, min(len(data), t.size_of_dump + 0x200)))
        for blob in dump.secondary_data[:6]:
            regions.append((blob.data_offset - 0x20, blob.data_offset))
        virtual = [b.address for b in dump.data_blocks[:16]]
    regions = [(a, min(b, len(data))) for a, b in regions if 0 <= a < min(b, len(data))]
    return Seed(name, data, HEADER_FIELDS + TRIAGE_FIELDS, regions, virtual=virtual)


def _memory_seed(name: str, g: Generated) -> Seed:
    data = g.path.read_bytes()
    regions = [*_kernel_regions(data), (0x2038, g.first_page)]
    with open_dump(g.path) as dump:
        assert isinstance(dump, MemoryDump)
        frames, entries = [], []
        for pfn in _table_frames(dump, g):
            offset = dump.pages.file_offset(pfn)
            assert offset is not None
            frames.append(pfn)
            regions.append((offset, offset + 0x1000))
            entries += [
                offset + 8 * i for i in range(512) if struct.unpack_from("<Q", data, offset + 8 * i)[0]
            ]
    regions = [(a, b) for a, b in regions if a < b]
    virtual = [va for va, _ in g.small[:8]] + list(g.special.values())
    virtual += [g.large_va + 0x1234, g.huge_va + 0x5678, g.large_va + (len(g.large_pa) << 21) - 4]
    physical = [first << 12 for first, _ in g.plan.present] + [0, 0x1FF8, g.dtb]
    return Seed(
        name,
        data,
        HEADER_FIELDS + BITMAP_FIELDS,
        regions,
        virtual=virtual,
        physical=physical,
        table_entries=entries,
        table_frames=frames,
    )


def _table_frames(dump: MemoryDump, g: Generated) -> list[int]:
    """The PML4 and the tables the walk of the seed's sample addresses goes through."""
    frames = {g.dtb >> 12}
    for va in [va for va, _ in g.small[:4]] + list(g.special.values())[:4]:
        table = g.dtb
        for shift in (39, 30, 21):
            entry = int.from_bytes(dump.read_physical(table + ((va >> shift) & 0x1FF) * 8, 8), "little")
            if not entry & 1 or entry & 0x80:
                break
            table = entry & 0x000F_FFFF_FFFF_F000
            if dump.pages.file_offset(table >> 12) is None:
                break
            frames.add(table >> 12)
    return sorted(frames)


def build_seeds(workdir: Path, fixtures: Path | None) -> list[Seed]:
    """Every reader's seeds: real fixtures (when ../shared is there), simulated and generated dumps."""
    seeds = []
    spec = TriageDumpSpec(
        0x1A2,
        (1, 2, 3, 4),
        data_blocks=[(0xFFFF_C000_0000_1000 + 0x100 * i, bytes(range(i, i + 40))) for i in range(12)],
        secondary_data=[(__import__("uuid").UUID(int=7), b"telemetry")],
    )
    seeds.append(_triage_seed("sim-triage", write_triage_dump(workdir / "sim.dmp", spec)))
    present = [(0, 0x100), (0x140, 0x40), (0x203, 0xFD), (0x400, 0x80)]
    for dump_type in (5, 6, 1):
        plan = Plan(
            described_pages=0x600, present=present, dump_type=dump_type, seed=dump_type, small_pages=64
        )
        g = generate(workdir / f"memory{dump_type}.dmp", plan)
        seeds.append(_memory_seed(f"memory-type{dump_type}", g))
    if fixtures is not None:
        for name in ("triage_x64.dmp", "triage_arm64.dmp"):
            seeds.append(_triage_seed(name, fixtures / name))
        calc = (fixtures / "calc.dmp").read_bytes()
        directory = struct.unpack_from("<I", calc, 12)[0]
        regions = [(0, 32), (directory, directory + 12 * struct.unpack_from("<I", calc, 8)[0])]
        for index in range(struct.unpack_from("<I", calc, 8)[0]):
            size, rva = struct.unpack_from("<II", calc, directory + 12 * index + 4)
            regions.append((rva, min(rva + min(size, 0x200), len(calc))))
        regions = [(a, b) for a, b in regions if a < b]
        seeds.append(Seed("calc.dmp", calc, MDMP_FIELDS, regions))
    return seeds


# --- the hypothesis strategy ------------------------------------------------------------------------
def _value(draw: st.DrawFn, width: int, seed: Seed) -> int:
    extremes = U64_EXTREMES if width == 8 else U32_EXTREMES
    size = len(seed.data)
    near = [max(0, min(v, (1 << (8 * width)) - 1)) for v in (size, size - 1, size + 1, size - 4, size // 2)]
    return draw(
        st.one_of(
            st.sampled_from(extremes),
            st.sampled_from(near),
            st.integers(0, (1 << (8 * width)) - 1),
        )
    )


@st.composite
def _mutation(draw: st.DrawFn, seed: Seed) -> tuple[int, bytes]:
    kinds = ["field", "flip", "region"] + (["table"] if seed.table_entries else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "field":
        _, offset, width = draw(st.sampled_from(seed.fields))
        return offset, _value(draw, width, seed).to_bytes(width, "little")
    if kind == "flip":
        offset = draw(st.integers(0, len(seed.data) - 1))
        return offset, bytes([seed.data[offset] ^ draw(st.integers(1, 255))])
    if kind == "region":
        start, end = draw(st.sampled_from(seed.regions))
        offset = draw(st.integers(start, end - 1))
        return offset, draw(st.binary(min_size=1, max_size=min(16, len(seed.data) - offset)))
    # a page-table entry pointed at a table frame: loops, self-references, PS on a table
    offset = draw(st.sampled_from(seed.table_entries))
    frame = draw(st.sampled_from(seed.table_frames))
    flags = draw(st.sampled_from([0x3, 0x83, 0x803, 0x1003, 0x8000_0000_0000_0003]))
    return offset, ((frame << 12) | flags).to_bytes(8, "little")


@st.composite
def cases(draw: st.DrawFn, seeds: list[Seed]) -> Case:
    index = draw(st.integers(0, len(seeds) - 1))
    seed = seeds[index]
    mutations = tuple(draw(st.lists(_mutation(seed), min_size=0, max_size=4)))
    size = len(seed.data)
    truncate = draw(
        st.one_of(
            st.none(),
            st.none(),
            st.integers(0, size - 1),
            st.sampled_from(sorted({min(size - 1, b) for r in seed.regions for b in r})),
        )
    )
    if not mutations and truncate is None:
        truncate = draw(st.integers(0, size - 1))
    return Case(index, mutations, truncate)


# --- running a case ---------------------------------------------------------------------------------
class CaseTimeout(BaseException):
    """Raised by SIGALRM inside a reader that ran past CASE_SECONDS (a hang)."""


@contextmanager
def _deadline(seconds: float) -> Iterator[dict[str, bool]]:
    """SIGALRM after ``seconds``; the yielded state says whether it fired. An exception raised in
    a signal handler is lost when the handler runs inside a GC callback (Python prints "Exception
    ignored"), so the handler re-arms itself until the exception lands, and the state records the
    timeout either way: a case that outlived its deadline is a hang even if it then finished."""
    state = {"fired": False}

    def expire(signum: int, frame: object) -> None:
        state["fired"] = True
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield state
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class CaseFile:
    """One file per seed, mutated in place and restored after each case (only changed bytes move)."""

    def __init__(self, folder: Path, seeds: list[Seed]) -> None:
        self.paths = []
        for i, seed in enumerate(seeds):
            path = folder / f"case{i}.dmp"
            path.write_bytes(seed.data)
            self.paths.append(path)
        self.seeds = seeds

    @contextmanager
    def applied(self, case: Case) -> Iterator[Path]:
        seed, path = self.seeds[case.seed], self.paths[case.seed]
        fd = os.open(path, os.O_RDWR)
        try:
            for offset, data in case.mutations:
                os.pwrite(fd, data, offset)
            if case.truncate is not None:
                os.ftruncate(fd, case.truncate)
            yield path
        finally:
            if case.truncate is not None:
                os.ftruncate(fd, len(seed.data))
                os.pwrite(fd, seed.data[case.truncate :], case.truncate)
            for offset, data in case.mutations:
                os.pwrite(fd, seed.data[offset : offset + len(data)], offset)
            os.close(fd)


def _drive(dump: KernelDump | UserModeMinidump, seed: Seed, rng: random.Random) -> None:
    """Everything a caller can ask of an open dump; faults a dump may have are tolerated per call."""
    describe(dump)
    summary(dump)
    if isinstance(dump, UserModeMinidump):
        dump.summary()
        return
    _tolerant(lambda: dump.drivers)
    for blob in dump.secondary_data[:4]:
        dump.blob_bytes(blob)
    for block in dump.data_blocks[:8]:
        dump.block_bytes(block)
        _tolerant(lambda b=block: dump.read_virtual(b.address, min(b.size, 64)))
    addresses = seed.virtual + [rng.getrandbits(64) for _ in range(4)]
    for va in addresses:
        _tolerant(lambda va=va: dump.read_virtual(va, 16))
    if isinstance(dump, MemoryDump):
        for pa in [*seed.physical, rng.getrandbits(40)]:
            _tolerant(lambda pa=pa: dump.read_physical(pa, 24))
        array = np.array(addresses, dtype=np.uint64)
        _tolerant(lambda: dump.try_read_u64(array))
        _tolerant(lambda: dump.read_u64(array[:3]))
        _tolerant(lambda: dump.translate(addresses[0]))
        dump.page_ranges(8)


def _tolerant(call: Callable[[], object]) -> None:
    with suppress(DumpFormatError, AddressNotInDump):
        call()


def run_case(
    files: CaseFile, case: Case, memory_limit: int | None = None, tally: Counter[str] | None = None
) -> Finding | None:
    """Run one case; a Finding if the readers did anything but the documented outcomes.
    ``tally`` counts how the cases that were fine ended (opened, or which field was wrong)."""
    seed = files.seeds[case.seed]
    rng = random.Random(hash(case) & 0xFFFF)
    tracing = memory_limit is not None and tracemalloc.is_tracing()
    if tracing:
        tracemalloc.reset_peak()
    try:
        with files.applied(case) as path, _deadline(CASE_SECONDS) as deadline:
            ended = "opened"
            try:
                with open_dump(path) as dump:
                    _drive(dump, seed, rng)
            except DumpFormatError as error:
                size = case.truncate if case.truncate is not None else len(seed.data)
                if not error.field or not (error.offset is None or 0 <= error.offset <= max(size, 0x2000)):
                    return Finding(seed.name, case, f"DumpFormatError without field/offset: {error!r}")
                ended = f"DumpFormatError {error.field.split('[')[0]}"
            except AddressNotInDump:
                ended = "AddressNotInDump"
    except CaseTimeout:
        return Finding(seed.name, case, f"hang: still running after {CASE_SECONDS} s")
    except Exception as error:  # the finding itself: any other exception is a reader bug
        return Finding(seed.name, case, f"{type(error).__name__}: {error}")
    if deadline["fired"]:
        return Finding(seed.name, case, f"hang: ran past {CASE_SECONDS} s (its timeout was swallowed)")
    if tracing:
        peak = tracemalloc.get_traced_memory()[1]
        if memory_limit is not None and peak > memory_limit:
            return Finding(
                seed.name, case, f"allocated {peak / (1 << 20):.1f} MiB (limit {memory_limit >> 20})"
            )
    if tally is not None:
        tally[f"{seed.name}: {ended}"] += 1
    return None
