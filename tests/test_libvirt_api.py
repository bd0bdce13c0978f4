"""The libvirt-python hypervisor (libvirt_api.py) against libvirt's own test driver, `test:///default`.

The test driver is libvirt's in-process mock hypervisor, shipped with libvirt itself: a running domain
`test`, snapshots, destroy/create, reset and lifecycle events, all through the same API and binding a
`qemu:///system` or `qemu+ssh://` connection uses. What it cannot show: a real guest behind the domain
(its disk and memory restored, a pvpanic crash event, the serial console): tests/test_libvirt_qemu.py
shows those on a system libvirtd running the KVM guest (the console file and the crash event
through the crash witness included).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from required_tools import tool_missing

from harness.target.windows.config import LibvirtSettings
from harness.target.windows.hypervisor import HypervisorError, hypervisor_from_config
from harness.target.windows.stage_check import ConfiguredSessions
from harness.target_config import TargetConfigErrors, load_target_config

try:
    import libvirt  # the binding under test
except ImportError:
    LIBVIRT_MISSING = "libvirt-python not installed (pip install libvirt-python; needs libvirt-dev)"
else:
    LIBVIRT_MISSING = ""

from harness.target.windows.crash_witness import witness_of
from harness.target.windows.libvirt_api import LibvirtApiHypervisor, console_file, external_parts, uri_problem

TARGET = """\
name: lab
host: 127.0.0.1
winrm:
  username: admin
  password: {env: LKDH_WINRM_PASSWORD}
driver:
  package: pkg
  hardware_id: Root\\\\LkdhTestDriver
  lkdctl: lkdctl.exe
hypervisor:
  kind: libvirt
  client: libvirt-python
  uri: test:///default
  domain: DOMAIN
  snapshot: not-taken
"""
"""The test driver's state lives as long as the process: no test here takes this snapshot."""


@pytest.fixture
def needs_libvirt() -> None:
    if LIBVIRT_MISSING:
        tool_missing(LIBVIRT_MISSING)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "target.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_client_libvirt_python_in_a_target_config(tmp_path: Path, needs_libvirt: None) -> None:
    settings = load_target_config(_config(tmp_path, TARGET.replace("DOMAIN", "test"))).hypervisor
    assert isinstance(settings, LibvirtSettings) and settings.client == "libvirt-python"
    hypervisor = hypervisor_from_config(settings, ConfiguredSessions())
    assert isinstance(hypervisor, LibvirtApiHypervisor)
    with pytest.raises(HypervisorError, match="no domain snapshot with matching name 'not-taken'"):
        hypervisor.check()


def test_the_client_decides_whether_ssh_is_given(tmp_path: Path) -> None:
    with_ssh = TARGET.replace("DOMAIN", "test") + "  ssh: {host: kvm.example.test, user: a, key_file: k}\n"
    with pytest.raises(TargetConfigErrors, match="`ssh` is only for client virsh"):
        load_target_config(_config(tmp_path, with_ssh))
    virsh = TARGET.replace("DOMAIN", "test").replace("  client: libvirt-python\n", "")
    with pytest.raises(TargetConfigErrors, match="11:3: hypervisor: client virsh runs virsh over SSH"):
        load_target_config(_config(tmp_path, virsh))


def test_revert_power_cycle_reset_and_events_on_the_test_driver(needs_libvirt: None) -> None:
    name = f"clean-{uuid.uuid4().hex[:8]}"  # the test driver's domain outlives the test
    hypervisor = LibvirtApiHypervisor("test:///default", "test", name, timeout=10)
    try:
        assert hypervisor.state() == "running"
        hypervisor.take_snapshot()
        assert name in hypervisor.snapshots()
        assert "domain is running, snapshot exists" in hypervisor.check()
        since = time.monotonic()
        hypervisor.power_cycle()
        assert hypervisor.wait_for("started", since=since, timeout=10) is not None
        assert [e.event for e in hypervisor.events(since)][:2] == ["stopped", "started"]
        since = time.monotonic()
        hypervisor.revert()
        assert hypervisor.state() == "running"
        assert hypervisor.wait_for("started", since=since, timeout=10) is not None
        hypervisor.reset()
        assert hypervisor.crashes() == [], "the test driver's domain never panics"
    finally:
        hypervisor.close()


def test_an_unknown_domain_or_snapshot_is_a_hypervisor_error(needs_libvirt: None) -> None:
    """libvirt's own reason is in the message."""
    with pytest.raises(HypervisorError, match="Domain not found"):
        LibvirtApiHypervisor("test:///default", "no-such-vm", "clean").check()
    missing = LibvirtApiHypervisor("test:///default", "test", "never-taken")
    with pytest.raises(HypervisorError, match=r"revert of domain 'test' failed: .*'never-taken'"):
        missing.revert()
    missing.close()


def _domain_xml(name: str, devices: str) -> str:
    return (
        f"<domain type='test'><name>{name}</name><memory>65536</memory><os><type>hvm</type></os>"
        f"<devices>{devices}</devices></domain>"
    )


