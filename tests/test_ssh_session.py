"""SshSession against a real OpenSSH server on loopback (tests/sshd_server.py).

Every connection stage, deadline and reconnect here is exercised for real: real sshd, real key
exchange, real process kills standing in for a guest reboot or a cable pull.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sshd_server import SshdServer, free_loopback_port, generate_ed25519_key

from harness.target.windows.session import CommandTimeout, SessionError
from harness.target.windows.ssh_session import SshSession, posix_command_line, windows_command_line

pytest_plugins = ["conftest_ssh"]

SESSION_LOGGER = "harness.target.windows.ssh_session"
SessionFactory = Callable[..., SshSession]


def repeated(line: bytes, size: int) -> bytes:
    return (line * (size // len(line) + 1))[:size]


# -- running commands -----------------------------------------------------------------------------


def test_runs_a_command_with_stdin_exit_code_and_both_streams(ssh: SshSession) -> None:
    result = ssh.run(["sh", "-c", "cat; echo to-stderr >&2; exit 3"], stdin=b"from stdin\n", timeout=10)

    assert result.exit_code == 3
    assert not result.ok
    assert result.stdout == b"from stdin\n"
    assert result.stderr == b"to-stderr\n"


def test_a_command_killed_by_a_signal_is_a_result_not_a_lost_connection(ssh: SshSession) -> None:
    result = ssh.run(["sh", "-c", "echo before; kill -KILL $$"], timeout=10)

    assert result.exit_code == -1  # sshd reports exit-signal, which carries no exit status
    assert result.stdout == b"before\n"
    assert ssh.connected


def test_30_mib_on_stdout_and_stderr_at_once_does_not_deadlock(ssh: SshSession) -> None:
    size = 30 << 20
    script = f"yes stdout-line | head -c {size} & yes stderr-line | head -c {size} >&2; wait"
    streamed: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    result = ssh.run(
        ["sh", "-c", script], timeout=60, on_output=lambda name, chunk: streamed[name].extend(chunk)
    )

    assert result.exit_code == 0
    assert result.stdout == repeated(b"stdout-line\n", size)
    assert result.stderr == repeated(b"stderr-line\n", size)
    assert streamed["stdout"] == result.stdout and streamed["stderr"] == result.stderr


def test_large_stdin_is_fed_while_output_flows_back(ssh: SshSession) -> None:
    payload = repeated(b"0123456789abcdef", 8 << 20)

    result = ssh.run(["cat"], stdin=payload, timeout=60)

    assert result.stdout == payload


def test_argv_reaches_a_posix_shell_exactly_as_given(ssh: SshSession) -> None:
    awkward = ["two words", "$HOME", "'single'", '"double"', "semi;colon", "back\\slash", ""]

    result = ssh.run(["printf", "[%s]\\n", *awkward], timeout=10)

    assert result.stdout.decode().splitlines() == [f"[{arg}]" for arg in awkward]


def test_windows_command_line_quotes_for_the_c_runtime_and_refuses_cmd_metacharacters() -> None:
    line = windows_command_line(["lkdctl.exe", "store", r"C:\Program Files\lkdh\x.bin", "0x10"])
    assert line == r'lkdctl.exe store "C:\Program Files\lkdh\x.bin" 0x10'
    for hostile in ["a&b", "%PATH%", 'say "hi"', "x|y", "a^b", "line\nbreak"]:
        with pytest.raises(ValueError, match=r"cmd\.exe metacharacters"):
            windows_command_line(["lkdctl.exe", hostile])
    assert posix_command_line(["echo", "a b"]) == "echo 'a b'"


def process_is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a container's init may never reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_hung_command_is_cut_at_its_deadline_and_keeps_its_output(
    session_for: SessionFactory, sshd_server: SshdServer
) -> None:
    with session_for(sshd_server) as session:
        script = "echo started $$; echo warming-up >&2; exec sleep 600"
        with pytest.raises(CommandTimeout) as caught:
            session.run(["sh", "-c", script], timeout=2)

        assert caught.value.stage == "command"
        assert "within 2s" in str(caught.value)
        assert caught.value.partial.stdout.startswith(b"started ")
        assert caught.value.partial.stderr == b"warming-up\n"
        assert session.run(["echo", "still usable"], timeout=10).stdout == b"still usable\n"
        # The kill request reached sshd. It refuses signals for *root* logins ("requires privilege
        # separation") and honours them for other users; either way, stopping this test's sshd while
        # the session is open takes the sleep with it, so nothing outlives the test.
        assert "session_signal_req" in sshd_server.log_text()
        sleeper = int(caught.value.partial.stdout.split()[1])
        sshd_server.stop()
    deadline = time.monotonic() + 10
    while process_is_running(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_is_running(sleeper)


# -- reconnecting ---------------------------------------------------------------------------------


class _RestartOnFirstFailedAttempt(logging.Handler):
    """Brings the server back when the session reports its first failed attempt, so the test knows
    the first attempt met a dead server without relying on how long anything takes."""

    def __init__(self, server: SshdServer) -> None:
        super().__init__(logging.INFO)
        self.server, self.failures = server, 0

    def emit(self, record: logging.LogRecord) -> None:
        if "reconnect attempt" in record.getMessage():
            self.failures += 1
            if self.failures == 1:
                self.server.start()


@pytest.fixture
def restart_on_first_failure(sshd_server: SshdServer) -> Iterator[_RestartOnFirstFailedAttempt]:
    logger = logging.getLogger(SESSION_LOGGER)
    handler, level = _RestartOnFirstFailedAttempt(sshd_server), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_reconnect_backs_off_until_the_rebooted_server_answers(
    session_for: SessionFactory,
    sshd_server: SshdServer,
    restart_on_first_failure: _RestartOnFirstFailedAttempt,
) -> None:
    with session_for(sshd_server) as session:
        session.connect()
        sshd_server.stop()  # the guest reboots

        attempts = session.reconnect(max_attempts=10, initial_delay=0.05, max_delay=0.2)

        assert attempts == 2
        assert restart_on_first_failure.failures == 1
        assert session.run(["echo", "back"], timeout=10).stdout == b"back\n"


def test_reconnect_gives_up_after_its_attempts_with_the_last_error(caplog: pytest.LogCaptureFixture) -> None:
    session = SshSession("127.0.0.1", free_loopback_port(), "nobody", "/nonexistent/key", posix=True)
    caplog.set_level(logging.INFO, logger=SESSION_LOGGER)

    with pytest.raises(SessionError) as caught:
        session.reconnect(max_attempts=3, initial_delay=0.01, max_delay=0.02)

    assert caught.value.stage == "tcp"
    assert len([r for r in caplog.records if "reconnect attempt" in r.getMessage()]) == 2


def test_run_stops_reconnecting_at_its_own_deadline(
    session_for: SessionFactory, sshd_server: SshdServer
) -> None:
    """The command's timeout bounds the reconnect too: the default backoff (1+2+4+...+30 s) would
    otherwise hold run(timeout=1) for 91 s against a machine that stays down."""
    with session_for(sshd_server) as session:
        session.connect()
        sshd_server.stop()
        start = time.monotonic()
        with pytest.raises(SessionError) as caught:
            session.run(["echo", "never"], timeout=1)
    assert caught.value.stage == "tcp"
    assert time.monotonic() - start < 1 + session.connect_timeout


def test_a_session_that_never_connected_tries_once() -> None:
    """No earlier connection, so no reboot to wait out: a closed port fails at once, not after the backoff."""
    session = SshSession("127.0.0.1", free_loopback_port(), "nobody", "/nonexistent/key", posix=True)
    start = time.monotonic()
    with pytest.raises(SessionError) as caught:
        session.run(["echo", "never"], timeout=600)
    assert caught.value.stage == "tcp"
    assert time.monotonic() - start < session.backoff.initial_delay


def test_run_reconnects_when_the_connection_died_between_commands(
    session_for: SessionFactory, sshd_server: SshdServer
) -> None:
    with session_for(sshd_server) as session:
        before = session.run(["sh", "-c", "echo $SSH_CLIENT"], timeout=10).stdout.split()
        sshd_server.restart()

        after = session.run(["sh", "-c", "echo $SSH_CLIENT"], timeout=10).stdout.split()

        assert before[1] != after[1], "a new TCP connection has a new client port"


def test_a_command_cut_off_mid_run_is_reported_and_never_rerun(
    session_for: SessionFactory, sshd_server: SshdServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.log"
    script = f"echo started >> {runs}; echo running; exec sleep 30"

    def pull_the_cable(stream: str, chunk: bytes) -> None:
        sshd_server.stop()

    with session_for(sshd_server) as session:
        with pytest.raises(SessionError) as caught:
            session.run(["sh", "-c", script], timeout=20, on_output=pull_the_cable)
        assert caught.value.stage == "command"
        assert "not retried" in str(caught.value)

        sshd_server.start()
        assert session.run(["echo", "fresh"], timeout=10).stdout == b"fresh\n"
    assert runs.read_text() == "started\n"


# -- connection stages ----------------------------------------------------------------------------


def test_unknown_host_key_is_refused_by_default(
    session_for: SessionFactory, shared_sshd: SshdServer, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.touch()

    with pytest.raises(SessionError) as caught:
        session_for(shared_sshd, known_hosts=empty).connect()

    assert caught.value.stage == "auth"
    assert f"[127.0.0.1]:{shared_sshd.port}" in str(caught.value)
    assert "is not in known_hosts" in str(caught.value)
    assert empty.read_text() == ""


def test_accepting_an_unknown_host_key_records_it_for_next_time(
    session_for: SessionFactory, shared_sshd: SshdServer, tmp_path: Path
) -> None:
    recorded = tmp_path / "ssh" / "known_hosts"
    with session_for(shared_sshd, known_hosts=recorded, accept_unknown_host_key=True) as first:
        first.connect()

    host_key = shared_sshd.host_key.with_suffix(".pub").read_text().split()[1]
    assert host_key in recorded.read_text()
    with session_for(shared_sshd, known_hosts=recorded) as strict:
        assert strict.run(["true"], timeout=10).ok


def test_a_changed_host_key_is_refused_even_when_accepting_unknown_keys(
    session_for: SessionFactory, shared_sshd: SshdServer, tmp_path: Path
) -> None:
    impostor = generate_ed25519_key(tmp_path / "other_host_key")
    kind, blob = impostor.with_suffix(".pub").read_text().split()[:2]
    stale = tmp_path / "known_hosts"
    stale.write_text(f"[127.0.0.1]:{shared_sshd.port} {kind} {blob}\n")

    with pytest.raises(SessionError) as caught:
        session_for(shared_sshd, known_hosts=stale, accept_unknown_host_key=True).connect()

    assert caught.value.stage == "auth"
    assert "does not match known_hosts" in str(caught.value)


def test_a_key_the_server_does_not_know_fails_at_auth(
    session_for: SessionFactory, shared_sshd: SshdServer, tmp_path: Path
) -> None:
    stranger = generate_ed25519_key(tmp_path / "stranger")

    with pytest.raises(SessionError) as caught:
        session_for(shared_sshd, key_file=stranger).connect()

    assert caught.value.stage == "auth"
    assert f"{shared_sshd.user} with key {stranger} was refused" in str(caught.value)


def test_a_closed_port_fails_at_tcp() -> None:
    port = free_loopback_port()
    session = SshSession("127.0.0.1", port, "root", "/nonexistent/key", connect_timeout=2)

    with pytest.raises(SessionError) as caught:
        session.connect()

    assert caught.value.stage == "tcp"
    assert f"port {port}" in str(caught.value)


def test_an_unresolvable_name_fails_at_resolve() -> None:
    with pytest.raises(SessionError) as caught:
        SshSession("lkdh-no-such-guest.invalid", 22, "root", "/nonexistent/key").connect()

    assert caught.value.stage == "resolve"
    assert "lkdh-no-such-guest.invalid" in str(caught.value)


@pytest.fixture
def not_an_ssh_server() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback port that accepts and answers like a web server, or not at all (greeting b"")."""
    listener = socket.create_server(("127.0.0.1", 0))
    greetings: list[bytes] = []
    connections: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connections.append(connection)
            if greetings and greetings[0]:
                connection.sendall(greetings[0])
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], greetings
    listener.close()
    for connection in connections:
        connection.close()


