"""Expectations on what an operation returned: its status, a bugcheck, whether a dump appeared."""

from __future__ import annotations

from harness.dump import DumpFormatError, KernelDump, describe, open_dump
from harness.scenario.model import CountRange, Expect
from harness.target.ops import CollectedDump, Crash, OpResult
from harness.target.status import STATUS_SUCCESS, is_success, status_name
from harness.verify.dump_contents import DumpContext, check_crash_dump_contents
from harness.verify.mismatch import Mismatch


def expected_status(expect: Expect) -> int:
    """The status a step must return: the stated one, STATUS_SUCCESS when none is stated."""
    return STATUS_SUCCESS if expect.status is None else expect.status


def dump_expected(expect: Expect) -> bool:
    """Whether a create step must leave a new live dump: stated, or exactly when it succeeds (F01:
    a failing call writes nothing)."""
    if expect.dump_written is not None:
        return expect.dump_written
    return is_success(expected_status(expect))


def check_outcome(expect: Expect, result: OpResult) -> list[Mismatch]:
    """Compare the step's status or crash with what the scenario expects."""
    if expect.bugcheck is not None:
        return _check_expected_crash(expect.bugcheck, result)
    if result.crash is not None:
        return [_unexpected_crash(result.crash)]
    want = expected_status(expect)
    if result.status != want:
        detail = f" ({result.detail})" if result.detail else ""
        return [
            Mismatch(
                ("expect", "status"),
                "the operation returned a different status" + detail,
                status_name(want),
                status_name(result.status),
            )
        ]
    return []


def check_dump_count(expect: Expect, new_live_dumps: int) -> list[Mismatch]:
    """A create step writes exactly one live dump when it should, and none otherwise."""
    want = 1 if dump_expected(expect) else 0
    if new_live_dumps == want:
        return []
    return [
        Mismatch(
            ("expect", "dump_written"),
            "the number of new live dumps in LiveKernelReports is wrong",
            str(want),
            str(new_live_dumps),
        )
    ]


def dump_folder(remote_name: str) -> str:
    """The folder of a collected dump, relative to %SystemRoot%, parts joined with `/`."""
    parts = [part for part in remote_name.replace("\\", "/").split("/") if part]
    return "/".join(parts[:-1])


def check_dump_folder(expect: Expect, collected: CollectedDump) -> list[Mismatch]:
    """`expect.dump.folder`: where the live dump landed under %SystemRoot% (F09:
    `LiveKernelReports/<ReportType>`), the one place its ReportType shows (F05). Windows compares
    paths without regard to case, and so does this."""
    want = expect.dump.folder if expect.dump is not None else None
    if want is None:
        return []
    found = dump_folder(collected.remote_name)
    if found.casefold() == dump_folder(want + "/file").casefold():
        return []
    return [
        Mismatch(
            ("expect", "dump", "folder"),
            f"the live dump landed in another folder ({collected.remote_name})",
            want,
            found or "(the remote name has no folder)",
        )
    ]


def _check_expected_crash(codes: list[int], result: OpResult) -> list[Mismatch]:
    want = " or ".join(f"0x{code:X}" for code in codes)
    if result.crash is None:
        return [
            Mismatch(
                ("expect", "bugcheck"),
                "the machine was expected to bugcheck but kept running",
                f"bugcheck {want}",
                f"no crash; status {status_name(result.status)}",
            )
        ]
    if result.crash.bugcheck_code not in codes:
        return [
            Mismatch(
                ("expect", "bugcheck"),
                "the machine bugchecked with another code",
                want,
                describe_crash(result.crash),
            )
        ]
    return []


def _unexpected_crash(crash: Crash) -> Mismatch:
    return Mismatch(("expect",), "the machine bugchecked unexpectedly", "no bugcheck", describe_crash(crash))


def describe_crash(crash: Crash) -> str:
    """'0xD1 (0x28, 0x2, 0x1, 0x...) - reason [dump: path]'."""
    parameters = ", ".join(f"0x{value:X}" for value in crash.parameters)
    where = f" [crash dump: {crash.dump_path.name}]" if crash.dump_path else ""
    return f"bugcheck 0x{crash.bugcheck_code:X} ({parameters}): {crash.reason}{where}"