def test_the_console_file_of_the_domain_is_kept(needs_libvirt: None, tmp_path: Path) -> None:
    """The crash witness's console: the file the domain's `<serial type='file'>` writes, found in the
    domain XML libvirt returns (the test driver keeps the XML; QEMU would write the file, the test
    does here). Copying starts where the file stood when the hypervisor connected."""
    serial = tmp_path / "serial.log"
    serial.write_text("an earlier boot\n")
    name = f"console-{uuid.uuid4().hex[:8]}"
    xml = _domain_xml(name, f"<serial type='file'><source path='{serial}'/><target port='0'/></serial>")
    connection = libvirt.open("test:///default")
    domain = connection.createXML(xml, 0)
    hypervisor = LibvirtApiHypervisor("test:///default", name, "clean")
    try:
        kept = tmp_path / "run" / "console.log"
        assert witness_of(hypervisor) is hypervisor
        assert hypervisor.keep_console(kept) == "" and hypervisor.console_unavailable is None
        with serial.open("a") as written:
            written.write("Kernel panic - not syncing\n")
        assert hypervisor.keep_console(kept) == "Kernel panic - not syncing\n"
        assert kept.read_text() == "Kernel panic - not syncing\n"
    finally:
        hypervisor.close()
        domain.destroy()
        connection.close()


def test_a_console_that_cannot_be_kept_says_why(
    needs_libvirt: None, caplog: pytest.LogCaptureFixture
) -> None:
    hypervisor = LibvirtApiHypervisor("test:///default", "test", "clean")  # a domain without a serial file
    try:
        assert hypervisor.keep_console(Path("/nonexistent/console.log")) == ""
        assert hypervisor.console_unavailable is not None
        assert (
            "writes its serial console to no file: add <serial type='file'>" in hypervisor.console_unavailable
        )
        assert hypervisor.console_unavailable in caplog.text
    finally:
        hypervisor.close()
    remote = LibvirtApiHypervisor("qemu+ssh://lab@kvm.example.test/system", "win11", "clean")
    remote._find_console(None)  # decided from the URI alone: the XML is not asked for
    assert remote.console_unavailable is not None
    assert (
        "on the libvirt host of qemu+ssh://lab@kvm.example.test/system, not here"
        in remote.console_unavailable
    )


def test_serial_and_log_files_in_domain_xml() -> None:
    assert console_file(_domain_xml("a", "<serial type='pty'><log file='/var/log/a.log'/></serial>")) == (
        "/var/log/a.log"
    )
    assert (
        console_file(_domain_xml("b", "<console type='file'><source path='/b.log'/></console>")) == "/b.log"
    )
    assert console_file(_domain_xml("c", "<serial type='pty'/>")) is None


def test_crashed_events_are_the_witness_panics(needs_libvirt: None) -> None:
    """libvirt calls the lifecycle callback (conn, dom, event, detail, opaque) with CRASHED and detail
    PANICKED for QEMU's GUEST_PANICKED, CRASHLOADED for GUEST_CRASHLOADED (libvirt-domain.h); the
    test driver never crashes, so the test calls it as libvirt would."""
    hypervisor = LibvirtApiHypervisor("test:///default", "test", "clean")
    since = time.monotonic()
    hypervisor._on_lifecycle(None, None, libvirt.VIR_DOMAIN_EVENT_STARTED, 0, None)
    hypervisor._on_lifecycle(
        None, None, libvirt.VIR_DOMAIN_EVENT_CRASHED, libvirt.VIR_DOMAIN_EVENT_CRASHED_PANICKED, None
    )
    hypervisor._on_lifecycle(
        None, None, libvirt.VIR_DOMAIN_EVENT_CRASHED, libvirt.VIR_DOMAIN_EVENT_CRASHED_CRASHLOADED, None
    )
    panics = hypervisor.panics(since)
    assert [p.describe() for p in panics] == [
        "libvirt test:///default (domain 'test') reported VIR_DOMAIN_EVENT_CRASHED (detail panicked)",
        "libvirt test:///default (domain 'test') reported VIR_DOMAIN_EVENT_CRASHED (detail crashloaded)",
    ]
    assert hypervisor.panics(time.monotonic()) == []


def test_a_pinned_known_hosts_in_a_qemu_ssh_uri_is_refused_with_the_libssh_alternative() -> None:
    """libvirt's ssh transport runs OpenSSH, which never reads known_hosts= (https://libvirt.org/uri.html)."""
    uri = "qemu+ssh://lkdh@kvm.example.test/system?keyfile=/k&known_hosts=/kh"
    with pytest.raises(HypervisorError, match=r"use the libssh transport \(qemu\+libssh://lkdh@kvm"):
        LibvirtApiHypervisor(uri, "win11", "clean")
    assert uri_problem("qemu+libssh://lkdh@kvm.example.test/system?known_hosts=/kh") is None
    assert uri_problem("qemu+ssh://lkdh@kvm.example.test/system?keyfile=/k") is None


def test_what_of_a_snapshot_is_external_is_read_from_its_xml() -> None:
    """<domainsnapshot>'s memory and disks carry snapshot='external' (https://libvirt.org/formatsnapshot.html)."""
    internal = (
        "<domainsnapshot><name>c</name><memory snapshot='internal'/>"
        "<disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>"
    )
    external = (
        "<domainsnapshot><name>c</name><memory snapshot='external' file='/m'/><disks>"
        "<disk name='vda' snapshot='external'/><disk name='vdb' snapshot='no'/></disks></domainsnapshot>"
    )
    assert external_parts(internal) == []
    assert external_parts(external) == ["memory", "disk vda"]
