"""Names of the bugcheck codes this harness meets, in one place.

The codes are those DMF_LiveKernelDump scenarios expect (reference/DMF_FACTS.md F13, F14: 0xD1, 0xA,
0x7E, 0x3B, 0xC4, 0x10D), the live-dump code, the two manual-crash codes, and the ``_M`` variant seen
in the real x64 fixture. Names are Microsoft's (Bug Check Code Reference).
"""

from __future__ import annotations

BUGCHECK_NAMES: dict[int, str] = {
    0x0A: "IRQL_NOT_LESS_OR_EQUAL",
    0x3B: "SYSTEM_SERVICE_EXCEPTION",
    0x7E: "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED",
    0xC4: "DRIVER_VERIFIER_DETECTED_VIOLATION",
    0xD1: "DRIVER_IRQL_NOT_LESS_OR_EQUAL",
    0xE2: "MANUALLY_INITIATED_CRASH",
    0x10D: "WDF_VIOLATION",
    0x161: "LIVE_SYSTEM_DUMP",
    0x1C8: "MANUALLY_INITIATED_POWER_BUTTON_HOLD",
    0x1000007E: "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED_M",
}


def bugcheck_name(code: int | None) -> str | None:
    """The symbolic name of a bugcheck code, or None when it is not in the table (or unset)."""
    if code is None:
        return None
    return BUGCHECK_NAMES.get(code)
