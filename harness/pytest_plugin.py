"""pytest plugin: every scenario in a YAML file becomes one item per target.

`test_name[sim]` runs on the simulated machine; `test_name[vm]` is marked `hardware` and runs when
`--target-config` names a Windows VM, otherwise it is skipped with that reason. Thin by design
(pytest's own non-Python example): the runner does the work, `repr_failure` shows its evidence.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import allure
import pytest

from harness.record import RunRecord
from harness.report import allure_pytest
from harness.report.allure_files import write_allure_files, write_executor
from harness.report.allure_labels import as_run_names_it
from harness.report.allure_results import AllureScenarioResult, options_from
from harness.report.dump_map import DumpMapFiles
from harness.report.run_log import RunLog
from harness.report.run_record import write_run_record
from harness.runner import run_scenario as run_loaded_scenario
from harness.scenario import LoadedScenario, ScenarioErrors, load_scenario_file
from harness.scenario.expand import is_step_file
from harness.target.base import Target, TargetError
from harness.target.sim import DEFAULT_PROFILE, PROFILES
from harness.targets import TARGET_NAMES, TargetFactory

RECORDS_KEY = pytest.StashKey[list[RunRecord]]()
FACTORY_KEY = pytest.StashKey[TargetFactory]()
ALLURE_KEY = pytest.StashKey["allure_pytest.ScenarioResultsFilter | None"]()

MARKERS = (
    "hardware: needs a real Windows VM (--target-config); skipped without one",
    "sim: a scenario item that runs on the simulated machine",
    "known_defect(id): scenario predicted to fail on dmf-bfac434 because of a known DMF defect",
)
"""The markers the plugin puts on items, registered by the plugin itself, so a project that
installs lkdh and runs with --strict-markers needs no configuration of its own."""


class ScenarioFailed(AssertionError):
    """A scenario's expectations did not hold; the message is the runner's evidence.

    An AssertionError so Allure files it as "failed" (the product) rather than "broken" (the harness
    or the infrastructure, which raise other exceptions)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lkdh", "DMF live-dump harness")
    group.addoption(
        "--target",
        choices=TARGET_NAMES,
        default=None,
        help="run only this target's items (default: sim, plus vm when --target-config is given)",
    )
    group.addoption("--target-config", type=Path, default=None, help="YAML config of a real Windows VM")
    group.addoption(
        "--sim-profile",
        choices=sorted(PROFILES),
        default=None,
        help=f"simulated DMF behaviour (default {DEFAULT_PROFILE}: as shipped, defects included)",
    )
    group.addoption(
        "--lkdh-out", type=Path, default=Path("lkdh-out"), help="where dumps and run records are kept"
    )
    group.addoption(
        "--defect-pack",
        type=Path,
        default=None,
        help="folder of known-defect reports (<id>.md) that Allure links point to (or LKDH_DEFECT_PACK)",
    )
    group.addoption(
        "--allure-dump-limit",
        type=int,
        default=None,
        metavar="BYTES",
        help="attach dump files up to this size to Allure results (default 8 MiB)",
    )
    parser.addini("lkdh_scenario_dirs", "folders whose *.yaml files are scenarios", type="paths", default=[])


@pytest.hookimpl(trylast=True)  # after allure-pytest has registered its file logger
def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    config.stash[RECORDS_KEY] = []
    config.stash[FACTORY_KEY] = TargetFactory(
        sim_profile=config.option.sim_profile, target_config=config.option.target_config
    )
    results = _allure_dir(config)
    installed = allure_pytest.install(results) if results is not None else None
    config.stash[ALLURE_KEY] = installed
    if installed is not None:
        config.add_cleanup(installed.restore)  # type: ignore[attr-defined]


def _allure_dir(config: pytest.Config) -> Path | None:
    value = getattr(config.option, "allure_report_dir", None)
    return Path(value) if value else None


def pytest_unconfigure(config: pytest.Config) -> None:
    factory = config.stash.get(FACTORY_KEY, None)
    if factory is not None:
        factory.close()


def _factory(config: pytest.Config) -> TargetFactory:
    """The run's one factory: a Windows VM is connected and provisioned once per pytest process."""
    return config.stash[FACTORY_KEY]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml") or not _is_scenario_file(file_path, parent.config):
        return None
    if is_step_file(file_path):  # shared steps: read through the scenarios that include them
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


def _is_scenario_file(path: Path, config: pytest.Config) -> bool:
    """Inside a folder named in `lkdh_scenario_dirs` (default: `scenarios/` at the root), or named
    on the command line."""
    folders = config.getini("lkdh_scenario_dirs") or [config.rootpath / "scenarios"]
    if any(path.resolve().is_relative_to(Path(folder).resolve()) for folder in folders):
        return True
    return any(Path(arg.split("::")[0]).resolve() == path.resolve() for arg in config.args)


