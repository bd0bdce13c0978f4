"""Every connection and every `lkdh target check` stage honours its deadline, name resolution included
(issue 10, item 7: an unresolvable hypervisor host took 91 s to fail with connect_timeout 10).

No hanging DNS server is reachable from here, so the system resolver is replaced by a double of
glibc's getaddrinfo on a machine whose nameserver never answers. It behaves as documented:
- resolv.conf(5): the stub resolver waits `timeout` (5 s) per query and tries `attempts` (2) rounds
  per nameserver, then getaddrinfo(3) fails with EAI_AGAIN, "Temporary failure in name resolution";
  the double gives up after GIVES_UP_AFTER seconds the same way, or when the test ends;
- getaddrinfo(3): a numeric address is converted without any lookup, and names in /etc/hosts
  (localhost) are answered from the file, so both go to the real resolver at once.
Everything else is real: the WinRM session with its requests adapters, the SSH session, the stage
check, loopback sockets.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.target.windows.config import TargetConfig, TlsTrust
from harness.target.windows.name_resolution import (
    ResolutionTimeout,
    create_connection_within,
    getaddrinfo_within,
)
from harness.target.windows.session import SessionError
from harness.target.windows.stage_check import ConfiguredSessions, StageFailed, check_target, check_tls

STALLED = ".lkdh-stalled.test"
GIVES_UP_AFTER = 8.0
"""Longer than any deadline below, so the old, unbounded code fails every timing assertion."""
SLACK = 1.5
"""Thread start-up and a loaded 2-core machine; far below GIVES_UP_AFTER."""


class StalledResolver:
    """socket.getaddrinfo for names under STALLED whose nameserver never answers.

    `answers_first` lets the first N lookups of a name succeed with 127.0.0.1, as a resolver cache
    would before it expires, so a stage after `resolve` can meet the stalled lookup itself.
    """

    def __init__(self, real: Any, answers_first: int = 0) -> None:
        self.real = real
        self.answers_first = answers_first
        self.released = threading.Event()
        self.asked: list[str] = []

    def __call__(self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not name.endswith(STALLED):
            return self.real(host, port, family, type, proto, flags)
        self.asked.append(name)
        if self.asked.count(name) <= self.answers_first:
            return self.real("127.0.0.1", port, socket.AF_INET, type, proto, flags)
        self.released.wait(GIVES_UP_AFTER)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


@pytest.fixture
def stalled(monkeypatch: pytest.MonkeyPatch) -> Iterator[StalledResolver]:
    resolver = StalledResolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    yield resolver
    resolver.released.set()  # the abandoned lookups finish now, not GIVES_UP_AFTER later


def _timed(call: Any) -> tuple[Any, float]:
    start = time.monotonic()
    try:
        outcome = call()
    except Exception as error:  # the caller checks what was raised
        outcome = error
    return outcome, time.monotonic() - start


def _config(host: str, port: int = 5986, **extra: Any) -> TargetConfig:
    winrm = {
        "port": port,
        "username": "lkdh-admin",
        "password": {"env": "LKDH_TEST_PW"},
        "connect_timeout": 1,
        "operation_timeout": 2,
        "scheme": "http",
        "allow_insecure_http": True,
    }
    data = {
        "name": "lab",
        "host": host,
        "winrm": winrm,
        "driver": {"package": "/p", "hardware_id": "Root\\LkdhTestDriver", "lkdctl": "/l.exe"},
        "timeouts": {"command": 5},
        **extra,
    }
    return TargetConfig.model_validate(data)


def test_a_lookup_that_never_answers_is_abandoned_at_the_deadline(stalled: StalledResolver) -> None:
    error, seconds = _timed(lambda: getaddrinfo_within(f"vm{STALLED}", 5986, 0.5))
    assert isinstance(error, ResolutionTimeout)
    assert str(error) == f"no answer from the name resolver for vm{STALLED} within 0.5 s"
    assert seconds < 0.5 + SLACK


def test_resolver_failures_and_literals_pass_through(stalled: StalledResolver) -> None:
    with pytest.raises(socket.gaierror):
        getaddrinfo_within("name.invalid", 1, 5)  # RFC 6761: never resolves; an answer, not a timeout
    [(family, *_rest, address)] = getaddrinfo_within("127.0.0.1", 80, 0.0)  # no lookup, no wait
    assert (family, address) == (socket.AF_INET, ("127.0.0.1", 80))
    assert stalled.asked == []


def test_create_connection_shares_one_deadline_between_lookup_and_connect(stalled: StalledResolver) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with create_connection_within("localhost", port, 2) as sock:
            assert sock.getpeername()[1] == port
        error, seconds = _timed(lambda: create_connection_within(f"vm{STALLED}", port, 0.5))
    assert isinstance(error, ResolutionTimeout) and seconds < 0.5 + SLACK


def test_a_winrm_session_to_an_unresolvable_host_fails_at_resolve_within_connect_timeout(
    stalled: StalledResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real requests/urllib3 path: before, urllib3 resolved with no bound at all."""
    from harness.target.windows.winrm_session import WinRMSession

    monkeypatch.setenv("LKDH_TEST_PW", "unused")
    for scheme, extra in (("http", {"allow_insecure_http": True}), ("https", {}), ("https", {"pin": True})):
        pin = "ab" * 32 if extra.pop("pin", False) else None
        session = WinRMSession(
            f"vm{STALLED}",
            port=5985,
            username="lkdh-admin",
            password="unused",
            transport="basic",
            scheme=scheme,
            connect_timeout=1,
            operation_timeout=2,
            pinned_thumbprint=pin,
            **extra,
        )
        error, seconds = _timed(lambda s=session: s.run(["hostname"], timeout=10))
        session.close()
        assert isinstance(error, SessionError), (scheme, pin, error)
        assert (error.stage, error.detail) == (
            "resolve",
            f"no answer from the name resolver for 'vm{STALLED}' within 1 s",
        )
        assert seconds < 1 + SLACK, (scheme, pin)


