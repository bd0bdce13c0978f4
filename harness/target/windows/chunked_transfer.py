"""Downloading a large guest file in pieces when no SFTP server runs on the guest (DESIGN.md, target/windows).

WinRM can only move bytes as command output, and every command has a deadline, so a multi-gigabyte
dump is read as a series of (offset, length) chunks. The pieces land in `<destination>.partial`; an
interrupted download (deadline, reboot, lost connection) resumes from the partial file's length on the
next call. The file is trusted only when its SHA-256 matches the hash the guest computed of its own
copy: then it is renamed into place in one atomic step, so `destination` is either absent or complete.
On a mismatch the bytes are kept as `<destination>.mismatch` for inspection; evidence is never deleted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.target.windows.session import SessionError

log = logging.getLogger(__name__)

ChunkReader = Callable[[int, int], bytes]
"""read_chunk(offset, length) -> at most `length` bytes of the guest file starting at `offset`."""

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class DownloadResult:
    """A verified local copy of a guest file."""

    path: Path
    size: int
    sha256: str
    resumed_from: int
    """Bytes already present in the partial file from an earlier, interrupted download."""
    chunks_read: int


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


def _normalized_sha256(expected_sha256: str) -> str:
    """Accept the guest's hash as Get-FileHash prints it (upper case) or as hashlib does (lower case)."""
    normalized = expected_sha256.strip().lower()
    if not _SHA256_HEX.fullmatch(normalized):
        raise ValueError(f"expected_sha256 is not a SHA-256 hex digest: {expected_sha256!r}")
    return normalized


def _resume_offset(partial: Path, size: int, resume: bool) -> int:
    """How many bytes of the partial file can be kept; a partial longer than the source is stale."""
    if not resume or not partial.exists():
        return 0
    existing = partial.stat().st_size
    if existing > size:
        log.warning("%s holds %d bytes but the source has %d: starting over", partial, existing, size)
        return 0
    return existing


def _hash_prefix(partial: Path, length: int) -> hashlib._Hash:
    """SHA-256 state over the first `length` bytes already on disk, so resuming needs no second pass."""
    digest = hashlib.sha256()
    if length == 0:
        return digest
    with partial.open("rb") as existing:
        remaining = length
        while remaining:
            block = existing.read(min(_HASH_BLOCK, remaining))
            if not block:
                raise OSError(f"{partial} shrank while being hashed")
            digest.update(block)
            remaining -= len(block)
    return digest


def download_in_chunks(
    read_chunk: ChunkReader,
    size: int,
    destination: Path,
    expected_sha256: str,
    chunk_size: int = 1 << 20,
    resume: bool = True,
    *,
    host: str = "guest",
) -> DownloadResult:
    """Copy `size` bytes through `read_chunk` into `destination`, verified against `expected_sha256`.

    Raises SessionError("transfer") when the guest returns no bytes or more than asked for, or when the
    finished file's hash differs from the guest's (the bytes are then kept at `mismatch_path`). Errors
    raised by `read_chunk` itself propagate unchanged and leave the partial file for the next attempt.
    """
    if size < 0 or chunk_size <= 0:
        raise ValueError(f"size must be >= 0 and chunk_size > 0 (got size={size}, chunk_size={chunk_size})")
    expected = _normalized_sha256(expected_sha256)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(destination)
    offset = _resume_offset(partial, size, resume)
    resumed_from = offset
    digest = _hash_prefix(partial, offset)
    chunks_read = 0
    with partial.open("r+b" if offset else "wb") as out:
        out.seek(offset)
        out.truncate()
        while offset < size:
            wanted = min(chunk_size, size - offset)
            chunk = read_chunk(offset, wanted)
            if not chunk or len(chunk) > wanted:
                raise SessionError(
                    "transfer",
                    host,
                    f"asked for {wanted} bytes at offset {offset} of {destination.name}, got {len(chunk)}",
                )
            out.write(chunk)
            digest.update(chunk)
            offset += len(chunk)
            chunks_read += 1
        out.flush()
        os.fsync(out.fileno())
    actual = digest.hexdigest()
    if actual != expected:
        kept = mismatch_path(destination)
        partial.rename(kept)
        raise SessionError(
            "transfer",
            host,
            f"SHA-256 of the downloaded {destination.name} is {actual}, the guest's copy is {expected};"
            f" the bytes are kept at {kept}",
        )
    os.replace(partial, destination)
    return DownloadResult(destination, size, actual, resumed_from, chunks_read)
