"""`lkdh explore`: the reference models, the stateful generator, seeded campaigns that find the known
defects of dmf-bfac434 by themselves (and nothing on `contract`), findings that are ready scenarios,
and the same seed giving the same sequences on the simulator and on the Windows target."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.cli import main
from harness.explore.campaign import Campaign, simulator
from harness.explore.generator import search
from harness.explore.model import (
    CALLER_SECONDARY,
    Bfac434Model,
    Call,
    ContractModel,
    ReportSpacing,
    legal,
    predict_sequence,
)
from harness.explore.scenario_text import scenario_yaml
from harness.scenario import load_scenario_file
from harness.target.base import TargetError
from harness.target.irql import Irql
from harness.target.sim import SimSettings, SimulatedMachine

DEFECTS_FOUND_FROM_NOTHING = {
    "remove-null-context",
    "apc-wait-lock",
    "dispatch-wait-lock",
    "ioctl-unprobed-user-pointers",
    "exclude-dmf-data-nonbool",
}


def _expects(model_class: type[ContractModel], calls: list[Call]) -> list[object]:
    steps = predict_sequence(model_class, calls)
    assert steps is not None
    return [step.expect for step in steps]


def test_the_contract_model_follows_the_documentation() -> None:
    calls = [
        Call("alloc", "b0"),
        Call("alloc", "b1"),
        Call("store", "b0", Irql.DISPATCH_LEVEL),  # documented: IRQL <= DISPATCH_LEVEL
        Call("store", "b0"),
        Call("store", "b1", Irql.APC_LEVEL),
        Call("remove", "b0"),  # every duplicate goes (F12)
        Call("create", value=7),
        Call("wait", value=61),
        Call("store_collection", value=0x1234),
        Call("create", exclude=0, structures=("b0",), secondary="b1", value=8),
        Call("wait", value=61),
        Call("create", exclude=2, value=9),  # a BOOLEAN: 2 is TRUE
    ]
    expects = _expects(ContractModel, calls)
    assert expects[:6] == [None] * 6
    assert expects[6] == {"dump": {"parameters": [7, "collection"], "contains": ["b1"], "excludes": ["b0"]}}
    assert expects[9] == {
        "dump": {"parameters": [8, 0x1234], "contains": ["b0", "b1"], "secondary_data": [{"buffer": "b1"}]}
    }
    assert expects[11] == {"dump": {"parameters": [9, 0], "excludes": ["b0", "b1"]}}


def test_the_contract_model_of_the_ioctl_reboot_and_the_report_minute() -> None:
    calls = [
        Call("alloc", "b0"),
        Call("store", "b0"),
        Call("ioctl_create", caller="standard-user", value=3),  # F26
        Call("ioctl_create", structures=("b0",), value=4),  # a kernel address: probed and refused
        Call("ioctl_create", secondary=CALLER_SECONDARY, value=5),
        Call("create", value=6),  # within the minute of the last report (F06)
        Call("reboot"),
    ]
    expects = _expects(ContractModel, calls)
    assert expects[2] == {"status": "STATUS_ACCESS_DENIED"}
    assert expects[3] == {"status": "STATUS_ACCESS_VIOLATION"}
    assert expects[4]["dump"]["secondary_data"] == [
        {"hex": "65 78 70 6c 6f 72 65 20 73 65 63 6f 6e 64 61 72 79"}
    ]
    assert expects[5] == {"status": "STATUS_OBJECT_NAME_COLLISION"}
    model = ContractModel()
    for call in calls:
        model.predict(call)
    assert (model.allocated, model.stored, model.collection) == ([], [], "collection")
    assert model.spacing.state() == "unknown", "how long the reboot took is the machine's"
    assert not legal(model, Call("create")), "a Create the model cannot call is never generated"
    assert not legal(model, Call("store", "b0")), "the reboot freed b0"
    model.predict(Call("wait", value=61))
    assert legal(model, Call("create"))


def test_report_spacing_is_certain_or_unknown() -> None:
    assert ReportSpacing().state() == "free"
    assert ReportSpacing(submitted=True, steps=4).state() == "collision"
    assert ReportSpacing(submitted=True, steps=5).state() == "unknown"
    assert ReportSpacing(submitted=True, waited=30).state() == "unknown"
    assert ReportSpacing(submitted=True, waited=61, unknown=True).state() == "free"


def test_the_bfac434_model_names_the_defect_behind_each_deviation() -> None:
    calls = [
        Call("alloc", "b0"),
        Call("store", "b0"),
        Call("remove", "b0"),
        Call("alloc", "b0"),  # the crash rebooted the machine
        Call("store", "b0", Irql.APC_LEVEL),
        Call("alloc", "b0"),
        Call("store", "b0", Irql.DISPATCH_LEVEL),
        Call("alloc", "b0"),
        Call("create", exclude=2, value=1),
        Call("wait", value=61),
        Call("ioctl_create", structures=("b0",), value=2),
    ]
    steps = predict_sequence(Bfac434Model, calls)
    assert steps is not None
    assert [step.defect for step in steps if step.defect] == [
        "remove-null-context",
        "apc-wait-lock",
        "dispatch-wait-lock",
        "exclude-dmf-data-nonbool",
        "ioctl-unprobed-user-pointers",
    ]
    assert steps[8].expect == {"dump": {"parameters": [1, "collection"], "excludes": ["b0"]}}  # F17
    assert steps[10].expect == {"dump": {"parameters": [2, "collection"], "contains": ["b0"]}}  # F27


def test_generated_sequences_are_legal_and_use_every_operation() -> None:
    """The stateful generator only makes sequences the model can predict: buffers allocated before
    use, never a Create whose one-report-per-minute outcome is unknown (it waits first)."""
    seen: list[list[Call]] = []

    def judge(steps) -> None:
        calls = [step.call for step in steps]
        assert predict_sequence(ContractModel, calls) is not None, calls
        seen.append(calls)

    search(5, steps=8, examples=40, model=ContractModel, avoid=[], judge=judge)
    operations = {call.operation for calls in seen for call in calls}
    assert operations == {
        "alloc",
        "store",
        "remove",
        "store_collection",
        "create",
        "ioctl_create",
        "wait",
        "reboot",
    }
    assert {call.exclude for calls in seen for call in calls} == {0, 1, 2}


def test_a_sequence_is_a_scenario_the_loader_takes(tmp_path: Path) -> None:
    steps = predict_sequence(
        ContractModel,
        [
            Call("alloc", "b0"),
            Call("store", "b0", Irql.DISPATCH_LEVEL),
            Call("ioctl_create", exclude=1, secondary=CALLER_SECONDARY, caller="standard-user", value=3),
            Call("create", structures=("b0",), secondary="b0", value=4),
        ],
    )
    assert steps is not None
    path = tmp_path / "s.yaml"
    path.write_text(scenario_yaml("s", steps, "d"))
    (loaded,) = load_scenario_file(path)
    assert loaded.scenario.requires == ["admin", "ioctl", "non-admin-user", "test-driver", "verifier"]
    assert [loaded.scenario.step_operation(i) for i in range(4)] == [
        "alloc",
        "store",
        "ioctl_create",
        "create",
    ]


def _defects_named(path: Path) -> set[str]:
    """The ids on the finding's header line "Known defects that explain it: a, b."."""
    (line,) = [line for line in path.read_text().splitlines() if "Known defects that explain it:" in line]
    return set(line.split(":", 1)[1].strip(" .").split(", "))


