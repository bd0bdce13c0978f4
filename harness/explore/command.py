"""`lkdh explore` on the command line: a campaign on the simulator or on the VM of a target config.

The target comes from the same `TargetFactory` as `lkdh run` (`--target sim|vm`, `--target-config`,
`--sim-profile`): a fresh simulator per sequence, or one VM prepared (reverted or rebooted) before
each. What a run writes to `--out`: each finding as `explore_<seed>_<n>.yaml`, and `sequences.txt`,
every sequence run in order, so a campaign on the simulator and one on a VM with the same seed can
be compared line by line (they agree as long as the targets do). A VM's runs keep their dumps and
logs under `runs/`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.explore.campaign import Campaign, write_findings
from harness.target.base import TargetError
from harness.targets import TargetFactory

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_TARGET = 0, 1, 2, 3


def explore(args: argparse.Namespace) -> int:
    """0: the target agreed with the model; 1: findings written; 2: bad input; 3: the target failed."""
    if args.steps < 1 or args.examples < 1 or args.findings < 1:
        print("lkdh explore: --steps, --examples and --findings must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.target == "vm" and args.target_config is None:
        print("lkdh explore: --target vm needs --target-config FILE (the VM to run on)", file=sys.stderr)
        return EXIT_BAD_INPUT
    factory = TargetFactory(sim_profile=args.sim_profile, target_config=args.target_config)
    try:
        where = _target_label(args, factory)
        campaign = Campaign(
            seed=args.seed,
            steps=args.steps,
            open_target=lambda folder: factory.target(args.target, folder),
            model=args.model,
            examples=args.examples,
            max_findings=args.findings,
            keep_runs=args.out / "runs" if args.target == "vm" else None,
        )
        try:
            findings = campaign.run(progress=print)
        finally:
            _write_sequences(campaign, args.out)
            factory.close()
    except TargetError as error:
        print(f"lkdh explore: {error}", file=sys.stderr)
        return EXIT_TARGET
    for path in write_findings(findings, args.out, seed=args.seed, target=where, model=args.model):
        print(f"wrote {path}")
    print(
        f"{len(findings)} disagreements in {campaign.runs} runs on {where} "
        f"(seed {args.seed}, model {args.model})"
    )
    return EXIT_FAILED if findings else EXIT_OK


def _target_label(args: argparse.Namespace, factory: TargetFactory) -> str:
    """sim/<profile>, or vm/<the config's name>."""
    if args.target == "sim":
        return f"sim/{factory.sim_settings().profile}"
    config = factory.config
    reason = factory.vm_skip_reason()
    if reason is not None:
        raise TargetError(reason)
    return f"vm/{getattr(config, 'name', args.target_config)}"


def _write_sequences(campaign: Campaign, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = [" -> ".join(call.describe() for call in calls) for calls in campaign.tried]
    (out / "sequences.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
