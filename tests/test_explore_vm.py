"""`lkdh explore --target vm`: the same seed replays on a Windows target from a target config.

The Windows target is the real WindowsMachine (provisioning, WinRM templates, lkdctl IOCTLs, dump
collection) talking to the test double of a VM (tests/windows_double.py, whose limits are said
there); `lkdh explore` builds it from the lab's target config through `TargetFactory`, with only the
session factory swapped for the double's. What stays unverified: a real Windows VM.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from driver_package import BuiltPackage
from signing import SigningIdentity
from test_windows_machine import build_lab

from harness.cli import main
from harness.targets import TargetFactory


def _scenario_body(path: Path) -> list[str]:
    """The finding without its header comment (which names the target it was found on)."""
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


def test_the_same_seed_gives_the_same_sequences_on_the_windows_target(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    packages: dict[str, BuiltPackage],
    identity: SigningIdentity,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lab = build_lab(tmp_path, monkeypatch, packages, identity, profile="dmf-bfac434")
    monkeypatch.setattr(TargetFactory, "_windows_machine", lambda self, output_dir, member=None: lab.machine)
    (config,) = tmp_path.glob("win-double-*.yaml")
    campaign = ["explore", "--seed", "1", "--steps", "4", "--examples", "6", "--findings", "1"]
    vm_out, sim_out = tmp_path / "explore-vm", tmp_path / "explore-sim"

    assert main([*campaign, "--target", "vm", "--target-config", str(config), "--out", str(vm_out)]) == 1
    vm_said = capsys.readouterr().out
    assert main([*campaign, "--out", str(sim_out)]) == 1
    assert "on vm/win-double (seed 1, model contract)" in vm_said

    vm_sequences = (vm_out / "sequences.txt").read_text().splitlines()
    assert vm_sequences == (sim_out / "sequences.txt").read_text().splitlines()
    assert len(vm_sequences) > 6, "searches and shrinking ran on the VM too"
    vm_findings, sim_findings = sorted(vm_out.glob("*.yaml")), sorted(sim_out.glob("*.yaml"))
    assert [p.name for p in vm_findings] == [p.name for p in sim_findings] and len(vm_findings) == 1
    for vm_file, sim_file in zip(vm_findings, sim_findings, strict=True):
        assert _scenario_body(vm_file) == _scenario_body(sim_file)
        assert "on vm/win-double" in vm_file.read_text()
    runs = sorted((vm_out / "runs").iterdir())
    assert runs and {run.name for run in runs} <= {f"run-{n:05d}" for n in range(1, len(vm_sequences) + 1)}
    assert any(list(run.rglob("*.dmp")) for run in runs), "the dumps pulled from the VM are kept"
    assert lab.vm.restarts > len(vm_sequences), "every sequence started on a freshly prepared VM"
