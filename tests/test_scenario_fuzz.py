"""Whatever a user types, loading ends in scenarios or in `ScenarioErrors`, never in a traceback."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.scenario import ScenarioErrors, load_scenario_file

VALID = textwrap.dedent(
    """
    name: store_then_create
    tags: [smoke]
    known_defect: {id: remove-null-context, reason: NULL context}
    steps:
      - alloc: {name: ring_a, size: 0x40}
      - alloc:
          name: sec
          size: 16
          pattern: DE AD BE EF
      - store: ring_a
        irql: DISPATCH_LEVEL
      - store: {buffer: ring_a, offset: 8, length: 16}
      - wait: 61
      - store_collection: 0xFFFF800012345678
      - create:
          bugcheck_code: 0x1A2
          exclude_dmf_data: true
          client_structures: [ring_a]
          secondary_data: sec
        expect:
          dump_written: true
          dump:
            contains: [ring_a, {buffer: sec, bytes: DE AD}]
            parameters: [1, collection]
            block_count: {min: 1}
            secondary_data: [{guid: 5f1c2a3b-0000-4c6e-9d7a-1234567890ab}]
      - remove: ring_a
        expect: STATUS_INVALID_PARAMETER
      - free: ring_a
    ---
    name: second
    steps:
      - reboot: true
    """
).lstrip("\n")

# Values worth trying where a value was: YAML syntax, other types, tags, aliases, edge numbers.
NASTY = [
    "", "~", "null", "[", "]", "{", "}", "'", '"', "-", ":", "- x", "? x", "|", ">", "!!int x", "!t",
    "&a", "*a", "<<: *a", "yes", "on", "1.5", "-1", "0x", "0xFFFFFFFFFFFFFFFFFF", ".inf", ".nan", "1e400",
    "2024-01-01", "[1, [2, {a: b}]]", "{a: 1, a: 2}", "\t", "%YAML 1.1", "---", "...", "#", "é", "\x00",
    "DISPATCH", "STATUS_SUCCESS", "ring_b", "true", "false", "[]", "{}",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = VALID
    for _ in range(draw(st.integers(1, 3))):
        lines = text.split("\n")
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "value", "insert"]))
        index = draw(st.integers(0, max(len(lines) - 1, 0)))
        if kind == "delete":
            del lines[index]
        elif kind == "duplicate":
            lines.insert(index, lines[index])
        elif kind == "value" and ": " in lines[index]:
            head = lines[index].split(": ", 1)[0]
            value = draw(st.sampled_from(NASTY) | st.text(max_size=8))
            lines[index] = f"{head}: {value}"
        text = "\n".join(lines)
        if kind in ("swap", "insert") and text:
            at = draw(st.integers(0, len(text) - 1))
            if kind == "swap" and at + 1 < len(text):
                text = text[:at] + text[at + 1] + text[at] + text[at + 2 :]
            elif kind == "insert":
                text = text[:at] + draw(st.sampled_from(NASTY) | st.text(max_size=3)) + text[at:]
    return text


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "mutated.yaml"


def test_the_unmutated_text_is_valid(scratch: Path) -> None:
    scratch.write_text(VALID, encoding="utf-8")
    assert [s.scenario.name for s in load_scenario_file(scratch)] == ["store_then_create", "second"]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=mutated())
def test_mutations_load_or_raise_scenario_errors(scratch: Path, text: str) -> None:
    scratch.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_scenario_file(scratch)
    except ScenarioErrors as caught:
        assert caught.errors
        line_count = text.count("\n") + 2
        for error in caught.errors:
            assert error.file == scratch
            assert 1 <= error.line <= line_count and error.col >= 1
            assert error.message and "Traceback" not in error.message
