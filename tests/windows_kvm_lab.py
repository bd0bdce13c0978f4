"""A provisioned Windows lab on a KVM test guest: the double installed, the machine provisioned once
(its real reboot for test signing and Verifier), and that machine kept as the snapshot every scenario
reverts to, as a lab's `clean-driver-ready` checkpoint is used.

Shared by the tests that drive `WindowsMachine` on a real VM (test_windows_on_kvm.py and the ones
built on it): one recipe, so a guest that works for one works for all. The target config it writes
is `kind: qemu`, attached to the VM's second QMP socket, with `commands: ssh` (windows_guest.py): the
product's own sessions (ConfiguredSessions) drive the guest, so `lkdh run --target vm
--target-config <lab.folder>/kvm.yaml` does too.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kvm_image
import pytest
from driver_package import BuiltPackage
from kvm_guest import CONNECT_TIMEOUT, KvmGuest, kvm_missing_reason
from signing import SigningIdentity
from test_windows_machine import _write_build
from windows_guest import ADMIN, build_bundle, install_double

from harness.target.windows.config import TargetConfig
from harness.target.windows.machine import WindowsMachine
from harness.target.windows.qemu_hypervisor import QemuHypervisor
from harness.target.windows.stage_check import ConfiguredSessions
from harness.target_config import load_target_config

PROFILE = "dmf-bfac434"
SNAPSHOT = "driver-ready"
SCENARIOS = (
    "store_then_create_contains_buffer",
    "create_at_dispatch_bugchecks_under_verifier",
    "ioctl_create_as_standard_user_is_denied",
)
"""The shipped scenarios the guest tests run: a live dump pulled and compared; a bugcheck (a real kernel
panic and reboot); then, from the revert after the crash, a standard-user IOCTL through the
scheduled-task path."""
GUEST_PYTHON = (3, 11)
"""Debian bookworm's Python, in the guest: the bundle carries this interpreter's compiled packages."""


def lab_missing_reason() -> str | None:
    """Why no lab can be built here (no usable KVM/TCG guest, or another Python than the guest's)."""
    reason = kvm_missing_reason()
    if reason is None and sys.version_info[:2] != GUEST_PYTHON:
        reason = (
            f"the guest runs Python {GUEST_PYTHON[0]}.{GUEST_PYTHON[1]} (bookworm) and the double's bundle"
            f" carries this interpreter's compiled wheels, built for"
            f" {sys.version_info[0]}.{sys.version_info[1]}"
        )
    return reason


ADMIN_PASSWORD, USER, USER_PASSWORD = "Adm1n-pw-for-the-guest-7d2a", "lkdh-user", "Std-user-pw-guest-41c9"
PANIC_TEXT = "Kernel panic - not syncing: sysrq triggered crash"

CONFIG = """\
name: kvm-windows-double
host: 127.0.0.1
commands: ssh
ssh:
  port: {port}
  user: {admin}
  key_file: {key}
  known_hosts: {known_hosts}
  connect_timeout: {connect_timeout}
hypervisor: {hypervisor}
driver:
  package: build/LkdhTestDriver
  certificate: build/LkdhTest.cer
  hardware_id: Root\\LkdhTestDriver
  service_name: LkdhTestDriver
  lkdctl: build/lkdctl.exe
verifier: {{enabled: true, flags: standard}}
live_dumps: {{report_type: LkdhTestDriver, minimum_spacing_seconds: 60}}
non_admin_user: {{username: {user}, password: {{env: LKDH_GUEST_USER_PASSWORD}}}}
timeouts: {{command: 600, boot: 900, transfer: 600}}
"""
"""Deadlines for TCG: under emulation one key exchange took 11 s and a boot to sshd minutes."""


@dataclass
class WindowsLab:
    guest: KvmGuest
    owner: QemuHypervisor
    """The test's own hypervisor on the VM's first monitor (it took the snapshot)."""
    config: TargetConfig
    folder: Path
    provision_seconds: float


def target_config(folder: Path, guest: KvmGuest, hypervisor: str, name: str) -> TargetConfig:
    text = CONFIG.format(
        admin=ADMIN,
        user=USER,
        port=guest.ssh_port,
        key=guest.image.client_key,
        known_hosts=guest.known_hosts,
        connect_timeout=CONNECT_TIMEOUT[guest.accel],
        hypervisor=hypervisor,
    )
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return load_target_config(path)


@contextlib.contextmanager
def provisioned_lab(
    folder: Path,
    package: BuiltPackage,
    identity: SigningIdentity,
    *,
    name: str = "lkdh-guest",
    memory_mib: int = 512,
) -> Iterator[WindowsLab]:
    """A booted guest with the double installed, provisioned once, its snapshot taken; stopped after.

    The standard user's password is put in the environment the config's `{env: ...}` reference reads,
    for as long as the lab lives (the administrator logs in with the SSH key: `commands: ssh`), so a
    `lkdh run` the test starts inherits it."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("LKDH_GUEST_USER_PASSWORD", USER_PASSWORD)
    folder.mkdir(parents=True, exist_ok=True)
    _write_build(folder / "build", package, identity)
    image = kvm_image.ensure_image(folder / "build.log")
    socket_dir = Path(tempfile.mkdtemp(prefix="lkdh-harness-qmp-"))  # unix socket paths are short
    harness_qmp = socket_dir / "harness.qmp"
    guest = KvmGuest(image, folder / "guest", name=name, memory_mib=memory_mib, extra_qmp=(harness_qmp,))
    guest.vm.start()
    try:
        with guest.wait_for_ssh() as root:
            setup = {
                "host": "127.0.0.1",
                "admin": ADMIN,
                "accounts": {ADMIN: ADMIN_PASSWORD, USER: USER_PASSWORD},
                "profile": PROFILE,
            }
            install_double(root, build_bundle(folder / "bundle.tar.gz"), setup, timeout=900)
        # The fresh machine, provisioned once without a hypervisor: it reboots for test signing and
        # Verifier for real. That machine is the snapshot every scenario starts from.
        fresh = target_config(folder, guest, "{kind: none}", "fresh.yaml")
        first = WindowsMachine(folder / "provision", fresh, ConfiguredSessions())
        started = time.monotonic()
        first.prepare()
        provision_seconds = time.monotonic() - started
        first.close()
        owner = QemuHypervisor(guest.vm, snapshot=SNAPSHOT)
        owner.take_snapshot()
        hypervisor = (
            f"{{kind: qemu, qmp_socket: {harness_qmp}, snapshot: {SNAPSHOT},"
            f" console_log: {guest.vm.spec.console_log}}}"
        )
        config = target_config(folder, guest, hypervisor, "kvm.yaml")
        yield WindowsLab(guest, owner, config, folder, provision_seconds)
    finally:
        guest.vm.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)
        monkeypatch.undo()
