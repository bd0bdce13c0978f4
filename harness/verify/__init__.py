"""Expectations: step status, bugcheck, and dump contents."""

from harness.verify.dump_contents import BufferView, DumpContext, check_dump
from harness.verify.mismatch import Mismatch
from harness.verify.outcome import (
    check_crash_dump,
    check_dump_count,
    check_dump_folder,
    check_outcome,
    check_value,
    describe_crash,
    dump_expected,
)

__all__ = [
    "BufferView",
    "DumpContext",
    "Mismatch",
    "check_crash_dump",
    "check_dump",
    "check_dump_count",
    "check_dump_folder",
    "check_outcome",
    "check_value",
    "describe_crash",
    "dump_expected",
]
