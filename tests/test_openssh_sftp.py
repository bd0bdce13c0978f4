"""OpenSSH's `ssh` as the SFTP transport (openssh_sftp.py), against the real loopback sshd: the
host-key and credential policy, each failure named by its connection step, paths that never meet a
shell, the server's read limit, and the Guest choosing it (`ssh.sftp_client`).

The transfer guarantees themselves (hash, resume after a cut, kept mismatches) are tested over both
transports in test_sftp_transfer.py.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import paramiko
import pytest
from sshd_server import SshdServer, free_loopback_port, generate_ed25519_key
from test_sftp_transfer import openssh_for

from harness.target.windows import sftp_transfer
from harness.target.windows.config import SshSettings
from harness.target.windows.openssh_sftp import OpenSshEndpoint, OpenSshSftp, endpoint_for
from harness.target.windows.session import SessionError
from harness.target.windows.sftp_transfer import download

pytest_plugins = ["conftest_ssh"]


@pytest.fixture
def remote_file(tmp_path: Path) -> Path:
    path = tmp_path / "guest" / "MEMORY.DMP"
    path.parent.mkdir()
    path.write_bytes(os.urandom(300_000))
    return path


def refused(source: OpenSshSftp, remote: Path, local: Path) -> SessionError:
    with pytest.raises(SessionError) as caught:
        download(source, str(remote), local, None)
    assert not local.exists() and not local.with_name(local.name + ".partial").exists()
    return caught.value


# -- the host key -----------------------------------------------------------------------------------


def test_a_host_key_that_does_not_match_is_refused_at_auth(
    shared_sshd: SshdServer, remote_file: Path, tmp_path: Path
) -> None:
    impostor = generate_ed25519_key(tmp_path / "other_host_key")
    kind, blob = impostor.with_suffix(".pub").read_text().split()[:2]
    pinned = tmp_path / "known_hosts"
    pinned.write_text(f"[127.0.0.1]:{shared_sshd.port} {kind} {blob}\n")

    error = refused(openssh_for(shared_sshd, known_hosts=pinned), remote_file, tmp_path / "copy.dmp")

    assert error.stage == "auth"
    assert f"host key for [127.0.0.1]:{shared_sshd.port} does not match known_hosts {pinned}" in str(error)
    assert "refusing" in str(error)
    assert pinned.read_text() == f"[127.0.0.1]:{shared_sshd.port} {kind} {blob}\n", "pinned file untouched"


def test_a_changed_host_key_is_refused_even_when_accepting_unknown_keys(
    shared_sshd: SshdServer, remote_file: Path, tmp_path: Path
) -> None:
    impostor = generate_ed25519_key(tmp_path / "other_host_key")
    kind, blob = impostor.with_suffix(".pub").read_text().split()[:2]
    pinned = tmp_path / "known_hosts"
    pinned.write_text(f"[127.0.0.1]:{shared_sshd.port} {kind} {blob}\n")
    source = openssh_for(shared_sshd, known_hosts=pinned, accept_unknown_host_key=True)

    error = refused(source, remote_file, tmp_path / "copy.dmp")

    assert error.stage == "auth" and "does not match known_hosts" in str(error)


def test_an_unknown_host_key_is_refused_by_default_and_nothing_is_recorded(
    shared_sshd: SshdServer, remote_file: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.touch()

    error = refused(openssh_for(shared_sshd, known_hosts=empty), remote_file, tmp_path / "copy.dmp")

    assert error.stage == "auth"
    assert f"host key for [127.0.0.1]:{shared_sshd.port} is not in known_hosts {empty}" in str(error)
    assert empty.read_text() == ""


def test_accepting_an_unknown_host_key_records_it_as_openssh_does(
    shared_sshd: SshdServer, remote_file: Path, tmp_path: Path
) -> None:
    recorded = tmp_path / "known_hosts"
    recorded.touch()
    source = openssh_for(shared_sshd, known_hosts=recorded, accept_unknown_host_key=True)

    result = download(source, str(remote_file), tmp_path / "copy.dmp", None)

    assert result.sha256 == hashlib.sha256(remote_file.read_bytes()).hexdigest()
    host_key = shared_sshd.host_key.with_suffix(".pub").read_text().split()[1]
    assert host_key in recorded.read_text()


# -- the other connection steps ---------------------------------------------------------------------


def test_a_key_the_server_does_not_know_fails_at_auth(
    shared_sshd: SshdServer, remote_file: Path, tmp_path: Path
) -> None:
    stranger = generate_ed25519_key(tmp_path / "stranger")

    error = refused(openssh_for(shared_sshd, key_file=stranger), remote_file, tmp_path / "copy.dmp")

    assert error.stage == "auth"
    assert f"{shared_sshd.user} with key {stranger} was refused" in str(error)


def test_a_closed_port_fails_at_tcp(shared_sshd: SshdServer, remote_file: Path, tmp_path: Path) -> None:
    endpoint = OpenSshEndpoint(
        "127.0.0.1", free_loopback_port(), "root", shared_sshd.client_key, shared_sshd.known_hosts
    )

    error = refused(OpenSshSftp(endpoint), remote_file, tmp_path / "copy.dmp")

    assert error.stage == "tcp"
    assert "connection refused" in str(error)


# -- no shell, no outside configuration ------------------------------------------------------------


def test_the_command_line_is_an_argv_with_the_harness_policy_and_no_outside_config(tmp_path: Path) -> None:
    endpoint = OpenSshEndpoint("guest.example.test", 2222, "lkdh", tmp_path / "key", tmp_path / "k h")

    argv = endpoint.argv()

    assert argv[:3] == ["ssh", "-F", "none"]  # neither ~/.ssh/config nor /etc/ssh/ssh_config
    options = {argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"}
    for option in (
        "BatchMode=yes",
        "StrictHostKeyChecking=yes",
        f'UserKnownHostsFile="{tmp_path / "k h"}"',
        "GlobalKnownHostsFile=/dev/null",
        "UpdateHostKeys=no",
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        "ForwardAgent=no",
        "ClearAllForwardings=yes",
        "PermitLocalCommand=no",
    ):
        assert option in options
    assert argv[-4:] == ["-s", "--", "guest.example.test", "sftp"]


@pytest.mark.parametrize("name", ["%d/key", "${HOME}/key", 'a"b'])
def test_a_path_ssh_would_expand_is_refused_not_escaped(name: str, tmp_path: Path) -> None:
    endpoint = OpenSshEndpoint("127.0.0.1", 22, "lkdh", tmp_path / name, tmp_path / "known_hosts")

    with pytest.raises(ValueError, match="OpenSSH's ssh would expand"):
        endpoint.argv()


def test_a_remote_name_full_of_shell_characters_is_only_a_name(
    shared_sshd: SshdServer, tmp_path: Path
) -> None:
    """The path travels in SSH_FXP_OPEN, never through a shell: nothing runs, the file arrives."""
    folder = tmp_path / "guest"
    folder.mkdir()
    marker = f"lkdh-ran-{os.getpid()}"  # a shell would create it in the login's home folder
    hostile = folder / f"a b; touch {marker}; $(touch {marker}) `touch {marker}` 'q\".dmp"
    hostile.write_bytes(b"dump bytes")

    result = download(openssh_for(shared_sshd), str(hostile), tmp_path / "copy.dmp", None)

    assert (tmp_path / "copy.dmp").read_bytes() == b"dump bytes" and result.size == 10
    assert not (Path.home() / marker).exists() and not (folder / marker).exists()


# -- the read size ----------------------------------------------------------------------------------


def test_reads_are_as_large_as_the_servers_limits_say(shared_sshd: SshdServer) -> None:
    sftp = openssh_for(shared_sshd).open_sftp()
    try:
        assert sftp_transfer.read_request_size(sftp) == sftp_transfer.MAX_REQUEST_SIZE
    finally:
        sftp.close()


def test_a_server_without_the_limits_extension_gets_64_kib_reads(
    shared_sshd: SshdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenSSH before 8.7 (Windows' inbox 8.1) answers an unknown extended request with
    SSH_FX_OP_UNSUPPORTED, which paramiko raises as IOError: reproduced on the real client."""
    sftp = openssh_for(shared_sshd).open_sftp()
    try:

        def unsupported(*args: object) -> None:
            raise OSError("Operation unsupported")

        monkeypatch.setattr(sftp, "_request", unsupported)
        assert sftp_transfer.read_request_size(sftp) == sftp_transfer.REQUEST_SIZE == 64 << 10
    finally:
        sftp.close()


