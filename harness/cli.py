"""`lkdh`: run scenarios, check them, print their JSON Schema, inspect a dump. Thin: every command
calls one function of the package and maps its result to an exit code.

Exit codes: 0 success; 1 a scenario failed (or a dump is unreadable); 2 bad input (scenario or
usage errors, as argparse uses 2); 3 the target itself failed (infrastructure).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.dump import DumpFormatError, describe, open_dump, summary
from harness.report.journal import JournalError, RunJournal, read_journal, record_from_json
from harness.report.run_log import RunLog
from harness.report.run_record import write_run_record
from harness.report.table import TerminalProgress, result_table, totals_line
from harness.runner import run_scenario
from harness.scenario import (
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
    inspect.set_defaults(handler=_inspect)
    return parser


def _run(args: argparse.Namespace) -> int:
    try:
        scenarios = load_scenarios(args.paths)
    except ScenarioErrors as errors:
        print(errors, file=sys.stderr)
        return EXIT_BAD_INPUT
    records = []
    try:
        done = read_journal(args.resume).finished if args.resume else {}
    except JournalError as error:
        print(f"lkdh: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    journal_path = args.journal or args.resume
    journal = [RunJournal(journal_path)] if journal_path else []
    factory = TargetFactory(sim_profile=args.sim_profile, target_config=args.target_config)
    try:
        for loaded in scenarios:
            if loaded.scenario.name in done:  # finished before the cut: its result stands
                records.append(record_from_json(done[loaded.scenario.name]))
                continue
            output = args.out / loaded.scenario.name / args.target
            with factory.target(args.target, output) as target:
                listeners = [TerminalProgress(verbose=args.verbose), RunLog(output), *journal]
                records.append(run_scenario(loaded, target, listeners))
    except TargetError as error:
        print(f"lkdh: {error}", file=sys.stderr)
        return EXIT_TARGET
    finally:
        factory.close()
        for open_journal in journal:
            open_journal.close()
    print(result_table(records))
    print()
    for record in records:
        if record.outcome in ("failed", "xpassed", "error"):
            print(f"--- {record.scenario} ({record.outcome})\n{record.failure_text()}\n")
    print(totals_line(records))
    print(f"run record: {write_run_record(args.out / 'run-record.json', records)}")
    if any(record.outcome == "error" for record in records):
        return EXIT_TARGET
    return EXIT_FAILED if any(record.outcome in ("failed", "xpassed") for record in records) else EXIT_OK


def _check(args: argparse.Namespace) -> int:
    report = check_paths(args.paths)
    print(format_check_report(report))
    return EXIT_BAD_INPUT if report.errors else EXIT_OK


def _target_check(args: argparse.Namespace) -> int:
    """Each connection stage with its verdict; exit 0 when all passed, 3 when one failed, 2 for a
    config that does not validate."""
    from harness.target.windows.stage_check import check_target, format_stage_report
    from harness.target_config import load_target_config

    try:
        config = load_target_config(args.config)
    except ScenarioErrors as errors:
        print(errors, file=sys.stderr)
        return EXIT_BAD_INPUT
    results = check_target(config)
    print(format_stage_report(results))
    return EXIT_OK if all(result.ok for result in results) else EXIT_TARGET


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
        if args.json:
            print(json.dumps(summary(dump), indent=2, sort_keys=True))
        else:
            print(describe(dump, max_rows=args.rows))
    finally:
        dump.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
