"""SFTP downloads against a real OpenSSH server on loopback: speed settings, hash, resume, refusal,
over both transports: paramiko's (SshSession) and OpenSSH's own `ssh` (openssh_sftp.OpenSshSftp).

The expected hash always comes from the server side (`sha256sum` run over the SSH session), as the
guest's Get-FileHash does in production, never from the local source file.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from required_tools import tool_missing
from sshd_server import SshdServer

from harness.target.windows import sftp_transfer
from harness.target.windows.openssh_sftp import OpenSshEndpoint, OpenSshSftp, openssh_available
from harness.target.windows.session import SessionError
from harness.target.windows.sftp_transfer import SftpProvider, download, remote_size
from harness.target.windows.ssh_session import SshSession

pytest_plugins = ["conftest_ssh"]

SessionFactory = Callable[..., SshSession]
BIG = 256 << 20
TRANSPORTS = ["paramiko", "openssh"]


def openssh_for(server: SshdServer, **overrides: Any) -> OpenSshSftp:
    """OpenSSH's client to a test sshd, trusting exactly its host key (as `new_session` does)."""
    if not openssh_available():
        tool_missing("OpenSSH's ssh client not found (apt-get install openssh-client; .ci/run installs it)")
    settings: dict[str, Any] = {
        "key_file": server.client_key,
        "known_hosts": server.known_hosts,
        "connect_timeout": 5.0,
    }
    settings.update(overrides)
    return OpenSshSftp(OpenSshEndpoint("127.0.0.1", server.port, server.user, **settings))


@pytest.fixture(params=TRANSPORTS)
def source(request: pytest.FixtureRequest, ssh: SshSession, shared_sshd: SshdServer) -> SftpProvider:
    """What carries the bytes from the shared sshd: paramiko's transport or OpenSSH's ssh."""
    return ssh if request.param == "paramiko" else openssh_for(shared_sshd)


def write_random_file(path: Path, size: int) -> Path:
    with path.open("wb") as out:
        for _ in range(size >> 20):
            out.write(os.urandom(1 << 20))
        out.write(os.urandom(size & ((1 << 20) - 1)))
    return path


