"""The system libvirt daemon for the tests: `qemu:///system` on this machine, started here if it is not up.

There is no systemd here (nor in CI's container), so nothing starts libvirtd on demand through its
socket units. The tests start the monolithic `libvirtd` (libvirt-daemon-system) and `virtlogd`
(libvirt's QEMU driver sends each domain's QEMU log through it, qemu.conf `stdio_handler = "logd"`
by default) themselves, wait for their sockets, and stop in the end only what they started. A
daemon already running (a developer's machine with systemd) is used as it is.

No file under /etc is changed: what the tests' domains need from the daemon's configuration is in
the domain XML instead (tests/libvirt_domain.py: QEMU runs as root without relabelling, so it reads
the pytest tmp disks and ~/.cache's kernel).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

RUN = Path("/run/libvirt")
DAEMONS = (("virtlogd", RUN / "virtlogd-sock"), ("libvirtd", RUN / "libvirt-sock"))
"""virtlogd first: libvirtd's QEMU driver needs it as soon as a domain starts."""
SOCKET_DEADLINE = 60.0
STOP_GRACE = 15.0


class LibvirtDaemonError(RuntimeError):
    """A daemon did not come up; the message carries its log."""


def libvirtd_missing_reason() -> str | None:
    """Why the tests cannot run a system libvirtd here, or None when they can."""
    if os.geteuid() != 0:
        return "qemu:///system needs root to start libvirtd"
    for name, _socket in DAEMONS:
        if shutil.which(name, path="/usr/sbin:/usr/bin") is None:
            return f"{name} not found (.ci/run installs libvirt-daemon-system)"
    try:
        import libvirt  # noqa: F401  (the tests' client)
    except ImportError:
        return "libvirt-python not installed (pip install -e '.[libvirt]'; needs libvirt-dev)"
    return None


def listening(path: Path) -> bool:
    """A daemon accepts connections on the unix socket `path` (a stale socket file does not)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


@dataclass
class LibvirtDaemons:
    """The daemons this run started (none when they were already running), with their logs."""

    folder: Path
    started: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, path in DAEMONS:
            if listening(path):
                continue
            log = self.folder / f"{name}.log"
            with log.open("ab") as output:
                process = subprocess.Popen(
                    [shutil.which(name, path="/usr/sbin:/usr/bin") or name],
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.started.append((name, process))
            self._wait(name, path, process, log)

    def _wait(self, name: str, path: Path, process: subprocess.Popen[bytes], log: Path) -> None:
        until = time.monotonic() + SOCKET_DEADLINE
        while not listening(path):
            if process.poll() is not None or time.monotonic() > until:
                tail = log.read_text(errors="replace")[-3000:]
                self.stop()
                raise LibvirtDaemonError(f"{name} did not listen on {path}:\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM (libvirtd and virtlogd shut down cleanly on it), SIGKILL after a grace period."""
        while self.started:
            _name, process = self.started.pop()
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    process.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(STOP_GRACE)
