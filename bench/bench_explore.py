"""Benchmark: longer `lkdh explore` campaigns than the seeded tests run, on both simulator profiles.

What it measures, per seed: how many sequences a campaign with the contract model runs on
dmf-bfac434, what each costs, and which known defects it found from an empty start; then the same
seed on `contract`, where it must find nothing (a longer check that the model has no false
positives). The peer, measured in the same process: one fixed hand-written sequence (alloc, store,
create, the everyday case) run as a scenario on a fresh simulator, the floor of every example. The
ratio (cost per campaign run / the peer's median, wall and CPU time, the peer measured before and
after each campaign) shows what generation, shrinking and the longer, crashing sequences add.

Run: `python bench/bench_explore.py [--seeds 1 2 3] [--steps 8] [--examples 60]`.
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness.explore.campaign import Campaign, simulator
from harness.explore.model import Call, ContractModel, predict_sequence

PEER = [Call("alloc", "b0"), Call("store", "b0"), Call("create", value=1)]


def _peer_seconds(repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of the peer sequence run as a scenario on a fresh simulator."""
    steps = predict_sequence(ContractModel, PEER)
    assert steps is not None
    campaign = Campaign(seed=0, steps=1, open_target=simulator("contract"))
    walls, cpus = [], []
    for _ in range(repeats):
        campaign._results.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        assert campaign.check(steps) is None, "the peer sequence holds on contract"
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--examples", type=int, default=60)
    args = parser.parse_args()
    for seed in args.seeds:
        for profile in ("dmf-bfac434", "contract"):
            before = _peer_seconds(9)  # the peer beside each campaign: the load changes meanwhile
            campaign = Campaign(
                seed=seed,
                steps=args.steps,
                open_target=simulator(profile),
                examples=args.examples,
                max_findings=8,
            )
            wall, cpu = time.perf_counter(), time.process_time()
            findings = campaign.run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            after = _peer_seconds(9)
            peer_wall, peer_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
            runs = max(campaign.runs, 1)
            defects = sorted({d for f in findings for d in f.defects}) or ["none"]
            per_wall, per_cpu = wall / runs, cpu / runs
            print(
                f"seed {seed} on {profile}: {campaign.runs} runs in {wall:.1f} s wall / {cpu:.1f} s CPU; "
                f"per run {per_wall * 1000:.0f} ms wall (peer {peer_wall * 1000:.0f} ms, "
                f"ratio {per_wall / peer_wall:.2f}), {per_cpu * 1000:.0f} ms CPU "
                f"(peer {peer_cpu * 1000:.0f} ms, ratio {per_cpu / peer_cpu:.2f}); "
                f"{len(findings)} findings: " + ", ".join(defects)
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
