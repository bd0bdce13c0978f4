"""Benchmark: the scenario suite on the simulated machine, in scenarios per second, against
`lkdh check` on the same files, same process, same run.

Both run the real commands in-process through ``harness.cli.main`` (output discarded): `lkdh run
scenarios/` (load, validate, run every scenario on the simulator, read and check every dump it
writes, write the run record) and `lkdh check scenarios/` (load and validate only). The peer is what
every run pays anyway; the ratio says how much running costs on top of reading the YAML.

Run: `python bench/bench_sim_suite.py [--repeat N] [PATH...]` (default: the repository's scenarios/).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness.cli import main as lkdh
from harness.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str]) -> tuple[float, int]:
    out = io.StringIO()
    began = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = lkdh(argv)
    return time.perf_counter() - began, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "scenarios"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    paths = [str(p) for p in args.paths]
    count = len(load_scenarios(args.paths))
    runs, checks = [], []
    with tempfile.TemporaryDirectory() as out:
        for i in range(args.repeat):
            seconds, code = timed(["run", *paths, "--out", f"{out}/{i}"])
            assert code == 0, f"lkdh run exited {code}"
            runs.append(seconds)
            seconds, code = timed(["check", *paths])
            assert code == 0, f"lkdh check exited {code}"
            checks.append(seconds)
    run_rate, check_rate = count / statistics.median(runs), count / statistics.median(checks)
    print(f"{count} scenarios in {len(paths)} path(s), median of {args.repeat}")
    print(f"  lkdh run (simulator)  {run_rate:8.1f} scenarios/s  ({statistics.median(runs):.2f} s)")
    print(f"  lkdh check            {check_rate:8.1f} scenarios/s  ({statistics.median(checks):.2f} s)")
    cost = check_rate / run_rate
    print(f"  ratio run / check     {run_rate / check_rate:8.2f}  (a run costs {cost:.1f}x a check)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