@pytest.mark.parametrize("greeting", [b"HTTP/1.1 400 Bad Request\r\n\r\n", b""], ids=["http", "silent"])
def test_a_port_that_does_not_speak_ssh_fails_the_handshake_at_tcp(
    not_an_ssh_server: tuple[int, list[bytes]], greeting: bytes
) -> None:
    port, greetings = not_an_ssh_server
    greetings.append(greeting)

    with pytest.raises(SessionError) as caught:
        SshSession("127.0.0.1", port, "root", "/nonexistent/key", connect_timeout=1).connect()

    assert caught.value.stage == "tcp"
    assert "SSH handshake" in str(caught.value)


# -- secrets --------------------------------------------------------------------------------------


def test_the_passphrase_never_appears_in_reprs_errors_or_logs(
    session_for: SessionFactory, shared_sshd: SshdServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    passphrase = f"pp-{uuid.uuid4().hex}"
    key = generate_ed25519_key(tmp_path / "locked", passphrase=passphrase)
    shared_sshd.authorize(key.with_suffix(".pub"))
    caplog.set_level(logging.DEBUG)  # paramiko's own debug logging included

    with session_for(shared_sshd, key_file=key, passphrase=passphrase) as unlocked:
        assert unlocked.run(["echo", "in"], timeout=10).stdout == b"in\n"
        shown = [repr(unlocked), str(unlocked), repr(unlocked._passphrase)]

    failures = []
    for wrong in ("wrong-" + passphrase[::-1], None):
        with pytest.raises(SessionError) as caught:
            session_for(shared_sshd, key_file=key, passphrase=wrong).connect()
        assert caught.value.stage == "auth"
        failures.append(caught)
    assert "passphrase is wrong" in str(failures[0].value)
    assert "needs a passphrase" in str(failures[1].value)

    evidence = shown + [str(c.value) + repr(c.value) + str(c.getrepr()) for c in failures]
    evidence += [record.getMessage() for record in caplog.records] + [caplog.text]
    assert len(caplog.records) > 10, "debug logging was captured"
    for text in evidence:
        assert passphrase not in text
        assert passphrase[::-1] not in text
