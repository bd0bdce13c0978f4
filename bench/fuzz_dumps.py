"""Long fuzz run of every dump reader (tests/dump_fuzz.py): hypothesis-generated hostile dumps.

Not a benchmark of speed: the long run the test suite cannot afford. Every case must end in
success, DumpFormatError (with field and offset) or AddressNotInDump, within CASE_SECONDS, with
traced allocations under the limit. Prints how the cases ended (by error field), cases per second
against the time the same run spends opening the unmutated seeds (the peer: what a clean open
costs), and every finding.

Allocations: with tracemalloc (the default, as in the tests) a case whose traced peak passes
64 MiB is a finding; ``--address-space-mib N`` instead caps the process's address space at its
size now + N MiB (RLIMIT_AS), so any allocation that large fails with MemoryError, a finding,
at no cost per case: the way to afford 100,000 cases.

Run: `python bench/fuzz_dumps.py [--cases 100000] [--seed 1] [--address-space-mib 512]`.
Exit 1 if anything was found. Needs ../shared/fixtures/dumps for the real-fixture seeds.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from dump_fuzz import Case, CaseFile, build_seeds, cases, run_case
from hypothesis import HealthCheck, Phase, given, seed, settings

MEMORY_LIMIT = 64 << 20
ROOT = Path(__file__).resolve().parents[1]


def limit_address_space(headroom: int) -> None:
    """Cap the address space at what the process maps now plus ``headroom`` bytes."""
    import resource

    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (mapped + headroom, resource.RLIM_INFINITY))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--address-space-mib", type=int, default=0, help="RLIMIT_AS headroom instead of tracemalloc"
    )
    args = parser.parse_args()
    args.no_tracemalloc = args.address_space_mib > 0
    shared = Path(os.environ.get("LKDH_SHARED", ROOT.parent / "shared")) / "fixtures" / "dumps"
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as folder:
        seeds = build_seeds(Path(folder), shared if shared.is_dir() else None)
        files = CaseFile(Path(folder), seeds)
        began = time.perf_counter()
        for _ in range(20):
            for index in range(len(seeds)):
                assert run_case(files, Case(index, (), None)) is None
        clean = (time.perf_counter() - began) / (20 * len(seeds))
        tally: collections.Counter[str] = collections.Counter()
        findings = []
        slowest: list[tuple[float, str, Case]] = []

        @seed(args.seed)
        @settings(
            max_examples=args.cases,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(cases(seeds))
        def one(case: Case) -> None:
            started = time.perf_counter()
            finding = run_case(files, case, None if args.no_tracemalloc else MEMORY_LIMIT, tally)
            slowest.append((time.perf_counter() - started, seeds[case.seed].name, case))
            slowest.sort(key=lambda item: -item[0])
            del slowest[5:]
            if finding is not None:
                findings.append(finding)
                tally["FINDING"] += 1
            done = sum(tally.values())
            if done % 5000 == 0:
                print(
                    f"  ... {done} cases, {len(findings)} findings, {time.perf_counter() - began:.0f} s",
                    flush=True,
                )

        if args.no_tracemalloc:
            limit_address_space(args.address_space_mib << 20)
        else:
            tracemalloc.start()
        began = time.perf_counter()
        one()
        elapsed = time.perf_counter() - began
    total = sum(tally.values())
    print(f"{total} cases in {elapsed:.0f} s ({total / elapsed:.0f} cases/s; a clean open+drive of a seed")
    print(f"takes {clean * 1e3:.2f} ms, so a case costs {elapsed / total / clean:.2f}x a clean read)")
    check = f"RLIMIT_AS +{args.address_space_mib} MiB" if args.no_tracemalloc else "tracemalloc peak 64 MiB"
    print(f"seeds: {', '.join(s.name for s in seeds)}; allocation check: {check}")
    for name, count in sorted(tally.items()):
        print(f"  {count:>7}  {name}")
    print("slowest cases:")
    for seconds, name, case in slowest:
        muts = ", ".join(f"0x{o:x}={d.hex()}" for o, d in case.mutations)
        print(f"  {seconds:6.2f} s  {name}: [{muts}] truncate={case.truncate}")
    print(f"findings: {len(findings)}")
    for finding in findings[:50]:
        print(f"  {finding}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
