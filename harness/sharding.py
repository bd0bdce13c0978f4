"""Splitting a suite across CI runners by a hash of each item's node id.

`pytest --lkdh-shard I/N` keeps the items whose node id hashes to shard I (1-based) of N. The
split depends on nothing but the id, so every runner computes the same split from the same
checkout, an item stays on its shard when other scenarios are added or removed (its history on one
hypervisor host stays on that host), and N shards together run every item exactly once. Why a hash
and not pytest-split's stored durations: bench/README.md, "Sharding" (a VM scenario's time is
dominated by the same revert, boot and one-minute spacing for every scenario, so balancing by count
loses little, and a durations file would have to be kept fresh per host).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_SHARD = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class Shard:
    index: int
    """1-based, as CI matrices count."""
    count: int

    def holds(self, node_id: str) -> bool:
        return shard_of(node_id, self.count) == self.index


def shard_of(node_id: str, count: int) -> int:
    """The 1-based shard of `node_id` among `count`: the first 8 bytes of its SHA-256, mod count."""
    digest = hashlib.sha256(node_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def parse_shard(text: str) -> Shard:
    """'2/3' -> Shard(2, 3); ValueError with what was wrong otherwise."""
    match = _SHARD.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a shard: write I/N, such as 1/3")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"shard {text!r}: I must be 1..N and N at least 1")
    return Shard(index, count)


def shard_option(text: str) -> Shard:
    """`--lkdh-shard` as argparse wants it: a bad value is a usage error naming what was wrong."""
    import argparse

    try:
        return parse_shard(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
