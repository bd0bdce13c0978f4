"""`lkdh defects`: the upstream defect pack, from the facts' own text to the simulator's evidence."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from harness.cli import main
from harness.report import dmf_facts
from harness.report.defect_pack import PACK_PROFILES, simulate
from harness.report.defect_sources import DOC_PROMISES, DocumentationError, quote_promises
from harness.report.dmf_facts import (
    DMF_COMMIT,
    FACT_IDS,
    KMDF_REPOSITORY,
    load_fact_book,
    parse_fact_book,
    parse_source_refs,
    shared_dir,
)
from harness.scenario import load_scenario_file
from harness.target.defects import KNOWN_DEFECTS

REPO_ROOT = Path(__file__).resolve().parents[1]
FACTS_MD = shared_dir() / "reference" / "DMF_FACTS.md"
MODULE_DOC = shared_dir() / "seed" / "000_fdad489486791514.txt"
needs_reference = pytest.mark.skipif(
    not (FACTS_MD.is_file() and MODULE_DOC.is_file()),
    reason=f"no DMF_FACTS.md / module doc in {shared_dir()}",
)

SMALL_FACTS = """\
Line numbers are at bfac434: `LKD.c` = `Dmf/Framework/Modules.Core/Dmf_LiveKernelDump.c`, `RB.c` =
`Modules.Library/Dmf_RingBuffer.c`.
- **F02** [SRC] P1 is the caller's parameter.
- **F13** [SRC] **Defect: Remove crashes.** Written at LKD.c:240 and
  read at RB.c:992-995 → 924; KMDF fxverifier.h:196-215.
