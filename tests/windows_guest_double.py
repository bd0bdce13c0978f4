"""Inside the KVM test guest: the Windows test double as a daemon, on a real machine that really boots.

tests/windows_double.py answers the harness's PowerShell templates from a simulated Windows machine.
Here it runs inside a Debian guest under QEMU, reached over SSH exactly as the Windows target reaches
a VM (windows_guest_shell.py is the account's shell, standing in for cmd.exe), and the parts that
were modelled become real:
- dumps: the simulator's disk is the guest's disk; `/C:` links to it, so the harness pulls
  `C:\\Windows\\Minidump\\x.dmp` over the guest's own SFTP server as `/C:/Windows/Minidump/x.dmp`,
  the name Windows OpenSSH gives it;
- the boot identity: boot-time answers with a count of the guest's real kernel boots (a new
  /proc/sys/kernel/random/boot_id is a new boot, as Windows' BootId counts boots) and the kernel's
  uptime, so the harness tells boots apart from what the guest's kernel says;
- a reboot (restart-computer): after the answer the daemon stops taking commands, waits the
  template's delay, saves its state, syncs and reboots the kernel (sysrq 'b'); a command sent
  meanwhile dies with the machine, as on Windows;
- a bugcheck: the simulator has written its crash dump (and MEMORY.DMP) to the guest's disk; the
  daemon saves its state, syncs and panics the kernel for real (sysrq 'c'): pvpanic tells QEMU
  (GUEST_PANICKED), the kernel reboots (panic=1), and the command never answers.
The state that survives a Windows reboot (installed driver, trusted certificate, test signing, the
simulator and its disk) is pickled to the guest's disk after every command, fsynced; RAM-only state
goes with a revert exactly as the snapshot had it, because the daemon itself is in the snapshot.

The simulated kernel keeps the simulator's virtual clock (ops advance it, nothing else), so timing
rules (F06's one report a minute) decide as on a direct simulator run, not as TCG's slowness would.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pickle
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from windows_double import WindowsVmDouble

from harness.target.ops import Reboot
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.windows.session import CommandResult, SessionError

STATE_DIR = Path("/var/lib/lkdh-double")
STATE = STATE_DIR / "state.pickle"
SETUP = STATE_DIR / "setup.json"
"""Written by the test before the snapshot: host, accounts, admin, simulator profile."""
SOCKET = Path("/run/lkdh-double.sock")
KERNEL_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
SYSRQ = Path("/proc/sysrq-trigger")


def windows_argv(command_line: str) -> list[str]:
    """Split a command line as the Microsoft C runtime does (the rules of "Parsing C command-line
    arguments", learn.microsoft.com/cpp/c-language/parsing-c-command-line-arguments): white space
    separates arguments outside quotes; 2n backslashes before a quote are n backslashes and the quote
    toggles quoting, 2n+1 are n backslashes and a literal quote; other backslashes are literal; `""`
    inside quotes is one literal quote."""
    words: list[str] = []
    word: list[str] = []
    in_word = quoted = False
    index = 0
    while index < len(command_line):
        char = command_line[index]
        if char == "\\":
            run = len(command_line[index:]) - len(command_line[index:].lstrip("\\"))
            index += run
            if index < len(command_line) and command_line[index] == '"':
                word.append("\\" * (run // 2))
                if run % 2:
                    word.append('"')
                    index += 1
            else:
                word.append("\\" * run)
            in_word = True
            continue
        if char == '"':
            if quoted and command_line[index + 1 : index + 2] == '"':
                word.append('"')
                index += 2
                continue
            quoted, in_word = not quoted, True
        elif char in " \t" and not quoted:
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
        else:
            word.append(char)
            in_word = True
        index += 1
    if in_word:
        words.append("".join(word))
    return words


class MachineGoesDown(Exception):
    """The command took the machine down (a bugcheck): no answer is sent, the kernel panics."""


class GuestVmDouble(WindowsVmDouble):
    """The double with the guest's real boots: boot-time from the kernel, reboots for real."""

    kernel_boot = ""
    kernel_boots = 0
    sim_booted_ahead = False
    """A bugcheck rebooted the simulator before the kernel went down: the next kernel boot is that boot."""
    restart_delay: float | None = None

    def on_kernel_boot(self, boot_id: str) -> None:
        """Daemon start: a new kernel boot counts, and the simulator reboots with it unless the crash
        or a restart-computer already accounts for it."""
        if boot_id == self.kernel_boot:
            return
        if self.kernel_boot and not self.sim_booted_ahead and not self._restart_pending:
            self.sim.execute(Reboot())  # a reset or power cycle the double was not told about
        self.kernel_boot, self.kernel_boots, self.sim_booted_ahead = boot_id, self.kernel_boots + 1, False

    def answer(self, argv: Sequence[str], stdin: bytes, timeout: float | None = None) -> CommandResult:
        crashes = len(self.sim.crashes)
        try:
            return super().answer(argv, stdin, timeout)
        except SessionError:
            if len(self.sim.crashes) > crashes:
                self.sim_booted_ahead = True
                raise MachineGoesDown() from None
            raise

    def _boot_time(self, params: dict[str, Any]) -> dict[str, Any]:
        """boot-time.ps1's fields from the guest kernel: boots counted, uptime since this one."""
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        now = time.time()
        booted = now - uptime
        return {
            "boot_id": 40 + self.kernel_boots,
            "uptime_ms": int(uptime * 1000),
            "last_boot_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(booted)),
            "last_boot_unix": int(booted),
            "now_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }

    def _restart_computer(self, params: dict[str, Any]) -> dict[str, Any]:
        answer = super()._restart_computer(params)
        self.restart_delay = float(answer["delay_seconds"])
        return answer


def _fresh_double() -> GuestVmDouble:
    setup = json.loads(SETUP.read_text())
    sim = SimulatedMachine(STATE_DIR, SimSettings(profile=setup["profile"], verifier=False))
    return GuestVmDouble(sim, host=setup["host"], accounts=setup["accounts"], admin=setup["admin"])


def load() -> GuestVmDouble:
    if STATE.exists():
        with STATE.open("rb") as saved:
            double = pickle.load(saved)
        assert isinstance(double, GuestVmDouble)
        return double
    return _fresh_double()


def save(double: GuestVmDouble) -> None:
    """Atomically and durably: a panic right after must find this state on the disk."""
    partial = STATE.with_suffix(".partial")
    with partial.open("wb") as out:
        pickle.dump(double, out)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(STATE)
    directory = os.open(STATE_DIR, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _go_down(key: str) -> None:
    """sysrq 'b' (reboot) or 'c' (crash: a real kernel panic), after flushing every disk."""
    os.sync()
    SYSRQ.write_text(key)
    time.sleep(3600)  # the kernel does not come back here


def _reply(double: GuestVmDouble, request: dict[str, Any]) -> dict[str, Any]:
    argv = windows_argv(request["command_line"])
    stdin = base64.b64decode(request["stdin"])
    try:
        result = double.answer(argv, stdin)
    except SessionError as error:  # the double's own "connection dropped": say so on stderr, exit 255
        result = CommandResult(255, b"", f"{error}\n".encode())
    return {
        "exit_code": result.exit_code,
        "stdout": base64.b64encode(result.stdout).decode("ascii"),
        "stderr": base64.b64encode(result.stderr).decode("ascii"),
    }


def serve() -> None:
    double = load()
    double.on_kernel_boot(KERNEL_BOOT_ID.read_text().strip())
    save(double)
    with contextlib.suppress(FileNotFoundError):
        SOCKET.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(SOCKET))
    server.listen(8)
    print(f"lkdh-double: serving on {SOCKET}, kernel boot {double.kernel_boots}", flush=True)
    while True:
        connection, _ = server.accept()
        with connection, connection.makefile("rwb") as stream:
            request = json.loads(stream.readline())
            try:
                reply = _reply(double, request)
            except MachineGoesDown:
                save(double)
                print("lkdh-double: bugcheck: dump written, panicking the kernel", flush=True)
                _go_down("c")
            save(double)
            stream.write(json.dumps(reply).encode("ascii") + b"\n")
            stream.flush()
        if double.restart_delay is not None:
            delay, double.restart_delay = double.restart_delay, None
            save(double)  # commands sent from now on wait in the backlog and die with the machine
            time.sleep(delay)
            print("lkdh-double: restart-computer: rebooting", flush=True)
            _go_down("b")


if __name__ == "__main__":
    # Through the module's own name, so the pickled class is windows_guest_double.GuestVmDouble
    # whichever way the daemon was started.
    import windows_guest_double

    windows_guest_double.serve()
