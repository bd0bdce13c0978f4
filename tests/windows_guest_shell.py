#!/usr/bin/python3 -IS
"""Inside the KVM test guest: the login shell of `lkdh-admin`, standing in for cmd.exe on Windows.

Windows OpenSSH hands each command line to the account's shell (cmd.exe by default, which starts
powershell.exe); Linux sshd does the same, as `SHELL -c COMMAND_LINE`. So this program plays that
part: it forwards the whole command line and stdin to the Windows test double (windows_guest_double.py,
a daemon started on the first command of each boot) and prints its answer with its exit code. A
subsystem is run the same way by sshd (`SHELL -c /usr/lib/openssh/sftp-server`): that one line is
started directly, as Windows OpenSSH starts sftp-server.exe.

Standard library only, started with -IS (one word: Linux passes a shebang's options as one argument):
every command of a scenario pays this start-up, and under TCG emulation each imported module costs
real seconds. The double itself is imported once per boot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import socket
import subprocess
import sys
import time

SOCKET = "/run/lkdh-double.sock"
LOCK = "/run/lkdh-double.lock"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
PYTHON = "/usr/bin/python3"
BUNDLE = "/opt/lkdh"
DAEMON_LOG = "/var/log/lkdh-double.log"
START_DEADLINE = 600.0
"""Importing the harness, pydantic and numpy under TCG took minutes on busy cores; a bound only."""


def _connect() -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(SOCKET)
    except (FileNotFoundError, ConnectionRefusedError):
        client.close()
        return None
    return client


def _log_since(offset: int) -> str:
    """What the double wrote to its log since `offset`: its traceback when it died starting."""
    with open(DAEMON_LOG, "rb") as log:
        log.seek(offset)
        return log.read()[-4000:].decode("utf-8", "replace")


def _start_daemon() -> socket.socket:
    """Start the double once per boot (a lock keeps two first commands from starting two)."""
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        client = _connect()
        if client is not None:
            return client
        with open(DAEMON_LOG, "ab") as log:
            started = log.tell()
            daemon = subprocess.Popen(
                [PYTHON, "-m", "windows_guest_double"],
                cwd=BUNDLE,
                env={"PYTHONPATH": BUNDLE, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # it outlives this SSH session
            )
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            client = _connect()
            if client is not None:
                return client
            if (
                daemon.poll() is not None
            ):  # it died starting (an import error): say so now, not at the deadline
                sys.stderr.write(f"lkdh-cmd: the Windows double exited with {daemon.returncode} at start:\n")
                sys.stderr.write(_log_since(started))
                sys.exit(255)
            time.sleep(0.2)
    sys.stderr.write(f"lkdh-cmd: the Windows double did not start within {START_DEADLINE:g} s\n")
    sys.exit(255)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "-c":
        sys.stderr.write("lkdh-cmd: no interactive shell here; run a command\n")
        return 1
    command_line = argv[2]
    if command_line == SFTP_SERVER:
        os.execv(SFTP_SERVER, [SFTP_SERVER])
    stdin = sys.stdin.buffer.read()
    client = _connect() or _start_daemon()
    with client, client.makefile("rwb") as stream:
        header = {"command_line": command_line, "stdin": base64.b64encode(stdin).decode("ascii")}
        stream.write(json.dumps(header).encode("ascii") + b"\n")
        stream.flush()
        line = stream.readline()
    if not line:
        # The double went down without an answer: the machine is rebooting or has crashed, and sshd
        # goes with it a moment later. Nothing to print: the harness sees the connection die.
        time.sleep(3600)
        return 255
    answer = json.loads(line)
    sys.stdout.buffer.write(base64.b64decode(answer["stdout"]))
    sys.stderr.buffer.write(base64.b64decode(answer["stderr"]))
    return int(answer["exit_code"])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
