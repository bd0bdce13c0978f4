"""A real OpenSSH server on 127.0.0.1 for the SSH and SFTP tests: its own config, keys and port.

The Windows guest runs OpenSSH's sshd; the closest thing this machine has is the same daemon on
loopback, so the session and transfer code meet a real server (real key exchange, real SFTP
subsystem, real connection loss when it is killed) instead of a fake. Everything the server needs
lives in one scratch folder: host key, client key, authorized_keys, known_hosts, pid file and log.

`stop()` kills the listener *and* every process below it. sshd gives each connection a new session
(setsid), so killing the process group would leave live connections open; we walk /proc instead,
freezing the tree with SIGSTOP before SIGKILL so nothing forks away while we look.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
STARTUP_DEADLINE = 15.0


class SshdError(RuntimeError):
    """The test sshd did not come up; the message carries its log."""


def sshd_missing_reason() -> str | None:
    """Why the real-sshd tests cannot run here, or None when they can."""
    if not SSHD.is_file():
        return f"{SSHD} not found (apt-get install openssh-server; .ci/run installs it)"
    return None


def free_loopback_port() -> int:
    """A port nobody listens on right now (sshd binds it a moment later; start() retries on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def generate_ed25519_key(path: Path, passphrase: str = "", comment: str = "lkdh-test") -> Path:
    """Write an OpenSSH ed25519 key pair at `path` and `path`.pub."""
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path


def _children_by_parent() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue  # the process ended while we looked
        for line in status.splitlines():
            if line.startswith("PPid:"):
                tree.setdefault(int(line.split()[1]), []).append(int(entry.name))
                break
    return tree


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants, parents first."""
    tree = _children_by_parent()
    found, pending = [], [root]
    while pending:
        pid = pending.pop(0)
        found.append(pid)
        pending.extend(tree.get(pid, []))
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


@dataclass
class SshdServer:
    """One sshd on 127.0.0.1:`port`, logging in `user` with `client_key` only."""

    workdir: Path
    port: int = 0
    user: str = field(default_factory=lambda: pwd.getpwuid(os.geteuid()).pw_name)
    extra_config: list[str] = field(default_factory=list)
    """sshd_config lines added after the defaults (a ChrootDirectory, say)."""
    _process: subprocess.Popen[bytes] | None = None

    @property
    def client_key(self) -> Path:
        return self.workdir / "client_ed25519"

    @property
    def host_key(self) -> Path:
        return self.workdir / "ssh_host_ed25519_key"

    @property
    def known_hosts(self) -> Path:
        """A known_hosts file that trusts exactly this server's host key on this port."""
        return self.workdir / "known_hosts"

    def ssh_settings(self, **more: object) -> dict[str, object]:
        """A target config's `ssh:` section that reaches this server with its pinned host key."""
        return {
            "port": self.port,
            "user": self.user,
            "key_file": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            **more,
        }

    @property
    def authorized_keys(self) -> Path:
        return self.workdir / "authorized_keys"

    def authorize(self, public_key: Path) -> None:
        """Let one more key log in (sshd reads the file at each login: no restart needed)."""
        with self.authorized_keys.open("a") as keys:
            keys.write(public_key.read_text())

    @property
    def log_path(self) -> Path:
        return self.workdir / "sshd.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def prepare(self) -> None:
        """Create keys, authorized_keys and the config once; restarts reuse them."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.host_key.exists():
            generate_ed25519_key(self.host_key, comment="lkdh-test-host")
        if not self.client_key.exists():
            generate_ed25519_key(self.client_key)
        if not self.authorized_keys.exists():
            self.authorized_keys.write_text(Path(f"{self.client_key}.pub").read_text())
        if os.geteuid() == 0:
            # sshd refuses to start without its privilege-separation directory.
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)

    def _write_config(self) -> Path:
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"AllowUsers {self.user}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "StrictModes no",
            "UsePAM no",
            "Subsystem sftp internal-sftp",
            "MaxStartups 50",
            "LogLevel VERBOSE",
        ]
        if os.geteuid() == 0:
            lines.append("PermitRootLogin prohibit-password")
        lines += self.extra_config
        config = self.workdir / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        host_public = Path(f"{self.host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_public[0]} {host_public[1]}\n")
        return config

    def start(self) -> None:
        """Start sshd (a new free port on first start, the same port afterwards) and wait for its banner."""
        if self._process is not None:
            raise SshdError("sshd already running")
        self.prepare()
        attempts = 1 if self.port else 5
        for _ in range(attempts):
            if not self.port:
                self.port = free_loopback_port()
            try:
                self._launch()
                return
            except SshdError:
                if attempts == 1 or "Bind to port" not in self.log_text():
                    raise
                self.port = 0  # someone took the port between probe and bind: pick another
        raise SshdError(f"no free port for sshd after {attempts} attempts")

    def _launch(self) -> None:
        config = self._write_config()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            self._wait_for_banner()
        except SshdError:
            self.stop()
            raise

    def _wait_for_banner(self) -> None:
        deadline = time.monotonic() + STARTUP_DEADLINE
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise SshdError(f"sshd exited during start-up; log:\n{self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as probe:
                    if probe.recv(64).startswith(b"SSH-2.0-"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise SshdError(f"sshd sent no banner on port {self.port} within {STARTUP_DEADLINE}s")

    def stop(self) -> None:
        """Kill sshd and every session under it, as a power cut would; safe to call twice."""
        if self._process is None:
            return
        tree = process_tree(self._process.pid)
        _signal_all(tree, signal.SIGSTOP)
        tree = process_tree(self._process.pid)  # anything forked before the freeze landed
        _signal_all(tree, signal.SIGKILL)
        self._process.wait()
        self._process = None

    def restart(self) -> None:
        """Stop and start again on the same port with the same keys (a guest reboot, seen from outside)."""
        self.stop()
        self.start()

    def __enter__(self) -> SshdServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
