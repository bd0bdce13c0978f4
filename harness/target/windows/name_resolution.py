"""Name resolution with a deadline, for every connection the harness opens (issue 10, item 7).

`socket.getaddrinfo` takes no timeout: glibc's stub resolver tries every nameserver in resolv.conf
`attempts` times for `timeout` seconds each (resolv.conf(5): 5 s and 2 by default), for A and AAAA and
for every search domain, so an unresolvable host can take minutes to fail (91 s here, with the
session's connect_timeout at 10 s). `socket.create_connection` and urllib3 resolve the same way
before their own timeout starts. Nothing in the standard library or urllib3 bounds it, and an
asynchronous resolver (aiodns, dnspython) would bypass /etc/hosts, nsswitch and the user's VPN
resolver, which the system's getaddrinfo honours; so the system resolver runs in a daemon thread and
the caller stops waiting at the deadline. The thread finishes on its own when glibc gives up; being
a daemon, it never holds the process open.

An IP literal is resolved in the caller's thread: getaddrinfo(3) parses it without any lookup.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any

AddrInfo = tuple[Any, Any, int, str, Any]
"""One getaddrinfo entry: (family, type, proto, canonname, sockaddr)."""


class ResolutionTimeout(TimeoutError):
    """The resolver had not answered for `host` when the deadline passed."""

    def __init__(self, host: str, timeout: float) -> None:
        super().__init__(f"no answer from the name resolver for {host} within {timeout:g} s")
        self.host = host
        self.timeout = timeout


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def getaddrinfo_within(
    host: str, port: int, timeout: float, *, family: int = 0, kind: int = socket.SOCK_STREAM
) -> list[AddrInfo]:
    """`socket.getaddrinfo(host, port, family, kind)`, or ResolutionTimeout after `timeout` seconds.

    socket.gaierror (the name does not exist, no nameserver answered before glibc gave up) passes
    through unchanged, so callers keep telling "no such name" apart from "no answer in time".
    """
    if _is_ip_literal(host):
        return socket.getaddrinfo(host, port, family, kind)
    outcome: list[list[AddrInfo] | BaseException] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, family, kind))
        except BaseException as error:  # handed to the waiting caller, re-raised there
            outcome.append(error)
        done.set()

    threading.Thread(target=lookup, name=f"lkdh-resolve {host}", daemon=True).start()
    if not done.wait(max(timeout, 0.0)):
        raise ResolutionTimeout(host, timeout)
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def create_connection_within(
    host: str,
    port: int,
    timeout: float,
    *,
    family: int = 0,
    source_address: tuple[str, int] | None = None,
    socket_options: list[tuple[int, int, int | bytes]] | None = None,
) -> socket.socket:
    """`socket.create_connection((host, port), timeout)` where `timeout` bounds resolution and connect
    together: each address gets the time left, not a fresh `timeout`.

    Raises ResolutionTimeout, socket.gaierror, TimeoutError (connect) or the last address's OSError.
    """
    deadline = time.monotonic() + timeout
    addresses = getaddrinfo_within(host, port, timeout, family=family)
    last: OSError | None = None
    for address_family, kind, proto, _name, address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock = socket.socket(address_family, kind, proto)
        try:
            for level, option, value in socket_options or ():
                sock.setsockopt(level, option, value)
            sock.settimeout(left)
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
        except OSError as error:
            sock.close()
            last = error
            continue
        sock.settimeout(timeout)
        return sock
    if last is not None:
        raise last
    raise TimeoutError(f"connecting to {host}:{port} took longer than {timeout:g} s")
