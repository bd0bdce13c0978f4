"""Fixtures for the SSH and SFTP tests: a real sshd on loopback and sessions logged in to it.

Registered by the test modules that need it (`pytest_plugins = ["conftest_ssh"]`), so the rest of the
suite pays nothing. A session-wide server serves tests that leave it alone; tests that kill or restart
the server get their own (`sshd_server`), so a "reboot" never breaks a neighbour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from required_tools import tool_missing
from sshd_server import SshdServer, sshd_missing_reason

from harness.target.windows.ssh_session import SshSession

SessionFactory = Callable[..., SshSession]


def new_session(server: SshdServer, **overrides: Any) -> SshSession:
    """A POSIX-quoting session with the server's client key that trusts exactly its host key."""
    settings: dict[str, Any] = {
        "key_file": server.client_key,
        "known_hosts": server.known_hosts,
        "connect_timeout": 5.0,
        "posix": True,
    }
    settings.update(overrides)
    return SshSession("127.0.0.1", server.port, server.user, **settings)


@pytest.fixture
def session_for() -> SessionFactory:
    """`session_for(server, **overrides)`: a new, not yet connected session to a test sshd."""
    return new_session


def _started(folder: Any) -> SshdServer:
    reason = sshd_missing_reason()
    if reason:
        tool_missing(reason)
    server = SshdServer(folder)
    server.start()
    return server


@pytest.fixture(scope="session")
def shared_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    """One sshd for the whole run; tests using it must not stop or restart it."""
    server = _started(tmp_path_factory.mktemp("sshd-shared"))
    yield server
    server.stop()


@pytest.fixture
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    """A private sshd this test may kill and restart."""
    server = _started(tmp_path_factory.mktemp("sshd-own"))
    yield server
    server.stop()


@pytest.fixture
def ssh(shared_sshd: SshdServer) -> Iterator[SshSession]:
    """A connected session to the shared sshd."""
    with new_session(shared_sshd) as session:
        session.connect()
        yield session
