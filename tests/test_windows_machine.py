"""Tests of the Windows target's translation, crash detection and collection logic, run against a
simulator-backed test double of the VM (tests/windows_double.py: what it cannot prove is said there).

The double answers the PowerShell templates from its own state and hands every IOCTL to a real
SimulatedMachine, so a WindowsMachine run can be compared with a run on the simulator itself: same
scenario, same step outcomes, statuses, bugchecks and dumps. Wall time never passes: the machine's
`sleep` and `clock` are the simulator's virtual clock, and every sleep is recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from driver_package import BuiltPackage
from signing import SigningIdentity
from windows_double import WindowsDoubleSessions, WindowsVmDouble

from harness.dump import open_dump
from harness.record import RunRecord
from harness.report.run_record import write_run_record
from harness.runner import run_scenario
from harness.scenario import load_scenarios
from harness.target.base import TargetError
from harness.target.irql import Irql
from harness.target.ops import Alloc, ClientStructure, Create, Free, IoctlCreate, Reboot, Store, Wait
from harness.target.sim import SimSettings, SimulatedMachine
from harness.target.status import STATUS_ACCESS_DENIED, STATUS_NOT_FOUND, STATUS_SUCCESS
from harness.target.windows.config import TargetConfig
from harness.target.windows.guest import BOOT_POLL_SECONDS
from harness.target.windows.machine import WindowsMachine
from harness.target.windows.package_check import PackageError
from harness.target.windows.provision import guest_path, lkdctl_guest_path
from harness.target.windows.session import SessionError
from harness.target_config import load_target_config

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = load_scenarios(REPO_ROOT / "scenarios")
ADMIN, ADMIN_PASSWORD = "lkdh-admin", "Adm1n-pw-for-the-double-5c1e"
USER, USER_PASSWORD = "lkdh-user", "Std-user-pw-for-the-double-93ab"
HOST = "win-double.test"

CONFIG = """\
name: win-double
host: {host}
winrm:
  username: {admin}
  password: {{env: LKDH_DOUBLE_ADMIN_PASSWORD}}
hypervisor: {{kind: none}}
driver:
  package: {package}
{certificate_line}  hardware_id: Root\\LkdhTestDriver
  service_name: LkdhTestDriver
  lkdctl: build/lkdctl.exe
verifier: {{enabled: true, flags: standard}}
live_dumps: {{report_type: LkdhTestDriver, minimum_spacing_seconds: 60}}
non_admin_user: {{username: {user}, password: {{env: LKDH_DOUBLE_USER_PASSWORD}}}}
timeouts: {{command: 30, boot: 60, transfer: 60}}
"""


@dataclass
class Lab:
    """A WindowsMachine wired to the double; `sleeps` records every sleep the target asked for."""

    vm: WindowsVmDouble
    sessions: WindowsDoubleSessions
    machine: WindowsMachine
    build: Path
    sleeps: list[float] = field(default_factory=list)

    def calls_since(self, mark: int) -> list[str]:
        return [call.name for call in self.vm.calls[mark:]]


def _write_build(folder: Path, package: BuiltPackage, identity: SigningIdentity) -> None:
    """The package, the test certificate (.cer, DER) and an lkdctl.exe stand-in."""
    shutil.copytree(package.folder, folder / "LkdhTestDriver")
    shutil.copy(identity.cer, folder / "LkdhTest.cer")
    (folder / "lkdctl.exe").write_bytes(b"MZ lkdctl")


def build_lab(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
    *,
    profile: str = "dmf-bfac434",
    unreachable: int = 0,
    version: str = "1.2.3.4",
) -> Lab:
    monkeypatch.setenv("LKDH_DOUBLE_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("LKDH_DOUBLE_USER_PASSWORD", USER_PASSWORD)
    _write_build(tmp_path / "build", packages[version], identity)
    config = _config(tmp_path, "build/LkdhTestDriver")
    sim = SimulatedMachine(tmp_path / "vm", SimSettings(profile=profile, verifier=False))
    accounts = {ADMIN: ADMIN_PASSWORD, USER: USER_PASSWORD}
    vm = WindowsVmDouble(
        sim, host=HOST, accounts=accounts, admin=ADMIN, unreachable_polls_after_boot=unreachable
    )
    sessions = WindowsDoubleSessions(vm)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        sim.now += seconds  # the machine lives on while the harness waits

    machine = WindowsMachine(
        tmp_path / "out", config, sessions, sleep=sleep, clock=sim.clock, wall_clock=sim.clock
    )
    return Lab(vm, sessions, machine, tmp_path / "build", sleeps)


def _config(tmp_path: Path, package: str) -> TargetConfig:
    config_file = tmp_path / f"win-double-{package.replace('/', '-')}.yaml"
    certificate_line = "  certificate: build/LkdhTest.cer\n"
    text = CONFIG.format(
        host=HOST, admin=ADMIN, user=USER, certificate_line=certificate_line, package=package
    )
    config_file.write_text(text, encoding="utf-8")
    return load_target_config(config_file)


def machine_on(lab: Lab, config: TargetConfig, tmp_path: Path) -> WindowsMachine:
    """Another WindowsMachine (another `lkdh run`) on the same VM, sharing the lab's virtual clock."""
    sim = lab.vm.sim

    def sleep(seconds: float) -> None:
        lab.sleeps.append(seconds)
        sim.now += seconds

    return WindowsMachine(
        tmp_path / "out2", config, lab.sessions, sleep=sleep, clock=sim.clock, wall_clock=sim.clock
    )


