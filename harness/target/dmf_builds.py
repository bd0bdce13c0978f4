"""Which known defects each DMF build has: the one table the simulator's profiles and the real VM
target both read, so a scenario predicted to fail on bfac434 is predicted the same way everywhere.

A build is named by its short commit (the name a target config's `driver.dmf_build` uses) and
identified by its full commit, which the driver package's stamp and the driver's INFO reply carry.
Adding a DMF build: its commit and the ids (harness/target/defects.py) of the defects it still has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.target.defects import KNOWN_DEFECTS

SHORTEST_COMMIT = 7
"""git's default abbreviation: shorter prefixes are ambiguous in a repository of DMF's size."""


@dataclass(frozen=True)
class DmfBuild:
    """One DMF commit a test driver can be built against, and its known defects."""

    name: str
    commit: str
    defects: frozenset[str]
    description: str

    def is_commit(self, commit: str) -> bool:
        """Whether `commit` (full, or abbreviated to at least 7 digits, any case) is this build's."""
        wanted = commit.strip().lower()
        return bool(re.fullmatch(r"[0-9a-f]{7,40}", wanted)) and self.commit.startswith(wanted)


DMF_BUILDS: dict[str, DmfBuild] = {
    build.name: build
    for build in (
        DmfBuild(
            "bfac434",
            "bfac434fd3497259095a1f8d70ed734493228091",
            frozenset(KNOWN_DEFECTS),
            "DMF at commit bfac434 (July 2025) as shipped: every known defect (DMF_FACTS.md)",
        ),
    )
}


def build_of_commit(commit: str) -> DmfBuild | None:
    """The listed build a commit (full or abbreviated) belongs to, or None when none is listed."""
    return next((build for build in DMF_BUILDS.values() if build.is_commit(commit)), None)
