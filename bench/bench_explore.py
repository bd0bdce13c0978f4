"""Benchmark: a longer `lkdh explore` campaign on dmf-bfac434 than the seeded test runs.

What it measures: how many generated sequences a campaign runs and what each costs, against a named
peer measured in the same process: running one fixed hand-written sequence (store -> remove ->
create, the same size as the campaign's) as a scenario, which is the floor of every example. It also
reports which (operation, IRQL) disagreements the campaign found, so a regression in the search (a
defect no longer found from an empty start) shows up here as well as in the test.

Run: `python bench/bench_explore.py [--seeds 1 2 3] [--steps 6] [--examples 60]`.
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness.explore.campaign import Campaign, run_calls
from harness.explore.model import Call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--examples", type=int, default=60)
    args = parser.parse_args()
    peer_calls = [Call("store", "b0"), Call("store", "b1"), Call("create")]
    peer = []
    for _ in range(10):
        began = time.perf_counter()
        run_calls(peer_calls, "contract")
        peer.append(time.perf_counter() - began)
    peer_median = statistics.median(peer)
    print(f"peer: one fixed 3-call sequence as a scenario, median {peer_median * 1000:.1f} ms")
    for seed in args.seeds:
        campaign = Campaign(seed=seed, steps=args.steps, examples=args.examples, max_findings=6)
        began = time.perf_counter()
        findings = campaign.run()
        seconds = time.perf_counter() - began
        per_run = seconds / max(campaign.runs, 1)
        keys = ", ".join(f"{op}@{irql}" for op, irql in sorted(f.key for f in findings)) or "none"
        print(
            f"seed {seed}: {campaign.runs} runs in {seconds:.1f} s, {per_run * 1000:.1f} ms per run "
            f"(ratio to peer {per_run / peer_median:.2f}); found {keys}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
