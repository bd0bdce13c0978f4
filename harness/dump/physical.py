"""Where a physical page lives in a kernel memory dump: the bitmap index (DumpType 5, 6) and the run
index (DumpType 1), both answering "file offset of page frame N, or absent" for one frame or for an
array of them.

Bitmap dumps store present pages in PFN order from ``FirstPage`` (DUMP_FORMAT.md "Bitmap dumps"), so
the file offset of frame N is ``FirstPage + rank(N) * 0x1000``, where rank(N) counts the set bits
below N. The rank index is built once with NumPy: the bitmap as 64-bit words, a popcount per word
(``np.bitwise_count``) and an exclusive cumulative sum, so a lookup is one word, one masked popcount
and one addition, and an array of frames is looked up with the same few vector operations. Nothing
loops over pages in Python. The index costs 16 bytes per 64 described pages (the words and their
ranks): 4 MiB for a 64 GiB machine, and never more than twice the bitmap the file really holds.

Full dumps (DumpType 1) describe memory as at most 42 runs ``{BasePage, PageCount}`` in the header's
700-byte PhysicalMemoryBlock, their pages stored run after run from 0x2000; a lookup is a bisection.
No public parser documents more runs than fit the buffer, so more is a format error, not a guess.
"""

from __future__ import annotations

import bisect
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import layout as L
from .errors import DumpFormatError

MAX_PFN = 1 << (52 - L.PAGE_SHIFT)  # x64 physical addresses have at most 52 bits (MAXPHYADDR)
MAX_RUNS = (L.PHYSICAL_MEMORY_BLOCK_SIZE - (L.PHYSICAL_MEMORY_RUNS_OFFSET - 0x88)) // 16  # 42

Buffer = Callable[[int, int], bytes]


@dataclass(frozen=True, slots=True)
class PageRange:
    """``count`` consecutive present page frames from ``first_pfn``, stored from ``file_offset``."""

    first_pfn: int
    count: int
    file_offset: int


class PageIndex(ABC):
    """What both indexes offer (bitmap and run list); ``file_offsets`` returns -1 for frames the
    dump does not hold."""

    kind: str
    described_pages: int  # one past the highest frame the dump could describe
    present_pages: int
    data_start: int  # file offset of the first stored page
    data_end: int  # one past the last stored page: where secondary data may follow

    @abstractmethod
    def file_offset(self, pfn: int) -> int | None:
        """Where frame ``pfn`` is stored in the file, or None when the dump does not hold it."""

    @abstractmethod
    def file_offsets(self, pfns: np.ndarray) -> np.ndarray:
        """``file_offset`` for an array of frames at once (-1 where absent)."""

    @abstractmethod
    def ranges(self, limit: int) -> tuple[list[PageRange], int]:
        """The first ``limit`` ranges of consecutive present frames, and how many there are in all."""


