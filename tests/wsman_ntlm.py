"""NTLM for the WS-Management test server, with pyspnego as the acceptor: the handshake, channel
binding on HTTPS and WinRM message encryption on HTTP, as a Windows WinRM listener does them.

What Windows does, and what this copies:
- The listener answers an unauthenticated request with 401 and `WWW-Authenticate: Negotiate`
  (RFC 4559; Windows' WinRM service with Negotiate authentication, its default). The client sends
  `Authorization: Negotiate <NTLM NEGOTIATE>`, gets 401 with `Negotiate <CHALLENGE>`, and sends the
  request again with `Negotiate <AUTHENTICATE>`; the connection stays authenticated afterwards
  (NTLM authenticates connections, MS-NLMP 1.3). A wrong password gets a bare 401.
- On HTTPS the AUTHENTICATE message carries the client's channel binding (MS-NLMP 2.2.2.1,
  MsvAvChannelBindings): the MD5 of `tls-server-end-point:` + the SHA-256 of the server's
  certificate (RFC 5929). Windows refuses a mismatch (Extended Protection, CbtHardeningLevel Strict):
  so does this server, and a test can hand it another certificate's binding (a TLS interceptor).
- On HTTP, Windows refuses unencrypted traffic (AllowUnencrypted defaults to false), so pywinrm seals
  every message (MS-WSMV 2.2.9.1.1, "Negotiate/SPNEGO"): a `multipart/encrypted` body with
  `protocol="application/HTTP-SPNEGO-session-encrypted"`, one part naming the original length, one
  `application/octet-stream` part holding a 4-byte little-endian signature length, the signature
  and the sealed message. Replies are sealed the same way. An empty POST (pywinrm's way of
  establishing the context before the first sealed message) is answered 200 with no body.

pyspnego's NTLM acceptor reads the accepted accounts from the file named by `NTLM_USER_FILE`
(`DOMAIN:USER:PASSWORD` lines); `NtlmAccounts` writes that file and sets the variable while the
server runs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import ssl
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import spnego
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

BOUNDARY = b"--Encrypted Boundary"
PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
NTLM_NEGOTIATE = b"NTLMSSP\x00\x01\x00\x00\x00"


class MessageError(Exception):
    """A sealed message that does not parse or verify (tampered, or sealed with another key)."""


def tls_server_end_point(certificate_der: bytes) -> GssChannelBindings:
    """RFC 5929 channel binding of a certificate signed with SHA-256 (the test PKI's are)."""
    return GssChannelBindings(
        application_data=b"tls-server-end-point:" + hashlib.sha256(certificate_der).digest()
    )


def certificate_der(pem_file: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem_file.read_text())


@contextmanager
def ntlm_accounts(folder: Path, accounts: dict[str, str]) -> Iterator[Path]:
    """Write the accepted accounts where pyspnego's acceptor looks (NTLM_USER_FILE) for the block."""
    store = folder / "ntlm-users"
    store.write_text("".join(f":{user}:{password}\n" for user, password in accounts.items()))
    previous = os.environ.get("NTLM_USER_FILE")
    os.environ["NTLM_USER_FILE"] = str(store)
    try:
        yield store
    finally:
        if previous is None:
            os.environ.pop("NTLM_USER_FILE", None)
        else:
            os.environ["NTLM_USER_FILE"] = previous


@dataclass
class NtlmConnection:
    """The NTLM state of one HTTP connection (the handler instance holds it)."""

    channel_bindings: GssChannelBindings | None
    context: spnego.ContextProxy | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def authenticated(self) -> bool:
        return self.context is not None and self.context.complete

    def step(self, authorization: str) -> tuple[bool, str | None]:
        """Feed one `Authorization` header; (authenticated now, the challenge to send back or None)."""
        scheme, _, token_text = authorization.partition(" ")
        if scheme.lower() != "negotiate" or not token_text:
            return False, None
        token = base64.b64decode(token_text)
        if token.startswith(NTLM_NEGOTIATE) or self.context is None:
            self.context = spnego.server(
                hostname="localhost", service="http", protocol="ntlm", channel_bindings=self.channel_bindings
            )
        try:
            reply = self.context.step(token)
        except SpnegoError as error:
            self.failures.append(str(error))
            self.context = None
            return False, None
        if self.context.complete:
            return True, None
        return False, base64.b64encode(reply or b"").decode()

    def unseal(self, content_type: str, body: bytes) -> bytes:
        """The SOAP envelope inside a `multipart/encrypted` body (MS-WSMV 2.2.9.1.1)."""
        assert self.context is not None
        if f'protocol="{PROTOCOL}"' not in content_type:
            raise MessageError(f"not an encrypted WinRM message: {content_type}")
        parts = [part for part in body.split(BOUNDARY + b"\r\n") if part]
        if len(parts) != 2 or not parts[1].endswith(BOUNDARY + b"--\r\n"):
            raise MessageError("expected one header part and one octet-stream part")
        length = re.search(rb"Length=(\d+)", parts[0])
        stream = parts[1][: -len(BOUNDARY + b"--\r\n")]
        prefix = b"\tContent-Type: application/octet-stream\r\n"
        if length is None or not stream.startswith(prefix):
            raise MessageError("the encrypted message lacks its length or its octet-stream part")
        sealed = stream[len(prefix) :]
        (signature_length,) = struct.unpack("<I", sealed[:4])
        signature, data = sealed[4 : 4 + signature_length], sealed[4 + signature_length :]
        try:
            message = self.context.unwrap_winrm(signature, data)
        except SpnegoError as error:
            raise MessageError(f"the signature does not verify: {error}") from error
        if len(message) != int(length.group(1)):
            raise MessageError(f"length {len(message)} differs from the announced {length.group(1).decode()}")
        return message

    def seal(self, envelope: bytes) -> tuple[bytes, str]:
        """(body, Content-Type) of a sealed reply."""
        assert self.context is not None
        wrapped = self.context.wrap_winrm(envelope)
        body = (
            BOUNDARY + b"\r\n"
            b"\tContent-Type: " + PROTOCOL.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
            + str(len(envelope)).encode()
            + b"\r\n"
            + BOUNDARY
            + b"\r\n"
            b"\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<I", len(wrapped.header))
            + wrapped.header
            + wrapped.data
            + BOUNDARY
            + b"--\r\n"
        )
        return body, f'multipart/encrypted;protocol="{PROTOCOL}";boundary="Encrypted Boundary"'
