"""`lkdh`: run scenarios, check them, print their JSON Schema, inspect a dump. Thin: every command
calls one function of the package and maps its result to an exit code.

Exit codes: 0 success; 1 a scenario failed (or a dump is unreadable); 2 bad input (scenario or
usage errors, as argparse uses 2); 3 the target itself failed (infrastructure).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.dump import DumpFormatError, KernelDump, UserModeMinidump, describe, open_dump, summary
from harness.dump.dmf import decode_dmf, describe_dmf
from harness.record import RunRecord
from harness.report.allure_files import write_allure_files, write_executor
from harness.report.allure_labels import as_run_names_it
from harness.report.allure_results import AllureScenarioResult, options_from
from harness.report.dump_map import DumpMapFiles
from harness.report.journal import JournalError, JournalState, RunJournal, read_journal, record_from_json
from harness.report.progress import LiveProgress
from harness.report.run_log import RunLog
from harness.report.run_record import write_run_record
from harness.report.table import result_table, totals_line
from harness.runner import RunListener, run_scenario
from harness.scenario import (
    LoadedScenario,
    ScenarioErrors,
    check_paths,
    format_check_report,
    load_scenarios,
    scenario_json_schema,
)
from harness.target.base import TargetError
from harness.target.sim import DEFAULT_PROFILE, PROFILES
from harness.targets import TARGET_NAMES, TargetFactory

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_TARGET = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    return args.handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lkdh", description="DMF live-dump verification harness")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run scenarios and print a result table")
    run.add_argument("paths", nargs="+", type=Path, help="scenario files or folders")
    run.add_argument("--target", choices=TARGET_NAMES, default="sim")
    run.add_argument("--target-config", type=Path, default=None)
    run.add_argument(
        "--sim-profile",
        choices=sorted(PROFILES),
        default=None,
        help=f"simulated DMF behaviour (default: the kind: sim config's, else {DEFAULT_PROFILE})",
    )
    run.add_argument("--out", type=Path, default=Path("lkdh-out"), help="where dumps and the run record go")
    run.add_argument("-v", "--verbose", action="store_true", help="print each step as it finishes")
    allure = run.add_argument_group("Allure results (the same files `pytest --alluredir` writes)")
    allure.add_argument("--alluredir", type=Path, default=None, help="write Allure results to this folder")
    allure.add_argument(
        "--clean-alluredir", action="store_true", help="empty the results folder first (as allure-pytest's)"
    )
    allure.add_argument(
        "--defect-pack",
        type=Path,
        default=None,
        help="folder of known-defect reports (<id>.md) that links point to (or LKDH_DEFECT_PACK)",
    )
    allure.add_argument(
        "--allure-dump-limit",
        type=int,
        default=None,
        metavar="BYTES",
        help="attach dump files up to this size (default 8 MiB); larger ones are named, not attached",
    )
    journal = run.add_mutually_exclusive_group()
    journal.add_argument(
        "--journal", type=Path, default=None, help="append each step and dump to FILE, fsynced (crash-safe)"
    )
    journal.add_argument(
        "--resume", type=Path, default=None, metavar="FILE", help="continue the run journalled in FILE"
    )
    run.set_defaults(handler=_run)

    check = commands.add_parser("check", help="validate scenario files without running them")
    check.add_argument("paths", nargs="+", type=Path)
    check.set_defaults(handler=_check)

    schema = commands.add_parser("schema", help="print the JSON Schema of a scenario document")
    schema.set_defaults(handler=_schema)

    target = commands.add_parser("target", help="work with a target config")
    target_commands = target.add_subparsers(dest="target_command", required=True)
    target_check = target_commands.add_parser(
        "check", help="connect to the machine a config names and report each stage (changes nothing)"
    )
    target_check.add_argument("config", type=Path)
    target_check.set_defaults(handler=_target_check)

    inspect = commands.add_parser("inspect", help="summarise a kernel or user-mode dump file")
    inspect.add_argument("file", type=Path)
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.add_argument("--rows", type=int, default=20, help="rows shown per table in text output")
    inspect.add_argument(
        "--dmf",
        action="store_true",
        help="decode the DMF data (collection via P2, modules, configs, contexts)",
    )
    inspect.set_defaults(handler=_inspect)

    defects = commands.add_parser("defects", help="write one upstream Markdown report per known DMF defect")
    defects.add_argument("paths", nargs="*", type=Path, help="scenario files or folders (default: scenarios)")
    defects.add_argument("--out", type=Path, required=True, help="folder for <defect id>.md and README.md")
    defects.add_argument("--run-record", type=Path, default=None, help="a run record of a VM run to quote")
    defects.add_argument("--facts", type=Path, default=None, help="DMF_FACTS.md (default: ../shared)")
    defects.add_argument("--doc", type=Path, default=None, help="the module doc (default: ../shared)")
    defects.set_defaults(handler=_defects)

    coverage = commands.add_parser(
        "coverage", help="API x IRQL x Verifier x outcome and the DMF facts covered"
    )
    coverage.add_argument(
        "paths", nargs="*", type=Path, help="scenario files or folders (default: scenarios)"
    )
    coverage.add_argument(
        "--out", type=Path, default=None, help="also write coverage.json and coverage.html here"
    )
    coverage.add_argument("--facts", type=Path, default=None, help="DMF_FACTS.md (default: ../shared)")
    coverage.set_defaults(handler=_coverage)

    explore = commands.add_parser(
        "explore", help="generate call sequences, check them against a model of the documented contract"
    )
    explore.add_argument("--target", choices=TARGET_NAMES, default="sim", help="sim, or vm (--target-config)")
    explore.add_argument("--target-config", "--config", type=Path, default=None, help="the VM (or kind: sim)")
    explore.add_argument("--seed", type=int, default=0)
    explore.add_argument("--steps", type=int, default=6, help="most calls in one sequence")
    explore.add_argument("--examples", type=int, default=40, help="sequences tried per search")
    explore.add_argument("--findings", type=int, default=6, help="stop after this many disagreements")
    explore.add_argument(
        "--model",
        choices=["bfac434", "contract"],
        default="contract",
        help="what the target is checked against",
    )
    explore.add_argument("--sim-profile", choices=sorted(PROFILES), default=None)
    explore.add_argument("--out", type=Path, default=Path("lkdh-out") / "explore", help="where findings go")
    explore.set_defaults(handler=_explore)
    return parser


def _run(args: argparse.Namespace) -> int:
    try:
        scenarios = load_scenarios([as_run_names_it(path) for path in args.paths])
    except ScenarioErrors as errors:
        print(errors, file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.alluredir is not None and args.clean_alluredir and args.alluredir.is_dir():
        shutil.rmtree(args.alluredir)
    records = []
    try:
        resumed = read_journal(args.resume) if args.resume else JournalState()
    except JournalError as error:
        print(f"lkdh: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    done = resumed.finished
    journal_path = args.journal or args.resume
    journal = [RunJournal(journal_path)] if journal_path else []
    factory = TargetFactory(sim_profile=args.sim_profile, target_config=args.target_config)
    # never collect a dump twice: what the journal saw collected is known by name, hash and copy
    factory.collected_before, factory.kept_copies = resumed.collected, resumed.kept_copies
    try:
        with LiveProgress(len(scenarios), verbose=args.verbose) as progress:
            for loaded in scenarios:
                if loaded.run_name in done:  # finished before the cut: its result stands
                    records.append(record_from_json(done[loaded.run_name]))
                    progress.scenario_kept(records[-1])
                    continue
                records.append(_run_one(loaded, factory, progress, args, journal))
    except TargetError as error:
        print(f"lkdh: {error}", file=sys.stderr)
        return EXIT_TARGET
    finally:
        factory.close()
        if args.alluredir is not None:
            _write_allure_environment(args, factory, records)
        for open_journal in journal:
            open_journal.close()
    print(result_table(records))
    print()
    for record in records:
        if record.outcome in ("failed", "xpassed", "error"):
            print(f"--- {record.scenario} ({record.outcome})\n{record.failure_text()}\n")
    print(totals_line(records))
    print(f"run record: {write_run_record(args.out / 'run-record.json', records)}")
    if args.alluredir is not None:
        print(f"allure results: {args.alluredir} (allure generate {args.alluredir} -o allure-report)")
    if any(record.outcome == "error" for record in records):
        return EXIT_TARGET
    return EXIT_FAILED if any(record.outcome in ("failed", "xpassed") for record in records) else EXIT_OK


def _run_one(
    loaded: LoadedScenario,
    factory: TargetFactory,
    progress: LiveProgress,
    args: argparse.Namespace,
    journal: Sequence[RunListener] = (),
) -> RunRecord:
    """One scenario with every listener `lkdh run` has: progress, run log, dump maps, Allure."""
    output = args.out / loaded.folder_name / args.target
    listeners: list[RunListener] = [progress, RunLog(output), DumpMapFiles(), *journal]
    allure = None
    if args.alluredir is not None:
        allure = AllureScenarioResult(
            loaded, options_from(args.alluredir, args.defect_pack, args.allure_dump_limit)
        )
        listeners.append(allure)
    progress.planned_steps = len(loaded.scenario.steps)
    with factory.target(args.target, output) as target:
        record = run_scenario(loaded, target, listeners)
    if allure is not None:
        allure.write()
    return record


def _write_allure_environment(
    args: argparse.Namespace, factory: TargetFactory, records: Sequence[RunRecord]
) -> None:
    """environment.properties, categories.json and executor.json, as the pytest plugin writes them."""
    targets = sorted({record.target for record in records}) or [args.target]
    try:
        profile = factory.sim_settings().profile
    except TargetError:
        profile = "unknown"
    environment = {
        "targets": ",".join(targets),
        "sim_profile": profile,
        "target_config": str(args.target_config or "none"),
    }
    write_allure_files(args.alluredir, environment)
    write_executor(args.alluredir, os.environ)


def _check(args: argparse.Namespace) -> int:
    report = check_paths(args.paths)
    print(format_check_report(report))
    return EXIT_BAD_INPUT if report.errors else EXIT_OK


def _target_check(args: argparse.Namespace) -> int:
    """Each connection stage with its verdict; exit 0 when all passed, 3 when one failed, 2 for a
    config that does not validate."""
    from harness.target.pool_config import PoolConfig
    from harness.target.windows.stage_check import check_target, format_stage_report
    from harness.target_config import load_any_target_config, load_target_config

    try:
        config = load_any_target_config(args.config)
        if not isinstance(config, PoolConfig) or config.target_name != "vm":
            config = load_target_config(args.config)  # a single VM (its errors if it is not one)
    except ScenarioErrors as errors:
        print(errors, file=sys.stderr)
        return EXIT_BAD_INPUT
    machines = config.pool if isinstance(config, PoolConfig) else [config]
    ok = True
    for machine in machines:  # a pool: every VM in turn, each under its name
        if len(machines) > 1:
            print(f"== {machine.name}")
        results = check_target(machine)
        print(format_stage_report(results))
        ok = ok and all(result.ok for result in results)
    return EXIT_OK if ok else EXIT_TARGET


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(scenario_json_schema(), indent=2))
    return EXIT_OK


def _inspect(args: argparse.Namespace) -> int:
    try:
        dump = open_dump(args.file)
    except DumpFormatError as error:
        print(f"lkdh inspect: {error}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:
        print(f"lkdh inspect: cannot open {args.file}: {error.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.dmf:
            return _inspect_dmf(dump, as_json=args.json)
        if args.json:
            print(json.dumps(summary(dump), indent=2, sort_keys=True))
        else:
            print(describe(dump, max_rows=args.rows))
    finally:
        dump.close()
    return EXIT_OK


def _inspect_dmf(dump: KernelDump | UserModeMinidump, *, as_json: bool) -> int:
    """`lkdh inspect --dmf`: what DMF's debugger extension shows (F32, F35); 0 also without DMF data."""
    if not isinstance(dump, KernelDump):
        print(f"lkdh inspect: {dump.path.name} is a user-mode minidump: no DMF data", file=sys.stderr)
        return EXIT_FAILED
    data = decode_dmf(dump)
    print(json.dumps(data.as_dict(), indent=2, sort_keys=True) if as_json else describe_dmf(data))
    return EXIT_OK