@pytest.fixture(scope="session")
def big_remote_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256 MiB of random bytes, served by the loopback sshd (same machine, so same file system)."""
    return write_random_file(tmp_path_factory.mktemp("guest") / "MEMORY.DMP", BIG)


@pytest.fixture
def small_remote_file(tmp_path: Path) -> Path:
    return write_random_file(tmp_path / "guest-small.dmp", 3 << 20 | 12345)


def guest_sha256(session: SshSession, path: Path) -> str:
    """The hash as the guest computes it (Get-FileHash on Windows; sha256sum here)."""
    result = session.run(["sha256sum", "--", str(path)], timeout=60)
    assert result.ok, result.stderr
    return result.stdout.split()[0].decode()


def test_a_256_mib_dump_arrives_whole_and_verified_by_the_guests_hash(
    source: SftpProvider, ssh: SshSession, big_remote_file: Path, tmp_path: Path
) -> None:
    expected = guest_sha256(ssh, big_remote_file)
    local = tmp_path / "dumps" / "MEMORY.DMP"
    progress: list[int] = []

    result = download(
        source, str(big_remote_file), local, expected, on_progress=lambda done, _: progress.append(done)
    )

    assert (result.path, result.size, result.sha256, result.resumed_from) == (local, BIG, expected, 0)
    # OpenSSH 8.7+ says in limits@openssh.com that it answers 255 KiB reads: 252 KiB requests,
    # streamed over OpenSSH's transport, prefetched 64 MiB at a time on paramiko's (each segment
    # ending in a shorter request)
    request, segment = sftp_transfer.MAX_REQUEST_SIZE, sftp_transfer.SEGMENT
    if isinstance(source, OpenSshSftp):
        assert result.reads == -(-BIG // request)
    else:
        assert result.reads == BIG // segment * -(-segment // request)
    assert local.stat().st_size == BIG
    assert not local.with_name("MEMORY.DMP.partial").exists()
    assert progress == sorted(progress) and progress[-1] == BIG
    assert big_remote_file.stat().st_size == BIG, "the guest's file is left alone"


# paramiko's prefetch thread may still be queueing requests when the server dies; it ends with an
# exception of its own, in its own thread. That is the connection loss this test causes, not a fault.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_download_cut_by_a_dying_server_resumes_where_it_stopped(
    transport: str,
    sshd_server: SshdServer,
    session_for: SessionFactory,
    big_remote_file: Path,
    tmp_path: Path,
) -> None:
    local = tmp_path / "MEMORY.DMP"
    partial = tmp_path / "MEMORY.DMP.partial"

    def kill_server_after_64_mib(done: int, total: int) -> None:
        if done >= 64 << 20 and sshd_server.pid is not None:
            sshd_server.stop()

    with session_for(sshd_server) as session:
        expected = guest_sha256(session, big_remote_file)
        source = session if transport == "paramiko" else openssh_for(sshd_server)
        with pytest.raises(SessionError) as caught:
            download(source, str(big_remote_file), local, expected, on_progress=kill_server_after_64_mib)
        assert caught.value.stage == "transfer"
        assert "call again to resume" in str(caught.value)
        kept = partial.stat().st_size
        assert 64 << 20 <= kept < BIG
        assert not local.exists()

        sshd_server.start()  # the guest is back; the session reconnects (OpenSSH: a new ssh)
        result = download(source, str(big_remote_file), local, expected)

    assert result.resumed_from == kept
    assert result.sha256 == expected
    assert local.stat().st_size == BIG


def test_a_kept_prefix_is_hashed_not_trusted(
    source: SftpProvider, ssh: SshSession, small_remote_file: Path, tmp_path: Path
) -> None:
    expected = guest_sha256(ssh, small_remote_file)
    local = tmp_path / "dump.dmp"
    prefix = bytearray(small_remote_file.read_bytes()[: 1 << 20])

    local.with_name("dump.dmp.partial").write_bytes(prefix)
    assert download(source, str(small_remote_file), local, expected).resumed_from == 1 << 20

    local.unlink()
    prefix[4096] ^= 0xFF  # one flipped bit left over from an earlier attempt
    local.with_name("dump.dmp.partial").write_bytes(prefix)
    with pytest.raises(SessionError, match="the guest says"):
        download(source, str(small_remote_file), local, expected)
    assert local.with_name("dump.dmp.mismatch").read_bytes()[4096] == prefix[4096]


def test_a_hash_mismatch_keeps_the_copy_aside_and_never_installs_it(
    source: SftpProvider, small_remote_file: Path, tmp_path: Path
) -> None:
    local = tmp_path / "dump.dmp"
    wrong = "0" * 64

    with pytest.raises(SessionError) as caught:
        download(source, str(small_remote_file), local, wrong)

    assert caught.value.stage == "transfer"
    assert wrong in str(caught.value)
    assert not local.exists()
    assert not local.with_name("dump.dmp.partial").exists()
    assert local.with_name("dump.dmp.mismatch").read_bytes() == small_remote_file.read_bytes()


def test_a_partial_longer_than_the_remote_file_is_started_over(
    ssh: SshSession, small_remote_file: Path, tmp_path: Path
) -> None:
    local = tmp_path / "dump.dmp"
    local.with_name("dump.dmp.partial").write_bytes(b"\0" * (small_remote_file.stat().st_size + 1))

    result = download(ssh, str(small_remote_file), local, guest_sha256(ssh, small_remote_file))

    assert result.resumed_from == 0
    assert local.read_bytes() == small_remote_file.read_bytes()


def test_resume_false_fetches_everything_again(
    ssh: SshSession, small_remote_file: Path, tmp_path: Path
) -> None:
    local = tmp_path / "dump.dmp"
    local.with_name("dump.dmp.partial").write_bytes(b"stale")

    result = download(ssh, str(small_remote_file), local, None, resume=False)

    assert result.resumed_from == 0
    assert result.sha256 == hashlib.sha256(small_remote_file.read_bytes()).hexdigest()


def test_an_sftp_client_can_be_passed_directly_and_remote_size_reads_it(
    ssh: SshSession, small_remote_file: Path, tmp_path: Path
) -> None:
    expected = guest_sha256(ssh, small_remote_file)
    with ssh.open_sftp() as sftp:
        assert remote_size(sftp, str(small_remote_file)) == small_remote_file.stat().st_size
        result = download(sftp, str(small_remote_file), tmp_path / "copy.dmp", expected)
    assert result.sha256 == expected
    assert remote_size(ssh, str(small_remote_file)) == small_remote_file.stat().st_size


def test_a_missing_remote_file_is_a_transfer_error_naming_it(source: SftpProvider, tmp_path: Path) -> None:
    missing = str(tmp_path / "LiveKernelReports" / "none.dmp")

    with pytest.raises(SessionError) as caught:
        download(source, missing, tmp_path / "none.dmp", None)

    assert caught.value.stage == "transfer"
    assert missing in str(caught.value)


def test_an_abandoned_prefetch_is_recovered_by_reopening(
    ssh: SshSession,
    small_remote_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Requests larger than sftp-server answers (255 KiB) come back short, which makes paramiko drop
    prefetching every time: the same state its prefetch race leaves behind, made deterministic."""
    monkeypatch.setattr(sftp_transfer, "read_request_size", lambda sftp: 512 << 10)
    caplog.set_level(logging.DEBUG, logger="harness.target.windows.sftp_transfer")
    expected = guest_sha256(ssh, small_remote_file)

    result = download(ssh, str(small_remote_file), tmp_path / "dump.dmp", expected)

    assert result.sha256 == expected
    assert any("abandoned prefetch" in record.getMessage() for record in caplog.records)


def test_a_malformed_expected_hash_is_refused_before_anything_moves(ssh: SshSession, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a SHA-256"):
        download(ssh, "/etc/hostname", tmp_path / "h", "abc123")
    assert list(tmp_path.iterdir()) == []


def test_a_short_answer_ends_the_streamed_read_and_paramiko_finishes_the_file(
    shared_sshd: SshdServer,
    ssh: SshSession,
    small_remote_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """OpenSSH's transport streams reads by hand (openssh_sftp.stream_read); requests larger than
    sftp-server answers (255 KiB) come back short, which that loop does not handle itself."""
    monkeypatch.setattr(sftp_transfer, "read_request_size", lambda sftp: 512 << 10)
    caplog.set_level(logging.DEBUG, logger="harness.target.windows.sftp_transfer")
    expected = guest_sha256(ssh, small_remote_file)

    result = download(openssh_for(shared_sshd), str(small_remote_file), tmp_path / "dump.dmp", expected)

    assert result.sha256 == expected
    assert any("streamed read stopped at 261120" in record.getMessage() for record in caplog.records)
