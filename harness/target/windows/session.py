"""What every remote session (WinRM or SSH) offers the Windows target, and how it fails.

The machine layer speaks to a guest only through `RemoteSession.run`: a fixed argv (never built from
untrusted values: data travels on stdin), a wall-clock deadline, and streamed output. Failures are
classified by connection stage so `lkdh target check` and the run report can say which step failed
(resolve, TCP, TLS, auth, ...) rather than print a transport traceback. No exception text may carry
a credential: sessions build their messages from host, port, user name and stage only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from harness.target.base import TargetError

OutputCallback = Callable[[str, bytes], None]
"""Called as output arrives: ("stdout" | "stderr", chunk)."""

STAGES = ("resolve", "tcp", "tls", "auth", "shell", "command", "transfer")
"""Connection stages, in the order a session passes them."""


@dataclass(frozen=True)
class CommandResult:
    """A finished remote command: exit code and everything it wrote."""

    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class SessionError(TargetError):
    """A remote session failed at one stage (one of STAGES); `host` names the machine."""

    def __init__(self, stage: str, host: str, message: str) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown session stage {stage!r}")
        super().__init__(f"{host}: {stage}: {message}")
        self.stage = stage
        self.host = host
        self.detail = message


class CommandTimeout(SessionError):
    """A command outlived its deadline; it was signalled to stop and whatever it wrote is kept."""

    def __init__(self, host: str, message: str, partial: CommandResult) -> None:
        super().__init__("command", host, message)
        self.partial = partial


class RemoteSession(Protocol):
    """A connection to one guest that runs commands with a deadline."""

    host: str

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes = b"",
        timeout: float,
        on_output: OutputCallback | None = None,
    ) -> CommandResult:
        """Run argv[0] with argv[1:], feed `stdin`, stop it after `timeout` seconds (CommandTimeout)."""

    def close(self) -> None:
        """Release the connection; safe to call twice."""
