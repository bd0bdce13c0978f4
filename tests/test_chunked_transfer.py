"""Chunked download: resumable, verified by the guest's hash, atomic, never discarding evidence.

The end-to-end tests read the chunks through WinRMSession from the WS-Management test server (real
HTTP, real deadlines); the edge cases read from a local bytes object, the guest's file stand-in.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from wsman_server import CommandContext, RunningWSManServer, running_wsman_server

from harness.target.windows.chunked_transfer import ChunkReader, download_in_chunks
from harness.target.windows.session import CommandTimeout, SessionError
from harness.target.windows.verified_download import mismatch_path, partial_path
from harness.target.windows.winrm_session import WinRMSession

USER = "lkdh-admin"
PASSWORD = "Pw-chunks-9!"
GUEST_FILE = os.urandom(700_000)  # not a multiple of any chunk size used below
GUEST_SHA256 = hashlib.sha256(GUEST_FILE).hexdigest().upper()  # as Get-FileHash prints it


class GuestFileReader:
    """What the harness will bind read_chunk to: a PowerShell script on stdin printing base64."""

    def __init__(self, session: WinRMSession, timeout: float = 10.0) -> None:
        self.session = session
        self.timeout = timeout
        self.offsets: list[int] = []

    def __call__(self, offset: int, length: int) -> bytes:
        self.offsets.append(offset)
        request = f"read C:\\Windows\\LiveKernelReports\\x.dmp {offset} {length}".encode()
        result = self.session.run(
            ["powershell.exe", "-NoProfile", "-Command", "-"], stdin=request, timeout=self.timeout
        )
        if not result.ok:
            raise SessionError("transfer", self.session.host, f"chunk reader exited with {result.exit_code}")
        return base64.b64decode(result.stdout)


def serve_guest_file(ctx: CommandContext, hang_at_offset: int | None = None) -> int:
    """The guest side of GuestFileReader: `read <path> <offset> <length>` answers base64 bytes."""
    _verb, _path, offset, length = ctx.read_stdin().decode().split()
    start, count = int(offset), int(length)
    if start == hang_at_offset:
        ctx.wait_for_signal()
        return 1
    ctx.write_stdout(base64.b64encode(GUEST_FILE[start : start + count]) + b"\r\n")
    return 0


@pytest.fixture
def guest() -> Iterator[RunningWSManServer]:
    with running_wsman_server(USER, PASSWORD) as server:
        server.handlers["powershell.exe"] = serve_guest_file
        yield server
        assert not server.service.internal_errors and not server.service.handler_errors


@pytest.fixture
def session(guest: RunningWSManServer) -> Iterator[WinRMSession]:
    with WinRMSession(
        guest.host,
        port=guest.port,
        scheme="http",
        username=USER,
        password=PASSWORD,
        transport="basic",
        allow_insecure_http=True,
        operation_timeout=0.5,
    ) as opened:
        yield opened


def test_a_file_arrives_whole_through_winrm(session: WinRMSession, tmp_path: Path) -> None:
    destination = tmp_path / "dumps" / "x.dmp"
    reader = GuestFileReader(session)
    result = download_in_chunks(reader, len(GUEST_FILE), destination, GUEST_SHA256, chunk_size=256 * 1024)
    assert destination.read_bytes() == GUEST_FILE
    assert result.sha256 == GUEST_SHA256.lower()
    assert (result.size, result.resumed_from, result.reads) == (len(GUEST_FILE), 0, 3)
    assert reader.offsets == [0, 256 * 1024, 512 * 1024]
    assert not partial_path(destination).exists()


def test_an_interrupted_download_resumes_where_it_stopped(
    guest: RunningWSManServer, session: WinRMSession, tmp_path: Path
) -> None:
    chunk = 200_000
    guest.handlers["powershell.exe"] = lambda ctx: serve_guest_file(ctx, hang_at_offset=2 * chunk)
    destination = tmp_path / "x.dmp"
    with pytest.raises(CommandTimeout):  # the third chunk's command hangs past its deadline
        download_in_chunks(
            GuestFileReader(session, timeout=1.0), len(GUEST_FILE), destination, GUEST_SHA256, chunk
        )
    assert not destination.exists()
    assert partial_path(destination).read_bytes() == GUEST_FILE[: 2 * chunk]

    guest.handlers["powershell.exe"] = serve_guest_file
    reader = GuestFileReader(session)
    result = download_in_chunks(reader, len(GUEST_FILE), destination, GUEST_SHA256, chunk)
    assert reader.offsets == [2 * chunk, 3 * chunk]
    assert result.resumed_from == 2 * chunk
    assert destination.read_bytes() == GUEST_FILE


def test_a_hash_mismatch_keeps_the_bytes_for_inspection(session: WinRMSession, tmp_path: Path) -> None:
    destination = tmp_path / "x.dmp"
    wrong = hashlib.sha256(b"what the guest claims").hexdigest()
    for kept_as in ("x.dmp.mismatch", "x.dmp.mismatch.1"):  # a second mismatch does not overwrite the first
        with pytest.raises(SessionError) as raised:
            download_in_chunks(
                GuestFileReader(session), len(GUEST_FILE), destination, wrong, chunk_size=1 << 20
            )
        assert raised.value.stage == "transfer"
        assert wrong in raised.value.detail and kept_as in raised.value.detail
        assert (tmp_path / kept_as).read_bytes() == GUEST_FILE
    assert not destination.exists()
    assert not partial_path(destination).exists()


def local_reader(data: bytes, calls: list[tuple[int, int]] | None = None) -> ChunkReader:
    """read_chunk over a local bytes object: the guest's file without the network."""

    def read(offset: int, length: int) -> bytes:
        if calls is not None:
            calls.append((offset, length))
        return data[offset : offset + length]

    return read