def test_an_ssh_session_to_an_unresolvable_host_fails_at_resolve_within_connect_timeout(
    stalled: StalledResolver, tmp_path: Any
) -> None:
    from harness.target.windows.ssh_session import SshSession

    session = SshSession(f"kvm{STALLED}", 22, "lkdh", tmp_path / "id", connect_timeout=1, posix=True)
    error, seconds = _timed(session.connect)
    assert isinstance(error, SessionError) and error.stage == "resolve"
    assert (
        error.detail
        == f"cannot resolve kvm{STALLED}: no answer from the name resolver for kvm{STALLED} within 1 s"
    )
    assert seconds < 1 + SLACK


def test_target_check_with_unresolvable_vm_and_hyperv_hosts_ends_within_their_deadlines(
    stalled: StalledResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported case: both hosts unresolvable; each stage stops at its own connect_timeout."""
    monkeypatch.setenv("LKDH_TEST_PW", "unused")
    hyperv = {
        "kind": "hyperv",
        "host": f"hv01{STALLED}",
        "winrm": {"username": "op", "password": {"env": "LKDH_TEST_PW"}, "connect_timeout": 1},
        "vm_name": "Win11 Lab",
        "checkpoint": "clean",
    }
    config = _config(f"vm{STALLED}", hypervisor=hyperv)
    results, seconds = _timed(lambda: check_target(config, session_factory=ConfiguredSessions()))
    by_stage = {result.stage: result for result in results}
    assert by_stage["resolve"].message == (
        f"cannot resolve vm{STALLED}: no answer from the name resolver for vm{STALLED} within 1 s"
    )
    assert by_stage["hypervisor"].message == (
        f"hv01{STALLED}: resolve: no answer from the name resolver for 'hv01{STALLED}' within 1 s"
    )
    assert by_stage["resolve"].seconds < 1 + SLACK and by_stage["hypervisor"].seconds < 1 + SLACK
    assert seconds < 2 + 2 * SLACK


def test_target_check_with_an_unresolvable_libvirt_host_ends_within_its_deadline(
    stalled: StalledResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    libvirt = {
        "kind": "libvirt",
        "ssh": {"host": f"kvm{STALLED}", "user": "lkdh", "key_file": "/nonexistent/id", "connect_timeout": 1},
        "domain": "win11-lab",
        "snapshot": "clean",
    }
    results = check_target(_config("127.0.0.1", 1, hypervisor=libvirt), session_factory=ConfiguredSessions())
    hypervisor = results[-1]
    assert hypervisor.stage == "hypervisor" and not hypervisor.ok
    assert hypervisor.message.startswith(f"kvm{STALLED}: resolve: cannot resolve kvm{STALLED}: no answer")
    assert hypervisor.seconds < 1 + SLACK


def test_the_tcp_and_tls_stages_resolve_within_their_deadline_too(stalled: StalledResolver) -> None:
    """A resolver whose first answer was cached, then stalls: `resolve` passes, `tcp` meets the stall."""
    stalled.answers_first = 1
    with socket.create_server(("127.0.0.1", 0)) as server:
        config = _config(f"vm{STALLED}", server.getsockname()[1])
        results = check_target(config, session_factory=ConfiguredSessions())
    by_stage = {result.stage: result for result in results}
    assert by_stage["resolve"].ok and by_stage["resolve"].message == f"vm{STALLED} is 127.0.0.1"
    assert not by_stage["tcp"].ok and by_stage["tcp"].message.startswith(
        f"cannot resolve vm{STALLED}: no answer"
    )
    assert by_stage["tcp"].seconds < 1 + SLACK
    stalled.answers_first = 0
    error, seconds = _timed(lambda: check_tls(f"tls{STALLED}", 5986, TlsTrust(), timeout=1))
    assert isinstance(error, StageFailed) and str(error).startswith(f"cannot resolve tls{STALLED}: no answer")
    assert seconds < 1 + SLACK
