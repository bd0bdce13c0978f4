"""libvirt as the hypervisor, through libvirt's own Python binding (libvirt-python) instead of virsh.

`LibvirtHost` (hypervisor.py) runs `virsh` over SSH on the libvirt host and reads its text. This one
speaks libvirt's RPC itself, so the URI says where the host is (`qemu:///system` on this machine,
`qemu+ssh://user@kvm-host/system` over SSH, which libvirt runs with the system's ssh client and its
known_hosts), and what virsh cannot give in one call comes as API calls and events:
- revert: `virDomainRevertToSnapshot(..., VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING)`, then the state read
  back (https://libvirt.org/html/libvirt-libvirt-domain-snapshot.html);
- a power cycle (`destroy` then `create`: a cold boot from the disk as it is) and a reset (`reset`,
  the reset line);
- crashes as libvirt reports them: the domain's lifecycle events (`virConnectDomainEventRegisterAny`
  with VIR_DOMAIN_EVENT_ID_LIFECYCLE), kept with the host time they arrived. A guest with a pvpanic
  device (`<panic model='isa'/>`) and `<on_crash>restart</on_crash>` reports VIR_DOMAIN_EVENT_CRASHED
  / PANICKED before it restarts (https://libvirt.org/formatdomain.html#panic-device); a guest's own
  reboot is no lifecycle event (the QEMU process and its state stay), so VIR_DOMAIN_EVENT_ID_REBOOT
  is kept as the event "rebooted".
Events need libvirt's default event loop running: one daemon thread per process runs it.

It is a crash witness (crash_witness.py): CRASHED events become `panics` (libvirt reports QEMU's
GUEST_PANICKED as detail PANICKED and GUEST_CRASHLOADED, which a Windows guest with virtio-win's
pvpanic driver sends when it writes a dump, as CRASHLOADED), and `keep_console` copies the file the
domain's serial console writes: `<serial type='file'><source path=.../>` or a `<log file=.../>` of
its serial or console (https://libvirt.org/formatdomain.html#consoles-serial-parallel-channel-devices).
That file is on the libvirt host, so it is kept only when the URI names this host (no transport,
no host name); over `qemu+ssh://` the console stays on the remote host, and `keep_console` says so
once in the log rather than pretend.

Two things libvirt itself gets wrong for this use, refused here with what to do instead:
- reverting to an external snapshot: libvirt before 9.7 answers "revert to external snapshot not
  supported yet" only after the harness has asked; `check()` and `revert()` say so up front, naming
  the version (Debian 12 ships 9.0);
- `known_hosts=` in a `qemu+ssh://` URI: that transport runs OpenSSH's ssh, which ignores the
  parameter and checks the user's own known_hosts; only `qemu+libssh://` and `qemu+libssh2://` read
  it (https://libvirt.org/uri.html, "known_hosts"), so a pinned key would silently not be used.

libvirt's errors become HypervisorError with libvirt's own message; its default error handler (which
prints every error to stderr, even handled ones) is replaced by one that says nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from harness.target.windows.crash_witness import ConsoleFile, GuestPanic
from harness.target.windows.hypervisor import HypervisorError

log = logging.getLogger(__name__)

_loop_started = threading.Lock()
_loop_thread: threading.Thread | None = None

LIFECYCLE = {
    0: "defined",
    1: "undefined",
    2: "started",
    3: "suspended",
    4: "resumed",
    5: "stopped",
    6: "shutdown",
    7: "pmsuspended",
    8: "crashed",
}
"""virDomainEventType, as libvirt-domain.h numbers it."""
CRASHED_DETAILS = {0: "panicked", 1: "crashloaded"}
"""virDomainEventCrashedDetailType: VIR_DOMAIN_EVENT_CRASHED_PANICKED, _CRASHLOADED (libvirt 6.1)."""
STATES = {0: "no state", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shut off", 6: "crashed"}
"""virDomainState, in virsh domstate's words."""
EXTERNAL_REVERT_SINCE = 9_007_000
"""libvirt 9.7.0 added reverting to external snapshots to its QEMU driver; before it, 'not supported yet'."""


def uri_problem(uri: str) -> str | None:
    """Why `uri` would not do what it says, or None (module docstring: known_hosts and qemu+ssh)."""
    parts = urlsplit(uri)
    if parts.scheme.endswith("+ssh") and "known_hosts" in parse_qs(parts.query):
        libssh = uri.replace("+ssh://", "+libssh://", 1)
        return (
            f"libvirt URI {uri}: libvirt's ssh transport runs OpenSSH, which ignores known_hosts= and"
            f" checks ~/.ssh/known_hosts instead; for a pinned host key file use the libssh transport"
            f" ({libssh}&known_hosts_verify=normal&sshauth=privkey), or drop known_hosts= and put the"
            " key in ~/.ssh/known_hosts"
        )
    return None


