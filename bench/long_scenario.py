"""A 300-step scenario that exercises the simulator's expensive paths in one run.

Forced evictions (far more stores than the 256-entry ring holds, F10), a hit of the one-report-per-
minute rule (F06), and a Verifier crash with a reboot in the middle (F28), after which the driver
starts over with new addresses. Generated rather than checked in: the point is its size, and the
generator states the structure more readably than 300 lines of YAML would.
"""

from __future__ import annotations

STEP_COUNT = 300
BUFFERS = 8


def long_scenario_yaml() -> str:
    """The scenario as YAML text; exactly STEP_COUNT steps."""
    steps: list[str] = []
    steps += [f"  - alloc: {{name: b{i}, size: {64 + 8 * i}}}" for i in range(BUFFERS)]
    steps += [f"  - store: b{i % BUFFERS}\n    repeat: 3" for i in range(100)]  # 300 adds: evictions
    steps += [
        "  - create: {bugcheck_code: 0x1C0, parameter: 1}\n"
        "    expect:\n      dump:\n        block_count: 256\n        contains: [b7]",
        "  - create: {bugcheck_code: 0x1C0, parameter: 2}\n    expect: STATUS_OBJECT_NAME_COLLISION",
        "  - wait: 61",
        "  - store: b0\n    irql: DISPATCH_LEVEL\n    expect: {bugcheck: [0xC4, 0x10D, 0xA, 0xD1]}",
    ]
    steps += [f"  - alloc: {{name: b{i}, size: {64 + 8 * i}}}" for i in range(BUFFERS)]
    remaining = STEP_COUNT - len(steps) - 1
    steps += [f"  - store: b{i % BUFFERS}" for i in range(remaining)]
    steps.append(
        "  - create: {bugcheck_code: 0x1C1, parameter: 3}\n"
        "    expect:\n      dump:\n        parameters: [3, any, 0, 0]\n        contains: [b0, b7]"
    )
    assert len(steps) == STEP_COUNT
    header = (
        "name: long_run_evictions_collision_crash\n"
        "description: 300 steps - ring evictions, the 60-second rule, a Verifier crash and reboot.\n"
        "tags: [soak]\nrequires: [test-driver, verifier]\nsteps:\n"
    )
    return header + "\n".join(steps) + "\n"
