"""The shared local half of every download (verified_download.py), through both transports: one
result type, one resume check, one prefix re-hash, one way of keeping mismatches; and
`Guest.download`'s SFTP branch against a real OpenSSH server on loopback.

The real sshd serves a chroot that holds `C:/Windows/...`, so the Windows path the guest code asks
for (`/C:/Windows/Minidump/...`, as Windows OpenSSH's SFTP server names it) exists on it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from required_tools import tool_missing
from sshd_server import SshdServer, sshd_missing_reason

from harness.target.windows import chunked_transfer, sftp_transfer, verified_download
from harness.target.windows.chunked_transfer import download_in_chunks
from harness.target.windows.config import TargetConfig
from harness.target.windows.guest import Guest
from harness.target.windows.session import SessionError
from harness.target.windows.sftp_transfer import download
from harness.target.windows.stage_check import ConfiguredSessions
from harness.target.windows.verified_download import hash_prefix, normalized_sha256, partial_path

pytest_plugins = ["conftest_ssh"]

DATA = os.urandom(3 << 20 | 777)
SHA = hashlib.sha256(DATA).hexdigest()
AS_POWERSHELL_PRINTS_IT = SHA.upper() + "\r\n"


def test_both_transports_return_the_one_result_type() -> None:
    assert sftp_transfer.DownloadResult is chunked_transfer.DownloadResult is verified_download.DownloadResult


@pytest.mark.parametrize(
    "given",
    [SHA, SHA.upper(), AS_POWERSHELL_PRINTS_IT, f"  {SHA.upper()} "],
    ids=["lower", "upper", "upper-crlf", "padded"],  # the hash is random: ids must not be
)
def test_a_guest_hash_is_accepted_in_either_case(given: str) -> None:
    assert normalized_sha256(given) == SHA


def test_a_prefix_that_shrank_is_an_error_not_an_endless_loop(tmp_path: Path) -> None:
    partial = tmp_path / "x.partial"
    partial.write_bytes(b"x" * 100)
    with pytest.raises(OSError, match=r"shrank while being hashed \(100 of 4096 bytes\)"):
        hash_prefix(partial, 4096)


def test_chunks_accept_the_hash_as_powershell_prints_it(tmp_path: Path) -> None:
    result = download_in_chunks(
        lambda offset, length: DATA[offset : offset + length],
        len(DATA),
        tmp_path / "d.dmp",
        AS_POWERSHELL_PRINTS_IT,
    )
    assert result.sha256 == SHA and (tmp_path / "d.dmp").read_bytes() == DATA


@pytest.fixture
def remote_file(tmp_path: Path) -> Path:
    path = tmp_path / "guest" / "d.dmp"
    path.parent.mkdir()
    path.write_bytes(DATA)
    return path


def test_sftp_accepts_the_hash_as_powershell_prints_it(ssh, remote_file: Path, tmp_path: Path) -> None:
    result = download(ssh, str(remote_file), tmp_path / "d.dmp", AS_POWERSHELL_PRINTS_IT)
    assert result.sha256 == SHA and result.size == len(DATA)


def test_sftp_keeps_every_mismatch_never_overwriting_an_earlier_one(
    ssh, remote_file: Path, tmp_path: Path
) -> None:
    local = tmp_path / "d.dmp"
    wrong = hashlib.sha256(b"what the guest claims").hexdigest()
    for kept_as in ("d.dmp.mismatch", "d.dmp.mismatch.1", "d.dmp.mismatch.2"):
        with pytest.raises(SessionError) as raised:
            download(ssh, str(remote_file), local, wrong)
        assert raised.value.stage == "transfer"
        assert f"the guest says {wrong}" in raised.value.detail and kept_as in raised.value.detail
        assert (tmp_path / kept_as).read_bytes() == DATA
    assert not local.exists() and not partial_path(local).exists()


def test_sftp_fails_when_the_partial_shrinks_while_it_is_rehashed(
    ssh, remote_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process cuts the partial file between its measurement and its re-hash: the copy
    fails at once, where the SFTP path used to re-hash forever."""
    local = tmp_path / "d.dmp"
    partial_path(local).write_bytes(DATA[: 1 << 20])
    measure = verified_download.resume_offset

    def measure_then_shrink(partial: Path, size: int, resume: bool) -> int:
        offset = measure(partial, size, resume)
        partial.write_bytes(DATA[:10])
        return offset

    monkeypatch.setattr(verified_download, "resume_offset", measure_then_shrink)
    outcome: list[BaseException | object] = []

    def attempt() -> None:
        try:
            outcome.append(download(ssh, str(remote_file), local, SHA))
        except BaseException as error:  # handed to the test thread
            outcome.append(error)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the download hung re-hashing a partial file that shrank"
    (error,) = outcome
    assert isinstance(error, OSError) and "shrank while being hashed (10 of 1048576 bytes)" in str(error)


