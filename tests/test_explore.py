"""`lkdh explore`: the contract model, generated sequences, and findings that are ready scenarios."""

from __future__ import annotations

from pathlib import Path

from harness.cli import main
from harness.explore.campaign import Campaign, run_calls, write_findings
from harness.explore.model import Call, ContractModel, scenario_yaml
from harness.runner import run_scenario
from harness.scenario import load_scenario_file
from harness.target.irql import Irql
from harness.target.sim import SimSettings, SimulatedMachine


def test_the_model_follows_the_documentation() -> None:
    model = ContractModel.empty()
    for call in (Call("store", "b0"), Call("store", "b0"), Call("store", "b1"), Call("remove", "b0")):
        model.apply(call)
    assert model.dump_prediction(Call("create")) == (["b1"], ["b0"])  # every duplicate removed (F12)
    assert model.dump_prediction(Call("create", exclude=True)) == ([], ["b0", "b1"])  # F01


def test_a_sequence_is_a_scenario_the_contract_passes(tmp_path: Path) -> None:
    calls = [
        Call("store", "b0", Irql.DISPATCH_LEVEL),
        Call("store", "b1"),
        Call("remove", "b1"),
        Call("create"),
    ]
    path = tmp_path / "s.yaml"
    path.write_text(scenario_yaml("s", calls, "d"))
    (loaded,) = load_scenario_file(path)
    assert [type(step).__name__ for step in loaded.scenario.steps][:3] == [
        "AllocStep",
        "AllocStep",
        "StoreStep",
    ]
    assert run_calls(calls, "contract").outcome == "passed"
    assert run_calls(calls, "dmf-bfac434").outcome == "failed"  # dispatch-wait-lock, then remove-null-context


def test_a_seeded_campaign_finds_the_irql_and_remove_defects_from_nothing(tmp_path: Path) -> None:
    """Done means (issue 11): from an empty start the model finds the Remove and IRQL defects on
    dmf-bfac434 within a seeded budget; each finding is a minimal YAML scenario that fails there and
    passes on the contract."""
    campaign = Campaign(seed=1, steps=4, examples=30, max_findings=3)
    findings = campaign.run()
    keys = {finding.key for finding in findings}
    assert ("remove", "PASSIVE_LEVEL") in keys  # remove-null-context (F13/F33)
    assert keys & {("store", "APC_LEVEL"), ("store", "DISPATCH_LEVEL")}  # apc/dispatch-wait-lock (F38)
    remove = next(finding for finding in findings if finding.key == ("remove", "PASSIVE_LEVEL"))
    assert [call.describe() for call in remove.calls] == ["store(b0)", "remove(b0)"]  # shrunk
    assert "0xD1" in remove.message
    for path in write_findings(findings, tmp_path, seed=1, profile="dmf-bfac434"):
        (loaded,) = load_scenario_file(path)
        for profile, outcome in (("dmf-bfac434", "failed"), ("contract", "passed")):
            with SimulatedMachine(
                tmp_path / "run" / path.stem / profile, SimSettings(profile=profile)
            ) as machine:
                assert run_scenario(loaded, machine).outcome == outcome, (path, profile)


def test_the_contract_profile_agrees_with_the_model(tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                "explore",
                "--seed",
                "3",
                "--steps",
                "3",
                "--examples",
                "8",
                "--sim-profile",
                "contract",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert "0 disagreements in 8 runs on sim/contract (seed 3)" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.yaml"))