class BitmapIndex(PageIndex):
    """The rank index over a BITMAP_DUMP64 bitmap (see the module docstring)."""

    kind = "bitmap"

    def __init__(self, bitmap: np.ndarray, pages: int, first_page: int) -> None:
        """``bitmap``: the bitmap's bytes as a uint8 array (a view of the file is fine: it is copied).

        Only the two arrays the index keeps are allocated at full size: on this kind of machine a
        fresh page of memory costs more than the arithmetic done on it, so no full-size temporaries.
        """
        word_count = (pages + 63) // 64
        words = np.zeros(word_count + 1, dtype=np.uint64)  # one zero word more: out-of-range frames
        words.view(np.uint8)[: len(bitmap)] = bitmap
        if pages % 64:  # bits past Pages are not part of the bitmap, whatever the file holds there
            words[word_count - 1] &= np.uint64((1 << (pages % 64)) - 1)
        self._words = words
        self._last_word = np.uint64(word_count)
        # _rank_end[w]: set bits in words 0..w inclusive; the rank of bit b of word w is then
        # _rank_end[w] - popcount(word >> b), which reuses the shift that tests the bit itself.
        self._rank_end = np.cumsum(np.bitwise_count(words), dtype=np.int64)
        self.described_pages = pages
        self.present_pages = int(self._rank_end[-1])
        self.data_start = first_page
        self.data_end = first_page + self.present_pages * L.PAGE_SIZE
        # Memoryviews index to Python ints in ~40 ns: the scalar path stays out of NumPy's overhead.
        self._words_mv = memoryview(self._words)
        self._rank_end_mv = memoryview(self._rank_end)

    def file_offset(self, pfn: int) -> int | None:
        if not 0 <= pfn < self.described_pages:
            return None
        word = self._words_mv[pfn >> 6]
        shifted = word >> (pfn & 63)
        if not shifted & 1:
            return None
        return self.data_start + (self._rank_end_mv[pfn >> 6] - shifted.bit_count()) * L.PAGE_SIZE

    def file_offsets(self, pfns: np.ndarray) -> np.ndarray:
        pfns = np.asarray(pfns, dtype=np.uint64)
        word_index = np.minimum(pfns >> np.uint64(6), self._last_word).view(np.int64)
        shifted = self._words[word_index] >> (pfns & np.uint64(63))
        rank = self._rank_end[word_index] - np.bitwise_count(shifted)
        offsets = rank * L.PAGE_SIZE + self.data_start
        return np.where((shifted & np.uint64(1)) != 0, offsets, -1)

    def ranges(self, limit: int) -> tuple[list[PageRange], int]:
        """Edges found word-wise: a range starts at a set bit whose lower neighbour is clear (the
        neighbour of bit 0 is the previous word's bit 63). Counting them is vectorised, slice by
        slice (no full-size temporaries); only the words holding the first ``limit`` ranges'
        edges are decoded in Python."""
        words = self._words[:-1]
        total, starts, ends = 0, [], []
        step = 8192
        for first in range(0, len(words), step):
            part = words[first : first + step]
            carry = np.empty_like(part)
            carry[0] = words[first - 1] >> np.uint64(63) if first else 0
            carry[1:] = part[:-1] >> np.uint64(63)
            lower = (part << np.uint64(1)) | carry
            starts_mask, ends_mask = part & ~lower, ~part & lower
            total += int(np.bitwise_count(starts_mask).sum())
            if len(ends) >= limit:
                continue
            for w in np.flatnonzero(starts_mask | ends_mask).tolist():
                if len(ends) >= limit:
                    break
                starts += _set_bits(int(starts_mask[w]), (first + w) * 64)
                ends += _set_bits(int(ends_mask[w]), (first + w) * 64)
        ends = [*ends, self.described_pages][: len(starts)]  # a range reaching the last frame
        shown = []
        for start, end in list(zip(starts, ends, strict=True))[:limit]:
            offset = self.file_offset(start)
            assert offset is not None
            shown.append(PageRange(start, end - start, offset))
        return shown, total


def _set_bits(word: int, base: int) -> list[int]:
    out = []
    while word:
        low = word & -word
        out.append(base + low.bit_length() - 1)
        word ^= low
    return out


class RunIndex(PageIndex):
    """The run list of a full dump's PhysicalMemoryBlock (see the module docstring)."""

    kind = "runs"

    def __init__(self, runs: list[tuple[int, int]], first_page: int) -> None:
        self._bases = [base for base, _ in runs]
        self._ends = [base + count for base, count in runs]
        self._file = []
        offset = first_page
        for _, count in runs:
            self._file.append(offset)
            offset += count * L.PAGE_SIZE
        self._np_bases = np.array(self._bases, dtype=np.uint64)
        self._np_ends = np.array(self._ends, dtype=np.uint64)
        self._np_file = np.array(self._file, dtype=np.int64)
        self.described_pages = self._ends[-1] if runs else 0
        self.present_pages = sum(count for _, count in runs)
        self.data_start = first_page
        self.data_end = offset

    def file_offset(self, pfn: int) -> int | None:
        i = bisect.bisect_right(self._bases, pfn) - 1
        if i < 0 or pfn >= self._ends[i]:
            return None
        return self._file[i] + (pfn - self._bases[i]) * L.PAGE_SIZE

    def file_offsets(self, pfns: np.ndarray) -> np.ndarray:
        pfns = np.asarray(pfns, dtype=np.uint64)
        if not self._bases:
            return np.full(len(pfns), -1, dtype=np.int64)
        i = np.searchsorted(self._np_bases, pfns, side="right").astype(np.intp) - 1
        safe = np.maximum(i, 0)
        present = (i >= 0) & (pfns < self._np_ends[safe])
        delta = (pfns - self._np_bases[safe]).astype(np.int64)
        return np.where(present, self._np_file[safe] + delta * L.PAGE_SIZE, -1)

    def ranges(self, limit: int) -> tuple[list[PageRange], int]:
        runs = [PageRange(b, e - b, f) for b, e, f in zip(self._bases, self._ends, self._file, strict=True)]
        return runs[:limit], len(runs)