def _defects(args: argparse.Namespace) -> int:
    """`lkdh defects`: 0 when every report was written, 2 for bad input (scenarios, files)."""
    from harness.report.defect_pack import DefectPack, RunRecordError, read_run_record
    from harness.report.defect_sources import DocumentationError, default_doc_path
    from harness.report.dmf_facts import load_fact_book

    doc_path = args.doc or default_doc_path()
    try:
        scenarios = load_scenarios(args.paths or [Path("scenarios")])
        facts = load_fact_book(args.facts)
        doc_text = doc_path.read_text(encoding="utf-8")
        run_record = read_run_record(args.run_record) if args.run_record else None
    except ScenarioErrors as errors:
        print(errors, file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"lkdh defects: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RunRecordError as error:
        print(f"lkdh defects: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    pack = DefectPack(scenarios, facts, doc_text, doc_path.name, run_record, str(args.run_record or ""))
    try:
        written = pack.write(args.out)
    except DocumentationError as error:
        print(f"lkdh defects: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {len(written) - 1} defect reports and {written[-1]}")
    return EXIT_OK


def _coverage(args: argparse.Namespace) -> int:
    """`lkdh coverage`: 0 when nothing is uncovered without a reason, 1 otherwise, 2 for bad input."""
    from harness.report.coverage import compute_coverage, format_coverage
    from harness.report.coverage_html import write_coverage
    from harness.report.dmf_facts import load_fact_book

    try:
        report = compute_coverage(
            load_scenarios(args.paths or [Path("scenarios")]), load_fact_book(args.facts)
        )
    except ScenarioErrors as errors:
        print(errors, file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"lkdh coverage: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_coverage(report))
    if args.out is not None:
        json_path, html_path = write_coverage(report, args.out)
        print(f"wrote {json_path} and {html_path}")
    return EXIT_OK if report.complete else EXIT_FAILED


def _explore(args: argparse.Namespace) -> int:
    """`lkdh explore`: 0 when the target agreed with the model throughout, 1 with findings written."""
    try:
        from harness.explore.command import explore
    except ImportError as error:  # hypothesis is the `explore` extra
        print(f"lkdh explore needs hypothesis (pip install 'lkdh[explore]'): {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return explore(args)


if __name__ == "__main__":
    sys.exit(main())