def external_parts(snapshot_xml: str) -> list[str]:
    """What of a snapshot is external (`memory`, `disk vda`...), from its <domainsnapshot> XML."""
    root = ElementTree.fromstring(snapshot_xml)
    found = []
    memory = root.find("memory")
    if memory is not None and memory.get("snapshot") == "external":
        found.append("memory")
    for disk in root.findall("disks/disk"):
        if disk.get("snapshot") == "external":
            found.append(f"disk {disk.get('name')}")
    return found


@dataclass(frozen=True)
class DomainEvent:
    """One lifecycle event: its type in words, libvirt's detail code, and when it arrived (monotonic)."""

    event: str
    detail: int
    received: float


def _libvirt() -> Any:
    """The binding, imported on first use: only a config that names libvirt-python needs it."""
    try:
        import libvirt
    except ImportError as error:
        raise HypervisorError(
            "the libvirt-python client needs the libvirt-python package (pip install libvirt-python;"
            " it builds against libvirt-dev)"
        ) from error
    return libvirt


def _start_event_loop(libvirt: Any) -> None:
    """libvirt's default event loop, registered before the first connection and run in a daemon thread."""
    global _loop_thread
    with _loop_started:
        if _loop_thread is not None:
            return
        libvirt.registerErrorHandler(lambda _context, _error: None, None)
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        _loop_thread = threading.Thread(target=run, name="libvirt-events", daemon=True)
        _loop_thread.start()