class ScenarioFile(pytest.File):
    """A YAML scenario file: each scenario document yields one item per target."""

    def collect(self) -> Iterator[pytest.Item]:
        for loaded in load_scenario_file(as_run_names_it(self.path)):
            for target in TARGET_NAMES:
                row = f"-{loaded.row.id}" if loaded.row is not None else ""  # store_sizes[sim-4096]
                yield ScenarioItem.from_parent(
                    self, name=f"{loaded.scenario.name}[{target}{row}]", loaded=loaded, target=target
                )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:  # type: ignore[override]
        # A Collector's repr_failure takes no `style` (pytest's nodes.Collector): passing one on
        # turned every other collection error into an INTERNALERROR.
        if isinstance(excinfo.value, ScenarioErrors):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class ScenarioItem(pytest.Item):
    """One scenario on one target."""

    def __init__(self, *, loaded: LoadedScenario, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded
        self.target_name = target
        scenario = loaded.scenario
        self.add_marker(pytest.mark.hardware if target == "vm" else pytest.mark.sim)
        if scenario.known_defect:
            self.add_marker(pytest.mark.known_defect(scenario.known_defect.id))
        self.extra_keyword_matches.update(scenario.tags)

    def setup(self) -> None:
        # lkdh writes this item's Allure result itself (harness/report/allure_pytest.py); the label
        # lets allure-pytest's own copy be found and dropped. The parameter keeps name[sim] and
        # name[vm] apart should allure-pytest's copy be kept (the harness raised).
        allure.dynamic.label(allure_pytest.ITEM_LABEL, self.nodeid)
        allure.dynamic.parameter("target", self.target_name)
        if self.loaded.row is not None:  # each row its own Allure test case, as each target is
            allure.dynamic.parameter("row", self.loaded.row.id)
        reason = _skip_reason(self.config, self.target_name, self.loaded)
        if reason:
            results = self.config.stash.get(ALLURE_KEY, None)
            if results is not None:
                results.omit(self.nodeid, reason)
            pytest.skip(reason)

    def runtest(self) -> None:
        options = self.config.option
        output = options.lkdh_out / self.loaded.folder_name / self.target_name
        if output.exists():
            shutil.rmtree(output)
        results = self.config.stash.get(ALLURE_KEY, None)
        listeners: list[Any] = [RunLog(output), DumpMapFiles()]
        if results is not None:
            allure_result = AllureScenarioResult(self.loaded, _allure_options(self.config))
            listeners.append(allure_result)
        with _factory(self.config).target(self.target_name, output) as target:
            record = run_loaded_scenario(self.loaded, target, listeners)
        if results is not None:
            allure_result.write()
            results.claim(self.nodeid)
        self.config.stash[RECORDS_KEY].append(record)
        self.user_properties.append(("lkdh_outcome", record.outcome))
        _conclude(record)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ScenarioFailed | TargetError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.loaded.line - 1, f"scenario {self.name}"


def _skip_reason(config: pytest.Config, target: str, loaded: LoadedScenario) -> str | None:
    chosen = config.option.target
    if chosen is not None and chosen != target:
        return f"--target {chosen} selected"
    if target == "vm":
        vm_reason = _factory(config).vm_skip_reason()
        if vm_reason is not None:
            return vm_reason
    if target == "sim" and loaded.scenario.hardware_only:
        return "hardware_only scenario: the simulator cannot say anything about it"
    return None


def _conclude(record: RunRecord) -> None:
    """Turn the record's outcome into pytest's: pass, xfail (known defect reproduced) or failure."""
    if record.outcome == "passed":
        return
    if record.outcome == "skipped":
        pytest.skip(record.skip_reason or "skipped")
    if record.outcome == "xfailed":
        first = record.failed_steps[0].failures[0].splitlines()[0]
        pytest.xfail(
            f"known defect {record.known_defect} reproduced on {record.profile or record.target}: {first}"
        )
    if record.outcome == "xpassed":
        raise ScenarioFailed(
            f"{record.location}: known defect {record.known_defect} did not reproduce on "
            f"{record.profile or record.target}: the scenario passed where it was predicted to fail"
        )
    raise ScenarioFailed(record.failure_text())


def pytest_sessionfinish(session: pytest.Session) -> None:
    options = session.config.option
    records = session.config.stash.get(RECORDS_KEY, [])
    if records:
        # Under pytest-xdist each worker keeps its own file rather than racing for one.
        worker = getattr(session.config, "workerinput", {}).get("workerid")
        name = f"run-record-{worker}.json" if worker else "run-record.json"
        write_run_record(options.lkdh_out / name, records)
    allure_dir = _allure_dir(session.config)
    if allure_dir:
        targets = sorted({record.target for record in records}) or [options.target or "sim"]
        environment = {
            "targets": ",".join(targets),
            "sim_profile": _factory(session.config).sim_settings().profile,
            "target_config": str(options.target_config or "none"),
        }
        results = session.config.stash.get(ALLURE_KEY, None)
        if results is not None and results.omitted:
            reasons = sorted(set(results.omitted.values()))
            environment["not_run"] = f"{len(results.omitted)} items: " + "; ".join(reasons)
        write_allure_files(allure_dir, environment)
        write_executor(allure_dir, os.environ)


def _allure_options(config: pytest.Config) -> Any:
    results = _allure_dir(config)
    assert results is not None
    return options_from(results, config.option.defect_pack, config.option.allure_dump_limit)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A prepared target for Python tests: the one `--target` names (default: the simulator)."""
    name = request.config.option.target or "sim"
    with _factory(request.config).target(name, tmp_path / name) as machine:
        machine.prepare()
        yield machine


@pytest.fixture
def run_scenario(target: Target, tmp_path: Path) -> Callable[[str | Path], list[RunRecord]]:
    """Run scenario YAML (text or a file) on the `target` fixture; returns one record per scenario."""

    def run(source: str | Path) -> list[RunRecord]:
        path = Path(source) if isinstance(source, Path) else tmp_path / "inline-scenario.yaml"
        if not isinstance(source, Path):
            path.write_text(source, encoding="utf-8")
        return [run_loaded_scenario(loaded, target) for loaded in load_scenario_file(path)]

    return run
