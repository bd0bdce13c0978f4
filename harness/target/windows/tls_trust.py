"""Whom a WinRM session trusts over https: the system's CAs by default, or one pinned certificate.

A test VM's WinRM listener usually has a self-signed certificate, so the usual answer is a pin: the
SHA-256 or SHA-1 thumbprint of that exact certificate. The pin is enforced by urllib3 during the
handshake (`assert_fingerprint` on every connection pool of a requests adapter mounted for
https://), before any credential is sent. Without a pin or a CA bundle, trust is the operating
system's CA store, never the one an environment variable happens to name.

Both adapters resolve the host within the connect timeout (name_resolution.py): urllib3's own
connect resolves with no bound at all, so an unresolvable host would outlast every deadline.
"""

from __future__ import annotations

import socket
import ssl
import sys
from pathlib import Path
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

from harness.target.windows.name_resolution import create_connection_within


def normalize_thumbprint(thumbprint: str) -> str:
    """Lower-case hex without separators; a SHA-1 (40 digits, as certlm shows it) or SHA-256 (64)."""
    digits = thumbprint.replace(":", "").replace(" ", "").strip().lower()
    if len(digits) not in (40, 64) or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError("pinned_thumbprint must be a SHA-1 (40) or SHA-256 (64) hex digest")
    return digits


def system_trust_store() -> str | bool:
    """The operating system's CA bundle (or directory), so the default trust is the machine's own.

    Falls back to True (requests' bundled Mozilla CAs) on a system that has neither.
    """
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.capath):
        if candidate and Path(candidate).exists():
            return candidate
    return True


class _ResolvesWithinTimeout(HTTPConnection):
    """urllib3's connection with `_new_conn` resolving and connecting within the connect timeout.

    The exception mapping is urllib3's own (urllib3/connection.py, HTTPConnection._new_conn), so
    requests and winrm_failures.py see the types they already know; a resolver that did not answer
    in time is a ConnectTimeoutError caused by name_resolution.ResolutionTimeout.
    """

    def _new_conn(self) -> socket.socket:
        timeout = self.timeout
        if not isinstance(timeout, int | float):  # no timeout asked for: urllib3's behaviour
            return super()._new_conn()
        try:
            sock = create_connection_within(
                self._dns_host,
                self.port,
                timeout,
                family=allowed_gai_family(),
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        except TimeoutError as error:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out: {error} (connect timeout={timeout})"
            ) from error
        except OSError as error:
            raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock


class _BoundedHTTPConnection(_ResolvesWithinTimeout):
    pass


class _BoundedHTTPSConnection(_ResolvesWithinTimeout, HTTPSConnection):
    pass


class _BoundedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _BoundedHTTPConnection


class _BoundedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _BoundedHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose connections resolve the host within the connect timeout."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _BoundedHTTPConnectionPool,
            "https": _BoundedHTTPSConnectionPool,
        }


class PinnedCertificateAdapter(DeadlineAdapter):
    """An https:// adapter that accepts exactly one server certificate, identified by its thumbprint.

    urllib3 hashes the certificate the server presents and aborts the handshake on a mismatch
    (requests raises SSLError). CA validation and the host name check are off for this adapter: the
    pin names the certificate itself, which is stronger than either.
    """

    def __init__(self, thumbprint: str, **kwargs: Any) -> None:
        self._thumbprint = normalize_thumbprint(thumbprint)  # set first: HTTPAdapter.__init__ builds pools
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["assert_fingerprint"] = self._thumbprint
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["assert_fingerprint"] = self._thumbprint
        return super().proxy_manager_for(proxy, **proxy_kwargs)
