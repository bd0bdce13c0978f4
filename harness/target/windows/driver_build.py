"""Which DMF build the VM's test driver runs, so the VM reports that build's known defects as the
simulator's profiles do (harness/target/dmf_builds.py is the one table both read).

Three sources can say it, and every one present must agree:
1. the target config's `driver.dmf_build` (the declaration, checked against the table at load);
2. the driver package's stamp: the `dmf_commit` of `<driver.package>/lkdh-package.json`, the DMF
   commit the package was built against (what `git -C DMF rev-parse HEAD` prints), written by
   driver/build.ps1 next to the .inf/.sys/.cat (format in driver/README.md). It is read locally,
   before anything is installed;
3. the loaded driver's own INFO reply (`DmfCommit`, the LKDH_DMF_COMMIT it was compiled with).
The build is the first source present. A commit the table does not list is a DMF build with no
known defects (a newer, fixed DMF, say): the run says so in the driver facts, and every
known-defect scenario then counts as not reproducing, which is what such a build should show.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from harness.target.base import TargetError
from harness.target.dmf_builds import DMF_BUILDS, DmfBuild, build_of_commit
from harness.target.windows.config import DriverSettings
from harness.target.windows.package_check import PACKAGE_STAMP

log = logging.getLogger(__name__)

STAMP_FILE = PACKAGE_STAMP
"""The file in the driver package that names the DMF commit it was built against (`dmf_commit`)."""

_COMMIT = re.compile(r"[0-9a-f]{7,40}")


class DriverBuildError(TargetError):
    """The sources that say which DMF build the driver runs disagree, or one is unreadable."""


@dataclass(frozen=True)
class DriverBuild:
    """The DMF build the VM's driver runs, and which source said so."""

    commit: str
    source: str
    build: DmfBuild | None
    """The listed build, or None for a commit dmf_builds.py does not list (no known defects)."""

    @property
    def defects(self) -> frozenset[str]:
        return frozenset() if self.build is None else self.build.defects

    @property
    def label(self) -> str:
        """'bfac434' for a listed build, 'unlisted 1234abc' otherwise."""
        return self.build.name if self.build is not None else f"unlisted {self.commit[:12]}"

    def check_reported(self, reported_commit: str) -> None:
        """The driver's INFO reply must name the same commit (abbreviated or not)."""
        reported = reported_commit.strip().lower()
        if reported and (reported.startswith(self.commit) or self.commit.startswith(reported)):
            return
        raise DriverBuildError(
            f"the driver on the VM reports DMF commit {reported_commit or '(none)'!r}, but the {self.source} "
            f"says {self.label} ({self.commit}): install the package that was built against it, or correct "
            "driver.dmf_build"
        )


def stamped_commit(package: Path) -> str | None:
    """The `dmf_commit` in `<package>/lkdh-package.json`, or None when the package carries no stamp."""
    stamp = package / STAMP_FILE
    try:
        document = json.loads(stamp.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DriverBuildError(f"cannot read the driver package's stamp {stamp}: {error}") from error
    value = document.get("dmf_commit") if isinstance(document, dict) else None
    commit = value.strip().lower() if isinstance(value, str) else ""
    if not _COMMIT.fullmatch(commit):
        raise DriverBuildError(
            f"{stamp} should hold one DMF commit (7 to 40 hex digits) as dmf_commit, not {value!r}"
        )
    return commit


def declared_build(driver: DriverSettings) -> DriverBuild | None:
    """The build the config and the package stamp say, checked against each other; None when
    neither says (then the driver's INFO reply decides, `reported_build`)."""
    stamp = stamped_commit(driver.package)
    if driver.dmf_build is not None:
        build = DMF_BUILDS[driver.dmf_build]
        if stamp is not None and not build.is_commit(stamp):
            raise DriverBuildError(
                f"the target config declares DMF build {build.name} ({build.commit}), but "
                f"{driver.package / STAMP_FILE} says {stamp}: the package was built against another DMF"
            )
        if stamp is None:
            log.warning(
                "%s has no %s; trusting driver.dmf_build = %s", driver.package, STAMP_FILE, build.name
            )
        return DriverBuild(build.commit, "target config (driver.dmf_build)", build)
    if stamp is not None:
        listed = build_of_commit(stamp)
        return DriverBuild(listed.commit if listed else stamp, f"package stamp {STAMP_FILE}", listed)
    return None


def reported_build(reported_commit: str) -> DriverBuild:
    """The build the driver's own INFO reply names, when nothing else declared one."""
    commit = reported_commit.strip().lower()
    if not _COMMIT.fullmatch(commit):
        raise DriverBuildError(
            "cannot tell which DMF build the VM's driver runs: the config has no driver.dmf_build, the "
            f"package no {STAMP_FILE}, and the driver reports DMF commit {reported_commit!r}"
        )
    listed = build_of_commit(commit)
    return DriverBuild(listed.commit if listed else commit, "driver's INFO reply", listed)