def test_a_seeded_campaign_finds_the_known_defects_from_nothing(tmp_path: Path) -> None:
    """Done means (issue 11): from an empty start, the contract model finds the Remove, IRQL,
    IOCTL-pointer and ExcludeDmfData defects on dmf-bfac434 within a seeded budget; each finding is
    a minimal scenario that `lkdh check` accepts and `lkdh run` fails on dmf-bfac434 and passes on
    contract."""
    out = tmp_path / "found"
    assert main(["explore", "--seed", "1", "--examples", "20", "--out", str(out)]) == 1
    paths = sorted(out.glob("explore_1_*.yaml"))
    found = {path.name: _defects_named(path) for path in paths}
    assert set().union(*found.values()) >= DEFECTS_FOUND_FROM_NOTHING, found
    descriptions = {path.name: load_scenario_file(path)[0].scenario.description for path in paths}
    shrunk = {next(iter(found[name])): text.split(" holds for ")[1] for name, text in descriptions.items()}
    assert shrunk["remove-null-context"] == "alloc(b0) -> store(b0) -> remove(b0)"
    assert shrunk["exclude-dmf-data-nonbool"] == "create(exclude_dmf_data=2)"
    assert main(["check", *map(str, paths)]) == 0
    for path in paths:
        for profile, code in (("dmf-bfac434", 1), ("contract", 0)):
            run_out = tmp_path / "run" / path.stem / profile
            assert main(["run", str(path), "--sim-profile", profile, "--out", str(run_out)]) == code, (
                path,
                profile,
            )