class LibvirtApiHypervisor:
    """Reverts, cycles and watches one libvirt domain through libvirt-python."""

    def __init__(self, uri: str, domain: str, snapshot: str, *, timeout: float = 600.0) -> None:
        problem = uri_problem(uri)
        if problem is not None:
            raise HypervisorError(problem)
        self.uri, self.domain, self.snapshot, self.timeout = uri, domain, snapshot, timeout
        self._connection: Any = None
        self._events: list[DomainEvent] = []
        self._changed = threading.Condition()
        self._console: ConsoleFile | None = None
        self.console_unavailable: str | None = None
        """Why the console cannot be kept (found when the connection opens), or None."""

    def describe(self) -> str:
        return f"libvirt {self.uri} (libvirt-python): domain '{self.domain}', snapshot '{self.snapshot}'"

    def check(self) -> str:
        with self._api("check"):
            domain = self._domain()
            self._revertible(domain.snapshotLookupByName(self.snapshot))
            return f"{self.describe()}; domain is {self.state()}, snapshot exists"

    def state(self) -> str:
        with self._api("state"):
            return STATES.get(self._domain().state()[0], "unknown")

    def snapshots(self) -> list[str]:
        with self._api("snapshots"):
            return sorted(snapshot.getName() for snapshot in self._domain().listAllSnapshots())

    def take_snapshot(self) -> None:
        """An internal snapshot of the running domain (disk and memory) under `snapshot`."""
        with self._api("take_snapshot"):
            xml = f"<domainsnapshot><name>{self.snapshot}</name></domainsnapshot>"
            self._domain().snapshotCreateXML(xml, 0)

    def revert(self) -> None:
        libvirt = _libvirt()
        with self._api("revert"):
            domain = self._domain()
            snapshot = domain.snapshotLookupByName(self.snapshot)
            self._revertible(snapshot)
            domain.revertToSnapshot(snapshot, libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING)
        self._wait_until_running(f"after reverting to snapshot '{self.snapshot}'")

    def power_cycle(self) -> None:
        """Off (destroy: pulled power, no shutdown) and on: a cold boot from the disk as it is."""
        with self._api("power_cycle"):
            domain = self._domain()
            if domain.isActive():
                domain.destroy()
            domain.create()
        self._wait_until_running("after a power cycle")

    def reset(self) -> None:
        with self._api("reset"):
            self._domain().reset(0)

    def events(self, since: float = 0.0, event: str | None = None) -> list[DomainEvent]:
        with self._changed:
            return [e for e in self._events if e.received >= since and event in (None, e.event)]

    def crashes(self, since: float = 0.0) -> list[DomainEvent]:
        """VIR_DOMAIN_EVENT_CRASHED events since `since` (pvpanic's panics, with on_crash set)."""
        return self.events(since, "crashed")

    def wait_for(self, event: str, *, since: float, timeout: float) -> DomainEvent | None:
        until = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [e for e in self._events if e.received >= since and e.event == event]
                if found:
                    return found[0]
                remaining = until - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    # -- libvirt ----------------------------------------------------------------------------------
    def _revertible(self, snapshot: Any) -> None:
        """Refuse an external snapshot where this libvirt cannot revert to one (module docstring)."""
        external = external_parts(snapshot.getXMLDesc(0))
        version = self._connection.getLibVersion()
        if external and version < EXTERNAL_REVERT_SINCE:
            major, minor, micro = version // 1_000_000, version // 1000 % 1000, version % 1000
            raise HypervisorError(
                f"snapshot '{self.snapshot}' of domain '{self.domain}' is external"
                f" ({', '.join(external)}), and libvirt {major}.{minor}.{micro} on {self.uri} cannot"
                " revert to an external snapshot (libvirt 9.7 and later can): take an internal one"
                f" on the qcow2 disk instead (virsh snapshot-create-as {self.domain} NAME, without"
                " --disk-only, --memspec or --diskspec) and name it in the config, or upgrade libvirt"
            )

    @contextlib.contextmanager
    def _api(self, what: str) -> Iterator[None]:
        libvirt = _libvirt()
        try:
            yield
        except libvirt.libvirtError as error:
            raise HypervisorError(
                f"libvirt {self.uri}: {what} of domain '{self.domain}' failed: {error.get_error_message()}"
            ) from None

    def _domain(self) -> Any:
        if self._connection is None:
            libvirt = _libvirt()
            _start_event_loop(libvirt)
            connection = libvirt.open(self.uri)
            domain = connection.lookupByName(self.domain)
            connection.domainEventRegisterAny(
                domain, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None
            )
            connection.domainEventRegisterAny(
                domain, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._on_reboot, None
            )
            self._connection = connection
            self._find_console(domain)
        return self._connection.lookupByName(self.domain)

    def _on_lifecycle(self, _connection: Any, _domain: Any, event: int, detail: int, _opaque: Any) -> None:
        self._record(LIFECYCLE.get(event, str(event)), detail)

    def _on_reboot(self, _connection: Any, _domain: Any, _opaque: Any) -> None:
        self._record("rebooted", 0)

    def _record(self, event: str, detail: int) -> None:
        """Keep one event with the host time it arrived, and wake whoever waits for it."""
        with self._changed:
            self._events.append(DomainEvent(event, detail, time.monotonic()))
            self._changed.notify_all()

    def _wait_until_running(self, when: str, poll: Callable[[float], None] = time.sleep) -> None:
        deadline = time.monotonic() + self.timeout
        state = self.state()
        while state != "running":
            if time.monotonic() > deadline:
                raise HypervisorError(
                    f"domain '{self.domain}' is {state!r}, not running, {self.timeout:g} s {when}"
                )
            poll(0.5)
            state = self.state()

    # -- crash witness ----------------------------------------------------------------------------
    def panics(self, since: float = 0.0) -> list[GuestPanic]:
        """CRASHED events since `since` as the crash witness reports them (crash_witness.py)."""
        return [
            GuestPanic(
                event.received,
                "VIR_DOMAIN_EVENT_CRASHED",
                {"detail": CRASHED_DETAILS.get(event.detail, str(event.detail))},
                f"libvirt {self.uri} (domain '{self.domain}')",
            )
            for event in self.crashes(since)
        ]

    def keep_console(self, destination: Path) -> str:
        """Append the console output not yet kept to `destination`; "" when it cannot be kept
        (`console_unavailable` says why, and the log says it once)."""
        if self._connection is None:
            with self._api("console lookup"):
                self._domain()
        if self._console is None:
            return ""
        return self._console.keep(destination)

    def _find_console(self, domain: Any) -> None:
        """The serial console's file, from the domain XML, if this host can read it."""
        parts = urlsplit(self.uri)
        transport = parts.scheme.partition("+")[2]
        if parts.hostname or transport not in ("", "unix"):
            self._no_console(
                f"the domain's console file is on the libvirt host of {self.uri}, not here:"
                " read it there (virsh console, or its <serial type='file'> path)"
            )
            return
        try:
            path = console_file(domain.XMLDesc(0))
        except _libvirt().libvirtError as error:
            self._no_console(f"the domain XML of '{self.domain}' could not be read: {error}")
            return
        if path is None:
            self._no_console(
                f"domain '{self.domain}' writes its serial console to no file: add"
                " <serial type='file'><source path='...'/></serial> (or a <log file='...'/>) to keep it"
            )
            return
        self._console = ConsoleFile(Path(path))

    def _no_console(self, reason: str) -> None:
        self.console_unavailable = reason
        log.warning("libvirt: the serial console is not kept: %s", reason)


def console_file(domain_xml: str) -> str | None:
    """The file a domain's serial console (or console) is written to: the source path of a
    `type='file'` device, else the device's `<log file=...>`."""
    devices = ElementTree.fromstring(domain_xml).find("devices")
    if devices is None:
        return None
    for device in [*devices.findall("serial"), *devices.findall("console")]:
        source = device.find("source")
        if device.get("type") == "file" and source is not None and source.get("path"):
            return source.get("path")
        logged = device.find("log")
        if logged is not None and logged.get("file"):
            return logged.get("file")
    return None
