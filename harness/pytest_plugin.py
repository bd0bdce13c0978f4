"""pytest plugin: every scenario in a YAML file becomes one item per target.

`test_name[sim]` runs on the simulated machine; `test_name[vm]` is marked `hardware` and runs when
`--target-config` names a Windows VM, otherwise it is skipped with that reason. Thin by design
(pytest's own non-Python example): the runner does the work, `repr_failure` shows its evidence.

Scaling out (README, "Scaling out"): with a pool config each xdist worker leases one machine through
the session fixture `lkdh_lease` (harness/pytest_pool.py), a machine that fails its health check is
taken out and the scenario retried on another; `--lkdh-shard I/N` keeps one CI runner's share of
the items (harness/sharding.py); `--lkdh-journal` / `--lkdh-resume` make a run survive a kill as
`lkdh run --journal` / `--resume` do (harness/report/journal.py).
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

from harness import pytest_hooks
from harness.pytest_journal import RESUMED_KEY, open_journal, run_journal
from harness.pytest_pool import LEASE_DIR_KEY, PoolSeat, lease_dir, remember_for_controller, report_lines
from harness.record import RunRecord
from harness.report import allure_pytest
from harness.report.allure_files import write_allure_files, write_executor
from harness.report.allure_labels import as_run_names_it
from harness.report.allure_results import AllureScenarioResult, options_from
from harness.report.dump_map import DumpMapFiles
from harness.report.journal import record_from_json
from harness.report.run_log import RunLog
from harness.report.run_record import write_run_record
from harness.runner import run_scenario as run_loaded_scenario
from harness.scenario import LoadedScenario, ScenarioErrors, load_scenario_file
from harness.scenario.expand import is_step_file
from harness.sharding import Shard, shard_option
from harness.target.base import Target, TargetError
from harness.target.sim import DEFAULT_PROFILE, PROFILES
from harness.target.windows.config import TargetConfig
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
    group.addoption(
        "--lkdh-lease-dir",
        type=Path,
        default=None,
        help="folder of the pool's lease locks (default: shared by this run's xdist workers only)",
    )
    group.addoption(
        "--lkdh-lease-timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long a worker waits for a pool machine to come free (default 3600)",
    )
    group.addoption(
        "--lkdh-shard",
        type=shard_option,
        default=None,
        metavar="I/N",
        help="run only shard I of N (a hash of each item's node id; the N shards run every item once)",
    )
    group.addoption(
        "--lkdh-journal",
        type=Path,
        default=None,
        metavar="FILE",
        help="append each step and dump to FILE, fsynced (crash-safe; resume with --lkdh-resume)",
    )
    group.addoption(
        "--lkdh-resume",
        type=Path,
        default=None,
        metavar="FILE",
        help="continue the run journalled in FILE: finished items keep their result, the cut one reruns",
    )
    parser.addini("lkdh_scenario_dirs", "folders whose *.yaml files are scenarios", type="paths", default=[])


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(pytest_hooks)


@pytest.hookimpl(trylast=True)  # after allure-pytest has registered its file logger
def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    config.stash[RECORDS_KEY] = []

    def make_vm(target_config: TargetConfig, output_dir: Path) -> Target:
        built = config.hook.pytest_lkdh_make_vm(target_config=target_config, output_dir=output_dir)
        return built if built is not None else _default_vm(target_config, output_dir)

    factory = TargetFactory(
        sim_profile=config.option.sim_profile,
        target_config=config.option.target_config,
        machine_builder=make_vm,
    )
    config.stash[FACTORY_KEY] = factory
    open_journal(config, factory)
    results = _allure_dir(config)
    installed = allure_pytest.install(results) if results is not None else None
    config.stash[ALLURE_KEY] = installed
    if installed is not None:
        config.add_cleanup(installed.restore)  # type: ignore[attr-defined]


def _default_vm(target_config: TargetConfig, output_dir: Path) -> Target:
    from harness.target.windows.machine import WindowsMachine
    from harness.target.windows.stage_check import ConfiguredSessions

    return WindowsMachine(output_dir, target_config, ConfiguredSessions())


def _allure_dir(config: pytest.Config) -> Path | None:
    value = getattr(config.option, "allure_report_dir", None)
    return Path(value) if value else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard: Shard | None = config.option.lkdh_shard
    if shard is None:
        return
    kept = [item for item in items if shard.holds(item.nodeid)]
    dropped = [item for item in items if not shard.holds(item.nodeid)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept


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
        # Fixtures for a non-Python item, as pytest's own DoctestItem gets them (_pytest/doctest.py):
        # the pool's session fixture, and any autouse fixture of the project.
        self.add_marker(pytest.mark.usefixtures("lkdh_lease"))
        self.obj = None
        self._fixtureinfo = self.session._fixturemanager.getfixtureinfo(node=self, func=None, cls=None)
        self.fixturenames = self._fixtureinfo.names_closure
        self.funcargs: dict[str, object] = {}
        from _pytest.fixtures import TopRequest

        self._request = TopRequest(self, _ispytest=True)  # type: ignore[arg-type]

    def setup(self) -> None:
        self._request._fillfixtures()
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
        results = self.config.stash.get(ALLURE_KEY, None)
        finished = self.config.stash[RESUMED_KEY].finished.get(self.nodeid)
        if finished is not None:  # finished before the kill: its result (and Allure file) stands
            record = record_from_json(finished)
            if results is not None:
                results.claim(self.nodeid)
        else:
            record = self._run_on_a_healthy_machine()
        self.config.stash[RECORDS_KEY].append(record)
        self.user_properties.append(("lkdh_outcome", record.outcome))
        _conclude(record)

    def _run_on_a_healthy_machine(self) -> RunRecord:
        """Run once; with a pool, a target error whose machine then fails its health check takes
        that machine out and runs the scenario again on the next one leased. Only the last
        attempt's Allure result is written: the report shows the item once."""
        seat: PoolSeat | None = self._request.getfixturevalue("lkdh_lease")
        if seat is not None and seat.target_name != self.target_name:
            seat = None
        while True:
            member = seat.member() if seat is not None else None
            record, allure_result = self._run_once(member)
            if seat is None or record.outcome != "error":
                break
            why = seat.still_healthy()
            if why is None:  # the machine is fine: the error is the scenario's or the harness's
                break
            seat.take_out(f"{self.nodeid} ended in a target error ({record.error}); then {why}")
        results = self.config.stash.get(ALLURE_KEY, None)
        if results is not None and allure_result is not None:
            allure_result.write()
            results.claim(self.nodeid)
        return record

    def _run_once(self, member: str | None) -> tuple[RunRecord, AllureScenarioResult | None]:
        options = self.config.option
        output = options.lkdh_out / self.loaded.folder_name / self.target_name
        if output.exists():
            shutil.rmtree(output)
        listeners: list[Any] = [RunLog(output), DumpMapFiles()]
        journal = run_journal(self.config)
        if journal is not None:
            listeners.append(journal.keyed(self.nodeid))
        allure_result = None
        if self.config.stash.get(ALLURE_KEY, None) is not None:
            allure_result = AllureScenarioResult(self.loaded, _allure_options(self.config))
            listeners.append(allure_result)
        if member is not None:
            self.user_properties.append(("lkdh_machine", member))
        with _factory(self.config).target(self.target_name, output, member) as target:
            record = run_loaded_scenario(self.loaded, target, listeners)
        return record, allure_result

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


@pytest.fixture(scope="session")
def lkdh_lease(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PoolSeat | None]:
    """This worker's seat in the VM pool (None without a pool config): one machine per xdist
    worker, leased at its first scenario and held until the worker ends; the lock dies with the
    worker (harness/pool.py)."""
    config = request.config
    factory = _factory(config)
    if factory.pool is None:
        yield None
        return
    folder = lease_dir(config, tmp_path_factory)
    config.stash[LEASE_DIR_KEY] = folder
    remember_for_controller(config, folder)
    seat = PoolSeat(factory, folder, config.option.lkdh_lease_timeout)
    yield seat
    seat.release()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist's controller: a worker ended; keep where its pool leases were, for the summary."""
    folder = getattr(node, "workeroutput", {}).get("lkdh_lease_dir")
    if folder:
        node.config.stash[LEASE_DIR_KEY] = Path(folder)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    folder = config.stash.get(LEASE_DIR_KEY, None)
    if folder is None:
        return
    terminalreporter.section("lkdh pool")
    for line in report_lines(folder):
        terminalreporter.write_line(line)


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
        folder = session.config.stash.get(LEASE_DIR_KEY, None)
        if folder is not None:
            environment["pool"] = " | ".join(report_lines(folder)) or "no lease taken"
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