def load_bitmap_index(path: Path, read_at: Buffer, buffer: memoryview, file_size: int) -> BitmapIndex:
    """Check BITMAP_DUMP64 against the file and build the rank index (DUMP_FORMAT.md); ``buffer``
    is the file's map, from which the bitmap is copied once, straight into the index."""
    end = L.BITMAP_DUMP_OFFSET + L.BITMAP_DUMP64_SIZE
    if file_size < end:
        reason = f"file is 0x{file_size:x} bytes, too short for BITMAP_DUMP64 (ends at 0x{end:x})"
        raise DumpFormatError(path, "BITMAP_DUMP64", L.BITMAP_DUMP_OFFSET, reason)
    head = L.BITMAP_DUMP64.from_buffer_copy(read_at(L.BITMAP_DUMP_OFFSET, L.BITMAP_DUMP64_SIZE))

    def fail(field: str, reason: str) -> DumpFormatError:
        return DumpFormatError(path, f"BITMAP_DUMP64.{field}", L.bitmap_field_offset(field), reason)

    signature, valid = bytes(head.Signature), bytes(head.ValidDump)
    if signature not in L.BITMAP_SIGNATURES:
        raise fail("Signature", f"expected 'SDMP' or 'FDMP', found {signature!r} (hex {signature.hex()})")
    if valid != L.BITMAP_VALID_DUMP:
        raise fail("ValidDump", f"expected 'DUMP', found {valid!r} (hex {valid.hex()})")
    pages, first_page, total = head.Pages, head.FirstPage, head.TotalPresentPages
    if pages > MAX_PFN:
        raise fail("Pages", f"{pages:#x} page frames is more than a 52-bit physical address space holds")
    bitmap_bytes = (pages + 7) // 8
    if end + bitmap_bytes > min(first_page, file_size):
        limit = "FirstPage" if first_page < file_size else "end of file"
        raise fail(
            "Pages",
            f"a bitmap of {pages:#x} bits [0x{end:x}+0x{bitmap_bytes:x}] runs past {limit} "
            f"(FirstPage 0x{first_page:x}, file size 0x{file_size:x})",
        )
    index = BitmapIndex(
        np.frombuffer(buffer, dtype=np.uint8, count=bitmap_bytes, offset=end), pages, first_page
    )
    if index.present_pages != total:
        raise fail(
            "TotalPresentPages",
            f"{total:#x} present pages claimed, but the bitmap has {index.present_pages:#x} bits set",
        )
    if index.data_end > file_size:
        raise fail(
            "TotalPresentPages",
            f"{total:#x} pages from FirstPage 0x{first_page:x} end at 0x{index.data_end:x}, "
            f"past end of file (size 0x{file_size:x}): the dump is truncated",
        )
    return index


def load_run_index(path: Path, read_at: Buffer, file_size: int) -> RunIndex:
    """Check DUMP_HEADER64.PhysicalMemoryBlock of a full dump and index its runs."""
    count_at, pages_at = 0x88, 0x90
    number_of_runs = struct.unpack("<I", read_at(count_at, 4))[0]
    number_of_pages = struct.unpack("<Q", read_at(pages_at, 8))[0]
    field = "DUMP_HEADER64.PhysicalMemoryBlock"
    if number_of_runs > MAX_RUNS:
        reason = f"{number_of_runs:#x} runs do not fit the 700-byte PhysicalMemoryBlock (at most {MAX_RUNS})"
        raise DumpFormatError(path, f"{field}.NumberOfRuns", count_at, reason)
    runs: list[tuple[int, int]] = []
    previous_end = 0
    for i in range(number_of_runs):
        at = L.PHYSICAL_MEMORY_RUNS_OFFSET + 16 * i
        base, count = struct.unpack("<QQ", read_at(at, 16))
        if base < previous_end:
            reason = (
                f"BasePage {base:#x} is below the end of run {i - 1} ({previous_end:#x}): runs must ascend"
            )
            raise DumpFormatError(path, f"{field}.Run[{i}].BasePage", at, reason)
        if base + count > MAX_PFN:
            reason = f"run [{base:#x}+{count:#x}] ends past a 52-bit physical address space"
            raise DumpFormatError(path, f"{field}.Run[{i}].PageCount", at + 8, reason)
        runs.append((base, count))
        previous_end = base + count
    total = sum(count for _, count in runs)
    if total != number_of_pages:
        reason = f"{number_of_pages:#x} pages claimed, but the runs hold {total:#x}"
        raise DumpFormatError(path, f"{field}.NumberOfPages", pages_at, reason)
    data_end = L.FULL_DUMP_FIRST_PAGE + total * L.PAGE_SIZE
    if data_end > file_size:
        reason = (
            f"{total:#x} pages from 0x{L.FULL_DUMP_FIRST_PAGE:x} end at 0x{data_end:x}, past end of file "
            f"(size 0x{file_size:x}): the dump is truncated"
        )
        raise DumpFormatError(path, f"{field}.NumberOfPages", pages_at, reason)
    return RunIndex(runs, L.FULL_DUMP_FIRST_PAGE)