def test_the_same_seed_gives_the_same_campaign() -> None:
    def campaign() -> Campaign:
        run = Campaign(seed=4, steps=4, open_target=simulator("dmf-bfac434"), examples=6, max_findings=2)
        run.run()
        return run

    first, second = campaign(), campaign()
    assert first.tried == second.tried and first.runs > 6
    assert [f.describe() for f in first.findings] == [f.describe() for f in second.findings]


def test_the_contract_profile_agrees_with_the_contract_model(tmp_path: Path, capsys) -> None:
    """No false positives: the simulator's `contract` profile is the documented module, so a
    campaign with the contract model finds nothing there (that is the test that the model is right)."""
    campaign = ["explore", "--seed", "2", "--steps", "8", "--examples", "40", "--sim-profile", "contract"]
    code = main([*campaign, "--out", str(tmp_path)])
    output = capsys.readouterr().out
    assert code == 0, output
    assert "0 disagreements in" in output and "on sim/contract (seed 2, model contract)" in output
    assert not list(tmp_path.glob("*.yaml"))
    assert len((tmp_path / "sequences.txt").read_text().splitlines()) >= 30


def test_the_bfac434_model_finds_nothing_new_on_dmf_bfac434(tmp_path: Path) -> None:
    campaign = Campaign(
        seed=3, steps=8, open_target=simulator("dmf-bfac434"), model="bfac434", examples=40, max_findings=1
    )
    assert campaign.run() == []
    assert campaign.runs >= 30


def test_explore_refuses_bad_input(tmp_path: Path, capsys) -> None:
    assert main(["explore", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert main(["explore", "--target", "vm", "--out", str(tmp_path)]) == 2
    assert "--target vm needs --target-config" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["explore", "--model", "dmf-123"])


def test_explore_takes_its_target_from_a_target_config(tmp_path: Path, capsys) -> None:
    config = tmp_path / "sim-contract.yaml"
    config.write_text("kind: sim\nprofile: contract\n")
    args = ["explore", "--steps", "2", "--examples", "2", "--target-config", str(config)]
    assert main([*args, "--out", str(tmp_path / "sim")]) == 0
    assert "on sim/contract (seed 0, model contract)" in capsys.readouterr().out
    assert main([*args, "--target", "vm", "--out", str(tmp_path / "vm")]) == 3
    assert "describes the simulator (kind: sim), not a Windows VM" in capsys.readouterr().err


def test_a_target_that_cannot_run_the_sequences_stops_the_campaign(tmp_path: Path) -> None:
    """Every sequence needs Driver Verifier (the IRQL promises are judged under it): a target
    without it skips the scenario, and the campaign stops with that reason instead of counting
    skipped runs as agreement."""

    @contextmanager
    def no_verifier(folder: Path):
        with SimulatedMachine(folder, SimSettings(profile="contract", verifier=False)) as machine:
            yield machine

    campaign = Campaign(seed=1, steps=3, open_target=no_verifier, examples=5)
    with pytest.raises(TargetError, match="lacks verifier"):
        campaign.run()
    assert campaign.runs == 1 and campaign.findings == []
