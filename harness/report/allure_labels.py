"""What an Allure result says about a scenario beyond its steps: identity (fullName, historyId),
labels (epic, feature, story, severity, tags, suites), parameters, the link to a known defect's
report, and the description. Pure functions of the scenario and its run record, so `lkdh run` and
`pytest` give the same answers (tests/test_allure_parity.py).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

from allure_commons.model2 import Label, Link, Parameter
from allure_commons.utils import md5

import harness.target.defects as defects_module
from harness.record import RunRecord
from harness.scenario import LoadedScenario
from harness.target.defects import KNOWN_DEFECTS

EPIC = "DMF_LiveKernelDump"
API_OF_OPERATION = {
    "store": "DMF_LiveKernelDump_DataBufferSourceAdd",
    "remove": "DMF_LiveKernelDump_DataBufferSourceRemove",
    "create": "DMF_LiveKernelDump_LiveKernelMemoryDumpCreate",
    "store_collection": "DMF_LiveKernelDump_StoreDmfCollectionAsBugcheckParameter",
    "query": "DMF_LiveKernelDump_DmfDataSizeGet",
    "ioctl_create": "IOCTL_LIVEKERNELDUMP_CREATE",
}
"""The module API each step operation exercises (the module's documentation names all but
DmfDataSizeGet, which the source has: F11). alloc, free, wait and reboot are the test driver's or
the machine's, not the module's."""
SEVERITIES = ("blocker", "critical", "normal", "minor", "trivial")


def features(loaded: LoadedScenario) -> list[str]:
    """The APIs the scenario exercises, in the order it first calls them."""
    scenario = loaded.scenario
    found: list[str] = []
    for index in range(len(scenario.steps)):
        api = API_OF_OPERATION.get(scenario.step_operation(index))
        if api and api not in found:
            found.append(api)
    return found


def severity(loaded: LoadedScenario) -> str:
    """A tag named like an Allure severity sets it; otherwise `critical` when the scenario expects
    the machine to bugcheck (a crash is what a driver team fixes first), else `normal`."""
    scenario = loaded.scenario
    for tag in scenario.tags:
        if tag in SEVERITIES:
            return tag
    if any(step.expect.bugcheck is not None for step in scenario.steps):
        return "critical"
    return "normal"


def full_name(loaded: LoadedScenario) -> str:
    """`scenarios/irql.yaml#store_at_dispatch`: the file as the run named it (relative to the
    working folder when inside it, so a nightly started at the repository root keeps its history)."""
    return f"{display_path(loaded.file)}#{loaded.run_name}"


def display_path(path: Path) -> str:
    return as_run_names_it(path).as_posix()


def as_run_names_it(path: Path) -> Path:
    """`path` relative to the working folder when inside it, else absolute: both entry points load
    scenarios through this, so messages, YAML positions and results name files alike."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve())
    except ValueError:
        return resolved


def item_name(loaded: LoadedScenario, target: str) -> str:
    """`name[sim]`, or `store_sizes[sim-4096]` for a parametrize row: the pytest item's name."""
    row = f"-{loaded.row.id}" if loaded.row is not None else ""
    return f"{loaded.scenario.name}[{target}{row}]"


def identity(loaded: LoadedScenario, record: RunRecord) -> dict[str, object]:
    """name, fullName, testCaseId, historyId and titlePath. History follows a scenario per target
    and profile; Verifier, OS build and driver version are shown but do not split the history."""
    name = full_name(loaded)
    return {
        "name": item_name(loaded, record.target),
        "fullName": name,
        "testCaseId": md5(name),
        "historyId": md5(name, record.target, record.profile),
        "titlePath": [*Path(display_path(loaded.file)).parts],
    }


def labels(loaded: LoadedScenario, record: RunRecord) -> list[Label]:
    scenario = loaded.scenario
    found = [Label("epic", EPIC)]
    found += [Label("feature", api) for api in features(loaded)]
    found += [Label("story", scenario.name), Label("severity", severity(loaded))]
    found += [Label("tag", tag) for tag in scenario.tags if tag not in SEVERITIES]
    found.append(Label("tag", "hardware" if record.target == "vm" else record.target))
    if scenario.known_defect is not None:
        found.append(Label("known_defect", scenario.known_defect.id))
    found += [
        # No suite labels: the Suites page lists the scenarios themselves, so a failure is three
        # clicks from the front page (Suites, the scenario, its dump map). Target and file are in
        # the name, the parameters, fullName and titlePath.
        Label("host", socket.gethostname()),
        Label("thread", os.environ.get("PYTEST_XDIST_WORKER", "main")),
        Label("framework", "lkdh"),
    ]
    return found


def parameters(record: RunRecord, os_build: int | None) -> list[Parameter]:
    """target, profile, Verifier, OS build (from the dumps' headers, else the target's facts) and
    driver version (the driver's INFO reply; the simulator's driver is the simulator)."""
    facts = record.target_facts
    simulated = f"simulated test driver (DMF {record.profile})" if record.target == "sim" else "unknown"
    build = str(os_build) if os_build else facts.get("os_build", "unknown")
    return [
        Parameter("target", record.target),
        Parameter("profile", record.profile or "none"),
        Parameter("Verifier", facts.get("verifier", "unknown")),
        Parameter("OS build", build),
        Parameter("driver version", facts.get("driver_version", simulated)),
    ]


def defect_entry(defect_id: str) -> str:
    """The defect's entry in harness/target/defects.py: id, facts, summary."""
    defect = KNOWN_DEFECTS[defect_id]
    return f"{defect.id} ({', '.join(defect.facts)}): {defect.summary}"


def defect_link(defect_id: str, pack: Path | None, environ: Mapping[str, str]) -> Link:
    """The known defect's report: `<pack>/<id>.md` when a defect pack holds it (`lkdh defects
    --out DIR`, given with --defect-pack or LKDH_DEFECT_PACK; a relative pack stays relative so a
    published site can serve it beside the report); otherwise the defect's entry in
    harness/target/defects.py, on the forge when CI says where (GitHub Actions), else in the
    installed package."""
    report = pack / f"{defect_id}.md" if pack is not None else None
    if report is not None and report.is_file():
        url = report.as_posix() if not report.is_absolute() else report.as_uri()
        return Link("issue", url, f"known defect {defect_id} (defect pack)")
    server, repository, sha = (
        environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA")
    )
    if server and repository and sha:
        url = f"{server}/{repository}/blob/{sha}/harness/target/defects.py"
    else:
        url = Path(defects_module.__file__).resolve().as_uri()
    return Link("issue", url, f"known defect {defect_id} (harness/target/defects.py)")


def description(loaded: LoadedScenario, record: RunRecord) -> str:
    """The YAML description, then where the scenario is written and, for a known defect, its entry
    and the scenario's reason (markdown: Allure renders it)."""
    scenario = loaded.scenario
    parts = [scenario.description.strip()] if scenario.description.strip() else []
    parts.append(
        f"Scenario `{scenario.name}` at `{loaded.location}`: {len(scenario.steps)} steps, "
        f"target {record.target}" + (f" (profile {record.profile})" if record.profile else "") + "."
    )
    if scenario.known_defect is not None:
        parts.append(
            f"Known defect {defect_entry(scenario.known_defect.id)}. "
            f"Predicted to fail where the defect is present: {scenario.known_defect.reason}."
        )
    return "\n\n".join(parts)
