"""Downloading a large guest file in pieces when no SFTP server runs on the guest (DESIGN.md, target/windows).

WinRM can only move bytes as command output, and every command has a deadline, so a multi-gigabyte
dump is read as a series of (offset, length) chunks. An interrupted download (deadline, reboot, lost
connection) resumes on the next call; the partial file, the hash check and the kept mismatches are
verified_download.py's, shared with the SFTP path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.target.windows.session import SessionError
from harness.target.windows.verified_download import DownloadResult, PartialCopy, normalized_sha256

ChunkReader = Callable[[int, int], bytes]
"""read_chunk(offset, length) -> at most `length` bytes of the guest file starting at `offset`."""

__all__ = ["ChunkReader", "DownloadResult", "download_in_chunks"]


def download_in_chunks(
    read_chunk: ChunkReader,
    size: int,
    destination: Path,
    expected_sha256: str,
    chunk_size: int = 1 << 20,
    resume: bool = True,
    *,
    host: str = "guest",
    source: str | None = None,
) -> DownloadResult:
    """Copy `size` bytes through `read_chunk` into `destination`, verified against `expected_sha256`.

    Raises SessionError("transfer") when the guest returns no bytes or more than asked for, or when the
    finished file's hash differs from the guest's (the bytes are then kept aside). Errors raised by
    `read_chunk` itself propagate unchanged and leave the partial file for the next attempt.
    `source` names the guest's file in messages (default: the destination's name).
    """
    if size < 0 or chunk_size <= 0:
        raise ValueError(f"size must be >= 0 and chunk_size > 0 (got size={size}, chunk_size={chunk_size})")
    expected = normalized_sha256(expected_sha256)
    with PartialCopy(destination, size, resume=resume) as copy:
        while copy.offset < size:
            wanted = min(chunk_size, size - copy.offset)
            chunk = read_chunk(copy.offset, wanted)
            if not chunk or len(chunk) > wanted:
                asked = f"asked for {wanted} bytes at offset {copy.offset} of {destination.name}"
                raise SessionError("transfer", host, f"{asked}, got {len(chunk)}")
            copy.write(chunk)
        return copy.verified(expected, host=host, source=source or destination.name)