def test_closing_the_client_ends_ssh(shared_sshd: SshdServer) -> None:
    sftp = openssh_for(shared_sshd).open_sftp()
    process = sftp._process  # type: ignore[attr-defined]
    assert process.poll() is None
    sftp.close()
    assert process.poll() is not None


# -- choosing the transport -------------------------------------------------------------------------


def test_a_passphrase_key_cannot_be_forced_onto_openssh() -> None:
    settings = {"user": "lkdh", "key_file": "/k", "passphrase": {"env": "LKDH_KEY_PASSPHRASE"}}
    with pytest.raises(ValueError, match="sftp_client openssh cannot use a key with a passphrase"):
        SshSettings.model_validate({**settings, "sftp_client": "openssh"})
    assert SshSettings.model_validate(settings).sftp_client == "auto"


def test_the_endpoint_takes_the_config_settings(tmp_path: Path) -> None:
    settings = SshSettings.model_validate(
        {"user": "lkdh", "key_file": str(tmp_path / "k"), "port": 2222, "connect_timeout": 3}
    )
    endpoint = endpoint_for("guest.example.test", settings)
    assert (endpoint.host, endpoint.port, endpoint.user, endpoint.key_file) == (
        "guest.example.test",
        2222,
        "lkdh",
        tmp_path / "k",
    )
    assert endpoint.known_hosts == Path("~/.ssh/known_hosts").expanduser()
    assert not endpoint.accept_unknown_host_key


def test_an_openssh_client_is_a_paramiko_sftp_client(shared_sshd: SshdServer, remote_file: Path) -> None:
    sftp = openssh_for(shared_sshd).open_sftp()
    try:
        assert isinstance(sftp, paramiko.SFTPClient)
        assert sftp.stat(str(remote_file)).st_size == 300_000
    finally:
        sftp.close()
