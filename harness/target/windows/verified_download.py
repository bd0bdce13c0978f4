"""The local half of every download from the guest, whichever way the bytes travel (SFTP or WinRM
chunks): one place for the rules that make a copy trustworthy and an interrupted one resumable.

- The bytes land in `<destination>.partial`, hashed as they are written.
- An interrupted download resumes from the partial file's length, unless the partial is longer than
  the guest's file (then it is stale and starts over). The kept prefix is re-hashed, never trusted;
  a partial that shrinks while it is re-hashed is an error, not an endless loop.
- The guest's hash (Get-FileHash prints upper case, hashlib lower) is compared with the copy's; only
  a match is renamed into place, in one atomic step, so `destination` is absent or complete.
- A mismatch is kept as `<destination>.mismatch` (then `.mismatch.1`, `.mismatch.2`...) for
  inspection: evidence, an earlier mismatch included, is never overwritten or deleted.

The transports (sftp_transfer.py, chunked_transfer.py) only move bytes into a `PartialCopy`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from harness.target.windows.session import SessionError

log = logging.getLogger(__name__)

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class DownloadResult:
    """A verified local copy of a guest file."""

    path: Path
    size: int
    sha256: str
    resumed_from: int
    """Bytes already present in the partial file from an earlier, interrupted download."""
    reads: int
    """Reads the guest answered this time (WinRM chunks or SFTP read blocks)."""


def normalized_sha256(expected_sha256: str) -> str:
    """The guest's hash as Get-FileHash prints it (upper case) or as hashlib does (lower case), in
    lower case; ValueError for anything that is not 64 hex digits."""
    normalized = expected_sha256.strip().lower()
    if not SHA256_HEX.fullmatch(normalized):
        raise ValueError(f"expected_sha256 is not a SHA-256 hex digest: {expected_sha256!r}")
    return normalized


def partial_path(destination: Path) -> Path:
    """Where an unfinished download of `destination` accumulates."""
    return destination.with_name(destination.name + ".partial")


def mismatch_path(destination: Path) -> Path:
    """A free name for bytes whose hash did not match: `.mismatch`, then `.mismatch.1`, `.mismatch.2`…"""
    candidate = destination.with_name(destination.name + ".mismatch")
    counter = 0
    while candidate.exists():
        counter += 1
        candidate = destination.with_name(f"{destination.name}.mismatch.{counter}")
    return candidate


def resume_offset(partial: Path, size: int, resume: bool) -> int:
    """How many bytes of the partial file can be kept; a partial longer than the source is stale."""
    if not resume or not partial.exists():
        return 0
    existing = partial.stat().st_size
    if existing > size:
        log.warning("%s holds %d bytes but the source has %d: starting over", partial, existing, size)
        return 0
    return existing


def hash_prefix(partial: Path, length: int) -> hashlib._Hash:
    """SHA-256 state over the first `length` bytes already on disk, so resuming needs no second pass.
    OSError when the file turns out shorter than `length` (it shrank since it was measured)."""
    digest = hashlib.sha256()
    if length == 0:
        return digest
    with partial.open("rb") as existing:
        remaining = length
        while remaining:
            block = existing.read(min(HASH_BLOCK, remaining))
            if not block:
                raise OSError(f"{partial} shrank while being hashed ({length - remaining} of {length} bytes)")
            digest.update(block)
            remaining -= len(block)
    return digest


class PartialCopy:
    """`<destination>.partial` being filled: `offset` is where the next bytes go.

    Use as a context manager; `verified()` after the last write closes the file and installs it
    (or keeps it aside as a mismatch). Leaving the block by an exception keeps the partial file for
    the next attempt.
    """

    def __init__(self, destination: Path, size: int, *, resume: bool = True) -> None:
        self.destination = Path(destination)
        self.size = size
        self.partial = partial_path(self.destination)
        self.offset = resume_offset(self.partial, size, resume)
        self.resumed_from = self.offset
        self.reads = 0
        self._digest = hash_prefix(self.partial, self.offset)
        self._file: BinaryIO | None = None

    def __enter__(self) -> PartialCopy:
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.partial.open("r+b" if self.offset else "wb")
        self._file.truncate(self.offset)
        self._file.seek(self.offset)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._close()

    def write(self, block: bytes) -> None:
        """Append one block the guest sent (it counts as one read)."""
        assert self._file is not None, "write() outside the with block"
        self._file.write(block)
        self._digest.update(block)
        self.offset += len(block)
        self.reads += 1

    def verified(self, expected_sha256: str | None, *, host: str, source: str) -> DownloadResult:
        """Close the copy and install it if its SHA-256 is the guest's (`None`: no comparison).

        SessionError("transfer") on a mismatch, naming both hashes and where the bytes are kept."""
        self._close()
        actual = self._digest.hexdigest()
        expected = None if expected_sha256 is None else normalized_sha256(expected_sha256)
        if expected is not None and actual != expected:
            kept = mismatch_path(self.destination)
            self.partial.rename(kept)
            message = (
                f"SHA-256 of the copy of {source} is {actual}, the guest says {expected}; kept at {kept}"
            )
            raise SessionError("transfer", host, message)
        os.replace(self.partial, self.destination)
        return DownloadResult(self.destination, self.offset, actual, self.resumed_from, self.reads)

    def _close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())  # a resume trusts what is on disk: make sure it is there
            self._file.close()
            self._file = None