def test_a_guest_that_returns_nothing_fails_instead_of_looping(tmp_path: Path) -> None:
    with pytest.raises(SessionError) as raised:
        download_in_chunks(lambda offset, length: b"", 10, tmp_path / "f", hashlib.sha256(b"x").hexdigest())
    assert raised.value.stage == "transfer" and "got 0" in raised.value.detail


def test_a_guest_that_returns_too_much_fails(tmp_path: Path) -> None:
    data = b"0123456789"
    with pytest.raises(SessionError, match="asked for 4 bytes at offset 0"):
        download_in_chunks(lambda o, n: data, len(data), tmp_path / "f", hashlib.sha256(data).hexdigest(), 4)


def test_short_reads_are_continued(tmp_path: Path) -> None:
    data = os.urandom(1000)
    calls: list[tuple[int, int]] = []
    read = local_reader(data, calls)
    result = download_in_chunks(
        lambda o, n: read(o, min(n, 300)), len(data), tmp_path / "f", hashlib.sha256(data).hexdigest(), 512
    )
    assert (tmp_path / "f").read_bytes() == data
    assert [offset for offset, _ in calls] == [0, 300, 600, 900]
    assert result.reads == 4


def test_resume_false_starts_over(tmp_path: Path) -> None:
    data = os.urandom(5000)
    destination = tmp_path / "f.dmp"
    partial_path(destination).write_bytes(b"stale bytes from another file")
    calls: list[tuple[int, int]] = []
    result = download_in_chunks(
        local_reader(data, calls),
        len(data),
        destination,
        hashlib.sha256(data).hexdigest(),
        2048,
        resume=False,
    )
    assert calls[0] == (0, 2048) and result.resumed_from == 0
    assert destination.read_bytes() == data


def test_a_partial_longer_than_the_source_is_not_resumed(tmp_path: Path) -> None:
    data = os.urandom(100)
    destination = tmp_path / "f.dmp"
    partial_path(destination).write_bytes(os.urandom(500))
    result = download_in_chunks(local_reader(data), len(data), destination, hashlib.sha256(data).hexdigest())
    assert result.resumed_from == 0
    assert destination.read_bytes() == data


def test_a_corrupt_partial_is_caught_by_the_hash(tmp_path: Path) -> None:
    """Resuming trusts the partial's bytes; the final hash is what catches a partial that lies."""
    data = os.urandom(4096)
    destination = tmp_path / "f.dmp"
    partial_path(destination).write_bytes(b"\x00" * 1024)
    with pytest.raises(SessionError, match="SHA-256"):
        download_in_chunks(local_reader(data), len(data), destination, hashlib.sha256(data).hexdigest(), 1024)
    assert mismatch_path(destination) == tmp_path / "f.dmp.mismatch.1"  # .mismatch is taken now
    assert (tmp_path / "f.dmp.mismatch").read_bytes()[1024:] == data[1024:]


def test_an_empty_file(tmp_path: Path) -> None:
    result = download_in_chunks(local_reader(b""), 0, tmp_path / "empty", hashlib.sha256(b"").hexdigest())
    assert (tmp_path / "empty").read_bytes() == b""
    assert result.reads == 0


def test_an_existing_destination_is_replaced_only_when_verified(tmp_path: Path) -> None:
    data = os.urandom(300)
    destination = tmp_path / "f.dmp"
    destination.write_bytes(b"previous run")
    with pytest.raises(SessionError):
        download_in_chunks(local_reader(data), len(data), destination, hashlib.sha256(b"other").hexdigest())
    assert destination.read_bytes() == b"previous run"
    download_in_chunks(local_reader(data), len(data), destination, hashlib.sha256(data).hexdigest())
    assert destination.read_bytes() == data


@pytest.mark.parametrize("bad", ["", "abc", "g" * 64, hashlib.sha1(b"").hexdigest()])
def test_an_expected_hash_that_is_not_sha256_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        download_in_chunks(local_reader(b"x"), 1, tmp_path / "f", bad)
    assert not partial_path(tmp_path / "f").exists()