def check_value(expect: Expect, value: int | None) -> list[Mismatch]:
    """A query's answer against `expect.value` (a number or a min/max range)."""
    if expect.value is None:
        return []
    if value is None:
        return [Mismatch(("expect", "value"), "the target returned no value for the query")]
    want = expect.value
    if isinstance(want, CountRange):
        high = "" if want.max is None else f"{want.max}"
        inside = value >= want.min and (want.max is None or value <= want.max)
        if inside:
            return []
        return [Mismatch(("expect", "value"), "the value is out of range", f"{want.min}..{high}", str(value))]
    if value == want:
        return []
    return [Mismatch(("expect", "value"), "the query returned a different value", str(want), str(value))]


def check_crash_dump(
    expect: Expect, crash: Crash, crash_dumps: list[CollectedDump], context: DumpContext | None = None
) -> list[Mismatch]:
    """After a bugcheck the machine must have written a crash dump that shows it: read the file,
    compare its code and parameters with the crash the target reported and with
    `expect.bugcheck_parameters`. Every crash dump of the bugcheck is checked: the minidump and,
    on a machine set up for kernel memory dumps, MEMORY.DMP (read by `open_dump` as a memory dump).
    `expect.crash_dump` is checked on the first triage crash dump (the minidump, whose data blocks
    hold what the bugcheck callbacks added, F22). The summary of each goes into the failure text so
    an unexpected crash is explained by its own evidence."""
    path = ("expect", "bugcheck") if expect.bugcheck is not None else ("expect",)
    if not crash_dumps:
        return [Mismatch(path, "the machine bugchecked but no crash dump was collected", "a Minidump file")]
    mismatches: list[Mismatch] = []
    summaries = []
    contents: list[Mismatch] | None = None
    for dump_file in crash_dumps:
        found_here, summary, contents_here = _check_one_crash_dump(
            expect, crash, dump_file, path, context, check_contents=contents is None
        )
        mismatches += found_here
        summaries.append(summary)
        if contents is None:
            contents = contents_here
    if expect.crash_dump is not None:
        mismatches += contents if contents is not None else _no_triage_crash_dump(crash_dumps)
    if expect.bugcheck is None and mismatches == []:
        return [
            Mismatch(
                ("expect",), "crash dump of the unexpected bugcheck", "no bugcheck", "\n".join(summaries)
            )
        ]
    return mismatches


def _check_one_crash_dump(
    expect: Expect,
    crash: Crash,
    dump_file: CollectedDump,
    path: tuple[str, ...],
    context: DumpContext | None,
    *,
    check_contents: bool,
) -> tuple[list[Mismatch], str, list[Mismatch] | None]:
    """The code and parameters of one crash dump; and, when `check_contents` and it is a triage
    dump, `expect.crash_dump` on it (None: not checked here)."""
    try:
        dump = open_dump(dump_file.path)
    except DumpFormatError as error:
        return [Mismatch(path, f"the crash dump is malformed: {error}")], "", None
    with dump:
        header = dump.header
        found = (header.bugcheck_code, *header.bugcheck_parameters)
        summary = describe(dump)
        contents = None
        if check_contents and expect.crash_dump is not None and type(dump) is KernelDump:
            contents = (
                check_crash_dump_contents(expect.crash_dump, dump, context)
                if context is not None
                else [
                    Mismatch(
                        ("expect", "crash_dump"),
                        "no buffer addresses of the crashed boot to check the crash dump against",
                    )
                ]
            )
    mismatches = []
    reported = (crash.bugcheck_code, *crash.parameters)
    if found != reported:
        mismatches.append(
            Mismatch(
                path,
                "the crash dump disagrees with the bugcheck the target reported",
                _codes(reported),
                _codes(found),
            )
        )
    for index, wanted in enumerate(expect.bugcheck_parameters or []):
        if wanted != "any" and found[index + 1] != wanted:
            mismatches.append(
                Mismatch(
                    ("expect", "bugcheck_parameters", index),
                    f"P{index + 1} of the crash dump differs ({dump_file.path.name})",
                    f"0x{wanted:X}",
                    f"0x{found[index + 1]:X}\n{summary}",
                )
            )
    return mismatches, summary, contents


def _no_triage_crash_dump(crash_dumps: list[CollectedDump]) -> list[Mismatch]:
    """`expect.crash_dump` is never skipped silently: without a triage crash dump it fails."""
    names = ", ".join(dump.path.name for dump in crash_dumps)
    return [
        Mismatch(
            ("expect", "crash_dump"),
            f"no triage crash dump among {names}: its data blocks cannot be checked",
            "a triage dump",
        )
    ]


def _codes(values: tuple[int, ...]) -> str:
    code, *parameters = values
    return f"0x{code:X} ({', '.join(f'0x{p:X}' for p in parameters)})"