# -- Guest.download over SFTP, for real ---------------------------------------------------------


@pytest.fixture
def windows_sftp_root() -> Iterator[Path]:
    """A chroot for the test sshd: root-owned, not writable by others in any component (sshd checks
    every one), so it lives under /run, not under the world-writable /tmp."""
    if reason := sshd_missing_reason():
        tool_missing(reason)
    if os.geteuid() != 0:
        pytest.skip("sshd's ChrootDirectory needs the server to run as root")
    root = Path(tempfile.mkdtemp(prefix="lkdh-sftp-chroot-", dir="/run"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


@pytest.fixture
def windows_like_sshd(windows_sftp_root: Path, tmp_path: Path) -> Iterator[SshdServer]:
    server = SshdServer(tmp_path / "sshd", extra_config=[f"ChrootDirectory {windows_sftp_root}"])
    server.start()
    yield server
    server.stop()


def guest_config(server: SshdServer, sftp_client: str = "auto") -> TargetConfig:
    return TargetConfig.model_validate(
        {
            "name": "loopback",
            "host": "127.0.0.1",
            "winrm": {"username": "unused", "password": {"env": "LKDH_UNUSED_PASSWORD"}},
            "ssh": server.ssh_settings(connect_timeout=5, sftp_client=sftp_client),
            "driver": {"package": "/nonexistent", "hardware_id": "Root\\LkdhTestDriver", "lkdctl": "/x.exe"},
        }
    )


@pytest.mark.parametrize("sftp_client", ["auto", "openssh", "paramiko"])
def test_guest_download_over_sftp_from_a_real_sshd(
    sftp_client: str, windows_like_sshd: SshdServer, windows_sftp_root: Path, tmp_path: Path
) -> None:
    """Only WinRM could say the hash; the guest prints it in upper case (Get-FileHash). `auto` and
    `openssh` carry it over OpenSSH's ssh (no paramiko session is opened), `paramiko` over its own."""
    on_guest = windows_sftp_root / "C:" / "Windows" / "Minidump" / "010126-00001-01.dmp"
    on_guest.parent.mkdir(parents=True)
    on_guest.write_bytes(DATA)
    guest = Guest(guest_config(windows_like_sshd, sftp_client), ConfiguredSessions())
    local = tmp_path / "dumps" / "Minidump" / "010126-00001-01.dmp"
    try:
        path = guest.download(
            r"C:\Windows\Minidump\010126-00001-01.dmp", local, size=len(DATA), sha256=SHA.upper()
        )
        assert path == local and local.read_bytes() == DATA
        with pytest.raises(SessionError, match=r"no such file on the guest: /C:/Windows/Minidump/none.dmp"):
            guest.download(r"C:\Windows\Minidump\none.dmp", tmp_path / "none.dmp", size=1, sha256=SHA)
        assert (guest._ssh is not None) == (sftp_client == "paramiko")
    finally:
        guest.close()
    assert on_guest.read_bytes() == DATA, "nothing on the guest is changed"