@pytest.fixture
def lab(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> Lab:
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    lab.machine.prepare()
    return lab


def test_prepare_provisions_a_fresh_vm_then_only_reboots(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    lab.machine.prepare()

    config = lab.machine.config
    for local in [*sorted((lab.build / "LkdhTestDriver").iterdir()), lab.build / "LkdhTest.cer"]:
        assert lab.vm.file_bytes(guest_path("driver", local.name)) == local.read_bytes(), local.name
    assert lab.vm.file_bytes(lkdctl_guest_path(config)) == (lab.build / "lkdctl.exe").read_bytes()
    sys_path = guest_path("driver", "LkdhTestDriver.sys")
    uploads = [call.params for call in lab.vm.calls if call.name == "upload-chunk"]
    size = (lab.build / "LkdhTestDriver" / "LkdhTestDriver.sys").stat().st_size
    assert [upload["offset"] for upload in uploads if upload["path"] == sys_path] == list(
        range(0, size, 256 * 1024)
    )
    assert lab.vm.installed_inf == guest_path("driver", "LkdhTestDriver.inf")
    assert lab.vm.device_instances == ["ROOT\\SYSTEM\\0000"], "lkdctl created the root device"
    (install,) = [call.params for call in lab.vm.calls if call.name == "install-driver"]
    assert install["lkdctl_path"] == lkdctl_guest_path(config) and install["old_inf_names"] == []
    assert lab.vm.verifier_drivers == ("LkdhTestDriver.sys",)
    assert lab.vm.trusted_certificates == {
        hashlib.sha256((lab.build / "LkdhTest.cer").read_bytes()).hexdigest()
    }
    assert lab.vm.live_dump_settings_applied == 1
    assert lab.vm.restarts == 1, "test signing and Verifier take effect after one reboot"
    assert lab.vm.driver_running
    info = lab.machine.driver_info()
    assert {"verifier", "non-admin-user", "test-driver"} <= info.features
    assert info.collection_handle == lab.vm.sim.framework.collection_handle
    assert info.report_type == lab.vm.sim.module.report_type  # F05 cuts it on bfac434

    mark, boot = len(lab.vm.calls), lab.vm.boot_unix
    lab.machine.prepare()
    again = lab.calls_since(mark)
    assert "upload-chunk" not in again and "install-driver" not in again, again
    assert lab.vm.restarts == 2, "without a hypervisor the second prepare reboots for a clean driver state"
    assert lab.vm.boot_unix != boot
    assert lab.sessions.opened and set(lab.sessions.opened) == {"winrm"}


def test_the_winrm_logon_takes_the_password_from_the_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    monkeypatch.setenv("LKDH_DOUBLE_ADMIN_PASSWORD", "wrong-admin-pw-17e0")
    with pytest.raises(SessionError) as caught:
        lab.machine.prepare()
    assert caught.value.stage == "auth"
    assert "wrong-admin-pw-17e0" not in str(caught.value)
    assert lab.vm.calls == [], "nothing ran on the machine"


def _step_facts(record: RunRecord) -> list[tuple[object, ...]]:
    return [
        (
            step.operation,
            step.outcome,
            step.status,
            None if step.crash is None else step.crash.bugcheck_code,
            sorted(dump.kind for dump in step.dumps),
        )
        for step in record.steps
    ]


def _dump_facts(record: RunRecord) -> list[tuple[object, ...]]:
    """What must agree between a dump written for the simulator and one pulled from the VM (P2 and
    addresses depend on the boot, so they are left to the scenario's own checks)."""
    facts = []
    for dump in record.dumps:
        with open_dump(dump.path) as opened:
            header = opened.header
            facts.append(
                (dump.kind, header.bugcheck_code, header.bugcheck_parameters[0], len(opened.data_blocks))
            )
    return facts


@pytest.mark.parametrize("profile", ["dmf-bfac434", "contract"])
def test_shipped_scenarios_give_the_simulators_outcomes_on_the_windows_target(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    profile: str,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    """One VM runs the whole suite in turn (as `lkdh run` shares it); each scenario must end as it
    does on a fresh simulator, with the very same steps failing. The VM's driver reports DMF bfac434,
    so the VM has bfac434's known defects: a known-defect scenario is xfailed there as on the
    simulator, and where the machine behind it behaves as the contract, it is xpassed (the predicted
    defect did not show), never quietly passed."""
    lab = build_lab(tmp_path, monkeypatch, packages, identity, profile=profile)
    skipped: list[str] = []
    for loaded in SHIPPED:
        name = loaded.scenario.name
        simulator = SimulatedMachine(tmp_path / "sim" / name, SimSettings(profile=profile))
        reference = run_scenario(loaded, simulator)
        lab.machine.output_dir = tmp_path / "vm-out" / name
        record = run_scenario(loaded, lab.machine)
        if record.outcome == "skipped":  # the two settings the vm target cannot apply, with the reason
            settings = loaded.scenario.machine
            assert settings is not None, f"{name}: {record.skip_reason}"
            assert settings.target_build is not None or settings.report_type == "", name
            assert "cannot" in (record.skip_reason or "") or "fixed when" in (record.skip_reason or ""), name
            skipped.append(name)
            continue

        cites_defect = loaded.scenario.known_defect is not None
        expected = "xpassed" if cites_defect and reference.outcome == "passed" else reference.outcome
        assert reference.outcome in ("passed", "xfailed"), reference.failure_text()
        assert (record.outcome, record.error, record.skip_reason) == (expected, None, None), (
            f"{name}: {record.failure_text()}"
        )
        assert record.defect_active == cites_defect
        assert record.profile == "bfac434"
        assert _step_facts(record) == _step_facts(reference), name
        assert _dump_facts(record) == _dump_facts(reference), name
        for dump in record.dumps:
            assert dump.path.is_relative_to(lab.machine.output_dir)
            assert hashlib.sha256(dump.path.read_bytes()).hexdigest() == dump.sha256
    assert set(lab.sessions.opened) == {"winrm"}
    applied = [
        x.scenario.name for x in SHIPPED if x.scenario.machine is not None and x.scenario.name not in skipped
    ]
    assert applied, "the shipped machine: scenarios run on the vm target, not only skip"


def test_a_crash_is_reported_from_the_pulled_crash_dump(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    """Store at DISPATCH_LEVEL under Verifier bugchecks (F14, F38: 0xD1 in the paged lock helper):
    the command dies with the connection,
    the machine is unreachable while it boots, and the Crash comes from the dump pulled afterwards."""
    lab = build_lab(tmp_path, monkeypatch, packages, identity, unreachable=2)
    lab.machine.prepare()
    lab.sleeps.clear()
    assert lab.machine.execute(Alloc("isr_data", 32, b"isr|")).status == STATUS_SUCCESS
    assert lab.machine.execute(Create(0x1A2)).status == STATUS_SUCCESS  # a live dump, not collected yet

    result = lab.machine.execute(Store("isr_data", 32, irql=Irql.DISPATCH_LEVEL))

    truth = lab.vm.sim.crashes[-1]
    assert result.crash is not None
    assert (result.crash.bugcheck_code, result.crash.parameters) == (truth.bugcheck_code, truth.parameters)
    assert result.crash.bugcheck_code == 0xD1 and result.crash.parameters[1:3] == (2, 8)
    assert lab.sleeps == [BOOT_POLL_SECONDS, BOOT_POLL_SECONDS], "two refused polls while it booted"
    local = result.crash.dump_path
    assert local is not None and local.is_relative_to(lab.machine.output_dir)
    assert local.read_bytes() == truth.dump_path.read_bytes()
    with open_dump(local) as dump:
        assert (dump.header.bugcheck_code, tuple(dump.header.bugcheck_parameters)) == (0xD1, truth.parameters)

    live, crash = sorted(lab.machine.collect_dumps(), key=lambda dump: dump.kind, reverse=True)
    assert (crash.path, crash.kind) == (local, "crash")
    assert crash.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()
    assert live.kind == "live", "the live dump written before the crash is not lost"
    assert lab.machine.collect_dumps() == []
    after = lab.machine.execute(Store("isr_data", 32))
    assert after.status == STATUS_NOT_FOUND, "the buffer died with the boot"


def test_reboot_forgets_the_drivers_buffers(lab: Lab) -> None:
    lab.machine.execute(Alloc("kept", 16, b"k"))
    restarts = lab.vm.restarts
    assert lab.machine.execute(Reboot()).status == STATUS_SUCCESS
    assert lab.vm.restarts == restarts + 1
    assert lab.machine.execute(Store("kept", 16)).status == STATUS_NOT_FOUND
    assert lab.machine.execute(Alloc("kept", 16, b"k")).status == STATUS_SUCCESS
    assert lab.machine.execute(Store("kept", 16)).status == STATUS_SUCCESS


def test_a_freed_buffer_is_unknown_to_every_operation_as_on_the_simulator(lab: Lab, tmp_path: Path) -> None:
    gone = (ClientStructure("gone", 16),)
    ops = [
        Alloc("gone", 16, b"g"),
        Free("gone"),
        Store("gone", 16),
        Create(0x1A2, client_structures=gone),
        IoctlCreate(0x1B0, client_structures=gone),
    ]
    reference = SimulatedMachine(tmp_path / "reference")
    expected = [reference.execute(op).status for op in ops]
    assert expected == [STATUS_SUCCESS, STATUS_SUCCESS] + [STATUS_NOT_FOUND] * 3
    assert [lab.machine.execute(op).status for op in ops] == expected


def test_a_dropped_connection_without_a_reboot_is_a_target_error_at_once(lab: Lab) -> None:
    """Item 4: the first answer from the same boot (same BootId, uptime still growing) proves no
    crash, even though LastBootUpTime moved by a second (windows_exporter#74): no wait for the deadline."""
    lab.vm.last_boot_jitter = True
    lab.sleeps.clear()
    lab.vm.lose_next_lkdctl = True
    with pytest.raises(TargetError, match="did not reboot: it answers from the same boot") as caught:
        lab.machine.execute(Alloc("a", 16, b"a"))
    assert not lab.vm.sim.crashes
    assert lab.sleeps == [], "it gave up at the first answer instead of polling to the boot deadline"
    assert "boot id 42" in str(caught.value)


def test_collected_dumps_are_hash_verified_copies_over_winrm_chunks(lab: Lab) -> None:
    assert lab.machine.execute(Create(0x1A2, parameter=5)).status == STATUS_SUCCESS
    mark = len(lab.vm.calls)
    (dump,) = lab.machine.collect_dumps()
    assert dump.kind == "live"
    assert dump.remote_name.startswith(f"LiveKernelReports/{lab.vm.sim.module.report_type}/")
    (original,) = (lab.vm.sim.windows_dir / "LiveKernelReports").glob("**/*.dmp")
    assert dump.path.read_bytes() == original.read_bytes()
    assert dump.sha256 == hashlib.sha256(original.read_bytes()).hexdigest()
    assert "read-chunk" in lab.calls_since(mark)
    assert "ssh" not in lab.sessions.opened

    lab.machine.execute(Wait(61))
    lab.machine.execute(Create(0x1A2, parameter=6))
    lab.vm.corrupt_next_chunk = True
    with pytest.raises(SessionError) as caught:
        lab.machine.collect_dumps()
    assert caught.value.stage == "transfer"
    assert list(lab.machine.output_dir.glob("dumps/**/*.mismatch")), "the bad bytes are kept for inspection"


def test_standard_user_ioctl_runs_as_the_configured_account_and_its_password_stays_secret(
    lab: Lab, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    (loaded,) = [s for s in SHIPPED if s.scenario.name == "ioctl_create_as_standard_user_is_denied"]
    record = run_scenario(loaded, lab.machine, prepare=False)

    assert record.outcome == "passed", record.failure_text()
    assert record.steps[0].status == STATUS_ACCESS_DENIED
    assert lab.vm.standard_user_runs == [USER], "only the standard-user step ran as that account"
    assert any(call.params.get("run_as_user") == USER for call in lab.vm.calls)
    run_record = write_run_record(tmp_path / "record.json", [record]).read_text(encoding="utf-8")
    logged = caplog.text
    assert "run-lkdctl" in logged, "the script calls were logged (with their parameters masked)"
    for secret in (USER_PASSWORD, ADMIN_PASSWORD):
        assert secret not in logged
        assert secret not in run_record
        assert secret not in json.dumps(record.to_json())
        assert secret not in repr(lab.vm.calls)


def test_a_refused_standard_user_logon_fails_at_once_without_waiting_for_a_reboot(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The machine answered (Register-ScheduledTask refused the password): that is an error to
    report, not a lost connection to wait out for the boot deadline."""
    monkeypatch.setenv("LKDH_DOUBLE_USER_PASSWORD", "not-the-password-8d2f")
    lab.sleeps.clear()
    mark = len(lab.vm.calls)
    with pytest.raises(TargetError, match="user name or password is incorrect") as caught:
        lab.machine.execute(IoctlCreate(0x1B1, elevated=False))
    assert lab.sleeps == []
    assert "boot-time" not in lab.calls_since(mark)
    assert "not-the-password-8d2f" not in str(caught.value)
    assert lab.vm.standard_user_runs == []


def test_scenarios_are_spaced_by_the_one_report_per_minute_rule(lab: Lab) -> None:
    """F06: the next scenario's first Create must not collide with the last one's dump."""
    lab.sleeps.clear()
    lab.machine.prepare()
    assert lab.sleeps == [], "no Create yet: nothing to wait for"

    created = lab.vm.sim.now
    lab.machine.execute(Create(0x1A2))
    lab.vm.sim.now += 15  # the rest of the scenario took 15 s
    lab.machine.prepare()
    assert lab.vm.sim.now - created >= 60
    assert lab.sleeps == [], "the reboot (45 s on the double) and the 15 s already fill the minute"

    lab.sleeps.clear()
    lab.machine.execute(Create(0x1A2))
    lab.machine.execute(Wait(61))
    lab.machine.prepare()
    assert lab.sleeps == [61], "a minute has passed already: only the scenario's own wait"


def test_the_one_minute_spacing_runs_while_the_machine_reboots_and_is_provisioned(lab: Lab) -> None:
    """The minute counts from the last Create and overlaps the reset: only what is left of it once
    the machine is ready is waited, after the restart, not before it (fake clock: the simulator's,
    which the double's reboot advances as a real reboot takes time)."""
    lab.machine.execute(Create(0x1A2))
    created, mark = lab.vm.sim.now, len(lab.vm.calls)
    calls_at_sleep: list[int] = []
    sleep = lab.machine._sleep

    def recording_sleep(seconds: float) -> None:
        calls_at_sleep.append(len(lab.vm.calls))
        sleep(seconds)

    lab.machine._sleep = recording_sleep
    lab.sleeps.clear()
    lab.machine.prepare()
    (spacing,) = lab.sleeps
    done = lab.calls_since(mark)[: calls_at_sleep[0] - mark]
    assert "restart-computer" in done and "list-dumps" in done, "it waited after the reset, not before"
    assert 0 < spacing < 60
    assert lab.vm.sim.now - created == pytest.approx(60), "a minute in all, not a minute plus the reset"


def test_a_device_that_does_not_start_after_the_reboot_fails_prepare(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    """Item 1: a failure hidden by the pending test-signing reboot is caught after it: the machine
    never trusts the certificate here (the import is lost), so the device keeps CM_PROB 52."""
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    original = lab.vm._import_certificate
    lab.vm._handlers["import-certificate"] = lambda params: {
        **original(params),
        "lost": lab.vm.trusted_certificates.clear(),
    }
    with pytest.raises(
        TargetError,
        match=r"did not start after provisioning and a reboot: device ROOT\\SYSTEM\\0000 has CM_PROB_",
    ):
        lab.machine.prepare()
    assert lab.vm.restarts == 1


def test_a_new_build_replaces_the_old_one_and_the_record_names_it(
    lab: Lab, tmp_path: Path, packages: dict[str, BuiltPackage], identity: SigningIdentity
) -> None:
    """Item 2: the loaded image differs from the package: the old oemNN.inf is deleted, the new one
    installed on the same device, and INFO and the run record name the new version and hash."""
    old_sys_sha = lab.machine.driver_info().facts["driver_sha256"]
    assert lab.machine.driver_info().facts["driver_version"] == "1.2.3.4"
    newer = tmp_path / "newer"
    _write_build(newer, packages["1.2.3.5"], identity)
    machine = machine_on(lab, _config(tmp_path, "newer/LkdhTestDriver"), tmp_path)
    machine.prepare()
    (install,) = [c.params for c in lab.vm.calls if c.name == "install-driver"][1:]
    assert install["old_inf_names"] == ["oem42.inf"]
    assert "oem42.inf" not in lab.vm.driver_store and len(lab.vm.device_instances) == 1
    facts = machine.driver_info().facts
    new_sha = hashlib.sha256(packages["1.2.3.5"].sys.read_bytes()).hexdigest()
    assert (facts["driver_version"], facts["driver_sha256"]) == (
        "1.2.3.5",
        new_sha,
    ) and new_sha != old_sys_sha
    (loaded,) = [s for s in SHIPPED if s.scenario.name == "ioctl_create_as_standard_user_is_denied"]
    record = run_scenario(loaded, machine, prepare=False)
    assert record.to_json()["target_facts"]["driver_sha256"] == new_sha


def test_verifier_and_reboot_only_when_the_settings_differ(
    lab: Lab, tmp_path: Path, packages: dict[str, BuiltPackage], identity: SigningIdentity
) -> None:
    """Item 3: verifier.exe always answers "reboot required"; a VM that already verifies the driver
    with the wanted flags is neither reconfigured nor rebooted by the next run's first prepare."""
    calls, restarts = lab.vm.verifier_calls, lab.vm.restarts
    machine = machine_on(lab, lab.machine.config, tmp_path)
    machine.prepare()
    assert (lab.vm.verifier_calls, lab.vm.restarts) == (calls, restarts)


def test_live_dump_settings_that_need_a_reboot_get_one(lab: Lab, tmp_path: Path) -> None:
    lab.vm.pending_live_dump_reboot = True
    restarts = lab.vm.restarts
    machine_on(lab, lab.machine.config, tmp_path).prepare()
    assert lab.vm.restarts == restarts + 1


def test_a_failed_create_puts_the_livedump_events_into_the_log(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    lab.vm.live_dump_events = [
        {
            "unix": int(lab.vm.sim.now),
            "time_utc": "t",
            "id": 1004,
            "level": "Warning",
            "message": "throttled: one report per minute",
        }
    ]
    assert lab.machine.execute(Create(0x1A2)).status == STATUS_SUCCESS
    caplog.set_level(logging.WARNING)
    assert lab.machine.execute(Create(0x1A2)).status != STATUS_SUCCESS  # F06: within the minute
    assert "Microsoft-Windows-Kernel-LiveDump/Operational has 1 event" in caplog.text
    assert "Create failed (no dump in LiveKernelReports\\LkdhTestDri)" in caplog.text  # F05's folder
    assert "throttled: one report per minute" in caplog.text


def test_a_dump_rewritten_at_the_same_path_is_collected_again(lab: Lab) -> None:
    lab.machine.execute(Create(0x1A2))
    (first,) = lab.machine.collect_dumps()
    (original,) = (lab.vm.sim.windows_dir / "LiveKernelReports").glob("**/*.dmp")
    original.write_bytes(original.read_bytes() + b"\0" * 4096)
    (again,) = lab.machine.collect_dumps()
    assert again.remote_name == first.remote_name and again.sha256 != first.sha256


def test_a_package_for_another_machine_type_is_refused_before_anything_changes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
) -> None:
    lab = build_lab(tmp_path, monkeypatch, packages, identity)
    lab.vm.os_architecture = "ARM64"
    with pytest.raises(PackageError, match="NTarm64"):
        lab.machine.prepare()
    assert lab.calls_since(0) == ["host-info"], "only the read-only question was asked"