| F28 | DataBufferSourceAdd / Remove | <= DISPATCH | PASSIVE |
- **F41** [SRC] Dmf_CrashDump.c:204, 3959-3966.
"""


def test_facts_parse_items_continuations_table_rows_and_source_refs() -> None:
    book = parse_fact_book(SMALL_FACTS, "small")
    assert list(book.facts) == ["F02", "F13", "F28", "F41"]
    assert book.text("F13").endswith("KMDF fxverifier.h:196-215.")  # the indented line continues F13
    assert book.text("F28").startswith("DataBufferSourceAdd / Remove; <= DISPATCH")
    assert book.facts["F13"].is_defect and not book.facts["F02"].is_defect
    refs = {ref.label(): ref for ref in book.source_refs("F13")}
    assert set(refs) == {
        "Dmf/Framework/Modules.Core/Dmf_LiveKernelDump.c:240",
        "Dmf/Modules.Library/Dmf_RingBuffer.c:992-995",
        "fxverifier.h:196-215",
    }
    assert refs["fxverifier.h:196-215"].repository == KMDF_REPOSITORY
    assert refs["fxverifier.h:196-215"].url() is None  # no KMDF commit is pinned: no permalink
    assert refs["Dmf/Modules.Library/Dmf_RingBuffer.c:992-995"].url() == (
        f"https://github.com/microsoft/DMF/blob/{DMF_COMMIT}/Dmf/Modules.Library/Dmf_RingBuffer.c#L992-L995"
    )
    crash_dump = [ref.label() for ref in book.source_refs("F41")]
    assert crash_dump == [
        "Dmf/Modules.Library/Dmf_CrashDump.c:204",
        "Dmf/Modules.Library/Dmf_CrashDump.c:3959-3966",
    ]


def test_source_refs_ignore_paths_that_are_not_file_line() -> None:
    assert parse_source_refs("see Dmf_LiveKernelDump.c and 0x10:2 and http://x/a.c") == []


def test_fact_book_falls_back_to_the_built_in_ids(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(dmf_facts, "default_facts_path", lambda: tmp_path / "absent.md")
    book = load_fact_book()
    assert tuple(book.facts) == FACT_IDS and book.source == "built-in id list"
    with pytest.raises(OSError):
        load_fact_book(tmp_path / "absent.md")  # a file asked for by name must exist


@needs_reference
def test_the_reference_defines_every_fallback_id_and_every_defect_fact() -> None:
    book = load_fact_book(FACTS_MD)
    assert tuple(book.facts) == FACT_IDS
    for defect in KNOWN_DEFECTS.values():
        assert all(book.text(fact_id) for fact_id in defect.facts), defect.id


@needs_reference
def test_every_defect_quotes_lines_the_module_doc_really_has() -> None:
    doc = MODULE_DOC.read_text(encoding="utf-8")
    lines = doc.splitlines()
    assert set(DOC_PROMISES) == set(KNOWN_DEFECTS)
    for defect_id in KNOWN_DEFECTS:
        quotes = quote_promises(doc, defect_id)
        assert len(quotes) == len(DOC_PROMISES[defect_id])
        for quote in quotes:
            assert lines[quote.line - 1].strip() == quote.text


def test_a_promise_outside_its_section_is_an_error() -> None:
    doc = (
        "##### DMF_LiveKernelDump_DataBufferSourceRemove\nRemoves.\n"
        + "-" * 20
        + "\nIRQL <= DISPATCH_LEVEL\n"
    )
    with pytest.raises(DocumentationError, match=r"DataBufferSourceRemove` \(line 1\) has no line"):
        quote_promises(doc, "remove-null-context")
    with pytest.raises(DocumentationError, match="no section `DMF_LiveKernelDump_DataBufferSourceAdd`"):
        quote_promises("nothing here\n", "dispatch-wait-lock")


@needs_reference
def test_pack_has_one_report_per_defect_with_the_simulators_evidence(tmp_path: Path, capsys) -> None:
    out = tmp_path / "pack"
    code = main(["defects", "--out", str(out), str(REPO_ROOT / "scenarios" / "remove_then_create.yaml")])
    assert code == 0, capsys.readouterr().err
    assert {path.name for path in out.glob("*.md")} == {f"{d}.md" for d in KNOWN_DEFECTS} | {"README.md"}
    report = (out / "remove-null-context.md").read_text(encoding="utf-8")
    assert f"DMF commit: `{DMF_COMMIT}`" in report
    assert "Dmf/Framework/Modules.Core/Dmf_LiveKernelDump.c:240" in report  # F33's evidence
    assert "(`DMF_LiveKernelDump_DataBufferSourceRemove`, line 309)" in report
    yaml_block = re.search(r"```yaml\n(.*?)```", report, re.S)
    assert (
        yaml_block
        and YAML(typ="safe").load(yaml_block.group(1))["name"] == "remove_then_create_excludes_buffer"
    )
    assert "on sim/dmf-bfac434: xfailed" in report and "on sim/contract: passed" in report
    assert "bugcheck 0xD1 DRIVER_IRQL_NOT_LESS_OR_EQUAL (0x10, 0x2, 0x1, 0x" in report
    assert "First failing step: 5 `remove`" in report
    for path, digest in re.findall(r"- `(evidence/[^`]+\.dmp)` \([a-z]+, sha256 `([0-9a-f]{64})`\)", report):
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == digest
    assert "No run record given" in report
    # A defect the given scenarios do not show says so instead of inventing a run.
    assert "Not run: no shipped scenario shows this defect." in (out / "dispatch-wait-lock.md").read_text()
    assert "[remove-null-context](remove-null-context.md)" in (out / "README.md").read_text()


@needs_reference
def test_pack_quotes_what_a_vm_showed_from_the_run_record(tmp_path: Path) -> None:
    loaded = load_scenario_file(REPO_ROOT / "scenarios" / "remove_then_create.yaml")[0]
    entry = simulate(loaded, PACK_PROFILES[0], tmp_path / "vm").to_json()
    entry["target"] = "vm"  # a record as the VM target writes it: same shape (record.py)
    sim_only = dict(entry, target="sim", scenario="only_on_sim")
    record = tmp_path / "run-record.json"
    record.write_text(json.dumps({"version": 1, "scenarios": [entry, sim_only]}))
    out = tmp_path / "pack"
    scenario = str(REPO_ROOT / "scenarios" / "remove_then_create.yaml")
    assert main(["defects", "--out", str(out), "--run-record", str(record), scenario]) == 0
    report = (out / "remove-null-context.md").read_text()
    vm = report.split("## What a real VM showed", 1)[1]
    assert f"on vm ({record}): xfailed" in vm and "only_on_sim" not in vm
    assert "0xD1 DRIVER_IRQL_NOT_LESS_OR_EQUAL" in vm
    assert (
        "holds no VM run of a scenario with known_defect `apc-wait-lock`"
        in (out / "apc-wait-lock.md").read_text()
    )


def test_a_file_that_is_no_run_record_is_bad_input(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "record.json"
    bad.write_text('{"scenarios": []}')
    assert main(["defects", "--out", str(tmp_path / "p"), "--run-record", str(bad), str(tmp_path)]) == 2
    bad.write_text("{not json")
    assert main(["defects", "--out", str(tmp_path / "p"), "--run-record", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not an lkdh run record" in err and f"{bad}:1:2: not JSON" in err


def test_a_parametrized_scenario_is_shown_once_and_run_per_row(tmp_path: Path) -> None:
    """report-type-truncated's scenario has two rows (12 and 15 characters, F05): its YAML is the
    minimal scenario once, and each row is run on both profiles."""
    out = tmp_path / "pack"
    assert main(["defects", "--out", str(out), str(REPO_ROOT / "scenarios" / "module_config.yaml")]) == 0
    report = (out / "report-type-truncated.md").read_text(encoding="utf-8")
    assert report.count("name: report_type_longer_than_11_characters_is_kept") == 1
    for row in ("12-chars", "15-chars"):
        assert f"`report_type_longer_than_11_characters_is_kept[{row}]` on sim/dmf-bfac434: xfailed" in report
        assert f"`report_type_longer_than_11_characters_is_kept[{row}]` on sim/contract: passed" in report
