"""Benchmark: longer `lkdh explore` campaigns than the seeded tests run, on both simulator profiles.

What it measures, per seed: how many sequences a campaign with the contract model runs on
dmf-bfac434, what each costs, and which known defects it found from an empty start; then the same
seed on `contract`, where it must find nothing (a longer check that the model has no false
positives). The peer, measured in the same process: one fixed hand-written sequence (alloc, store,
create, the everyday case) run as a scenario on a fresh simulator, the floor of every example. The
ratio (cost per campaign run / the peer's median) shows what generation, shrinking and the longer,
crashing sequences add.

Run: `python bench/bench_explore.py [--seeds 1 2 3] [--steps 8] [--examples 60]`.
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness.explore.campaign import Campaign, simulator
from harness.explore.model import Call, ContractModel, predict_sequence

PEER = [Call("alloc", "b0"), Call("store", "b0"), Call("create", value=1)]


def _peer_seconds(repeats: int) -> float:
    steps = predict_sequence(ContractModel, PEER)
    assert steps is not None
    campaign = Campaign(seed=0, steps=1, open_target=simulator("contract"))
    times = []
    for _ in range(repeats):
        campaign._results.clear()
        began = time.perf_counter()
        assert campaign.check(steps) is None, "the peer sequence holds on contract"
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--examples", type=int, default=60)
    args = parser.parse_args()
    peer = _peer_seconds(15)
    print(f"peer: alloc -> store -> create as a scenario on a fresh simulator, median {peer * 1000:.1f} ms")
    for seed in args.seeds:
        for profile in ("dmf-bfac434", "contract"):
            campaign = Campaign(
                seed=seed,
                steps=args.steps,
                open_target=simulator(profile),
                examples=args.examples,
                max_findings=8,
            )
            began = time.perf_counter()
            findings = campaign.run()
            seconds = time.perf_counter() - began
            per_run = seconds / max(campaign.runs, 1)
            defects = sorted({d for f in findings for d in f.defects}) or ["none"]
            print(
                f"seed {seed} on {profile}: {campaign.runs} runs in {seconds:.1f} s, {per_run * 1000:.1f} ms "
                f"per run (ratio to peer {per_run / peer:.2f}); {len(findings)} findings: "
                + ", ".join(defects)
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
