"""Load scenario files: YAML streams whose documents are each one `Scenario`.

Every problem, from a YAML syntax error to a buffer used before it is allocated, comes back as a
`ScenarioError` naming `file:line:col`, and all of a file's problems come back together in one
`ScenarioErrors`: a user fixes a file in one pass, and never reads a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from harness.scenario.errors import ScenarioError, ScenarioErrors
from harness.scenario.expand import (
    ExpandedDocument,
    StepFileCache,
    expand_document,
    is_step_file,
    name_rows,
)
from harness.scenario.field_types import describe_found
from harness.scenario.loaded import LoadedScenario
from harness.scenario.model import Scenario
from harness.scenario.semantics import check_duplicate_names, check_scenario
from harness.scenario.validation import errors_from_validation
from harness.scenario.yaml_source import YamlDocument, read_yaml_stream

SCENARIO_SUFFIXES = (".yaml", ".yml")

PathLike = str | Path


@dataclass
class LoadResult:
    """Everything a set of paths gave, problems included (`lkdh check` reports rather than raises)."""

    files: list[Path] = field(default_factory=list)
    documents: int = 0
    scenarios: list[LoadedScenario] = field(default_factory=list)
    errors: list[ScenarioError] = field(default_factory=list)

    def absorb(self, other: LoadResult) -> None:
        self.files += other.files
        self.documents += other.documents
        self.scenarios += other.scenarios
        self.errors += other.errors


def load_scenario_file(path: PathLike) -> list[LoadedScenario]:
    """The scenarios of one file, in document order; raises `ScenarioErrors` with every problem found."""
    result = _load_file(Path(path))
    errors = result.errors + check_duplicate_names(result.scenarios)
    if errors:
        raise ScenarioErrors(errors)
    return result.scenarios


def load_scenarios(paths_or_dirs: PathLike | Iterable[PathLike]) -> list[LoadedScenario]:
    """The scenarios of files and folders (every *.yaml / *.yml inside, recursively, sorted).

    Raises `ScenarioErrors` holding the problems of all files, not only the first one's.
    """
    result = collect_scenarios(paths_or_dirs)
    if result.errors:
        raise ScenarioErrors(result.errors)
    return result.scenarios


def collect_scenarios(paths_or_dirs: PathLike | Iterable[PathLike]) -> LoadResult:
    """Load everything that can be loaded and collect every problem, across files, without raising."""
    total = LoadResult()
    files, total.errors = scenario_files(paths_or_dirs)
    for path in files:
        total.absorb(_load_file(path))
    total.errors += check_duplicate_names(total.scenarios)
    return total


def scenario_files(paths_or_dirs: PathLike | Iterable[PathLike]) -> tuple[list[Path], list[ScenarioError]]:
    """The files that paths name, each once, in a stable order; a path that does not exist is an error."""
    items = [paths_or_dirs] if isinstance(paths_or_dirs, str | Path) else list(paths_or_dirs)
    files: list[Path] = []
    errors: list[ScenarioError] = []
    for item in map(Path, items):
        if item.is_dir():  # step files (`*.steps.yaml`) are read through the scenarios that include them
            files += sorted(
                p
                for p in item.rglob("*")
                if p.suffix.lower() in SCENARIO_SUFFIXES and p.is_file() and not is_step_file(p)
            )
        elif item.is_file():
            files.append(item)
        else:
            errors.append(ScenarioError(item, 1, 1, "no such file or folder"))
    unique: dict[Path, Path] = {}
    for path in files:
        unique.setdefault(path.resolve(), path)  # a file named twice (itself and its folder) loads once
    return list(unique.values()), errors


def _load_file(path: Path) -> LoadResult:
    result = LoadResult(files=[path])
    if is_step_file(path):
        message = "a step file is included by scenarios (`- include: FILE`), not loaded as a scenario"
        result.errors.append(ScenarioError(path, 1, 1, message))
        return result
    text = _read_text(path, result.errors)
    if text is None:
        return result
    read = read_yaml_stream(text, path)
    result.errors += read.errors
    result.documents = len(read.documents)
    if not read.documents and not read.errors:
        message = (
            "the file holds no scenario: expected YAML documents, each a mapping with `name` and `steps`"
        )
        result.errors.append(ScenarioError(path, 1, 1, message))
    cache = StepFileCache()
    for number, document in enumerate(read.documents):
        loaded, errors = _load_document(document, path, number, cache)
        result.errors += errors
        result.scenarios += loaded
    result.errors += cache.errors
    return result


def _read_text(path: Path, errors: list[ScenarioError]) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raw = path.read_bytes()[: exc.start]
        line = raw.count(b"\n") + 1
        col = len(raw) - (raw.rfind(b"\n") + 1) + 1
        errors.append(ScenarioError(path, line, col, f"not UTF-8 text: {exc.reason}"))
    except OSError as exc:
        errors.append(ScenarioError(path, 1, 1, f"cannot read the file: {exc.strerror or exc}"))
    return None


def _load_document(
    document: YamlDocument, path: Path, number: int, cache: StepFileCache
) -> tuple[list[LoadedScenario], list[ScenarioError]]:
    """Expand one document (parametrize rows, vars, includes), then validate and check each row."""
    if not isinstance(document.data, dict):
        shape = "is empty" if document.data is None else f"is {describe_found(document.data)}"
        message = f"document {number + 1} {shape}: a scenario is a mapping with `name` and `steps`"
        return [], [ScenarioError(path, document.line, document.col, message)]
    expanded, errors = expand_document(document, path, cache)
    if errors:
        return [], errors + _validation_beside(expanded, errors)
    loaded_rows: list[LoadedScenario] = []
    row_errors: list[list[ScenarioError]] = []
    for row_document in expanded:
        loaded, found = _load_expanded(row_document, path, number, document)
        row_errors.append(found)
        if loaded is not None:
            loaded_rows.append(loaded)
    return loaded_rows, name_rows([d.row for d in expanded], row_errors)


def _validation_beside(expanded: list[ExpandedDocument], errors: list[ScenarioError]) -> list[ScenarioError]:
    """After an expansion error (an unknown variable, a missing step file) the rest of the document
    is still validated, so one pass shows every mistake; what the failed expansion left behind (a
    value at the same place, a buffer the missing step file would have allocated) is not reported
    again, which is why the semantic checks wait for a clean expansion."""
    taken = {(error.file, error.line, error.col) for error in errors}
    found: list[list[ScenarioError]] = []
    for document in expanded:
        if not document.data.get("steps"):
            found.append([])  # only failed includes: "at least one step" would repeat their errors
            continue
        try:
            Scenario.model_validate(document.data)
            found.append([])
        except ValidationError as exc:
            found.append(errors_from_validation(exc, document.data, document.positions))
        except Exception:  # reported when the expansion is fixed, with its own message
            found.append([])
    if not found:
        return []
    named = name_rows([d.row for d in expanded], found)
    return [error for error in named if (error.file, error.line, error.col) not in taken]


def _load_expanded(
    expanded: ExpandedDocument, path: Path, number: int, document: YamlDocument
) -> tuple[LoadedScenario | None, list[ScenarioError]]:
    """Validate one expanded document, then check it as a whole (once valid: the checks need the model)."""
    positions = expanded.positions
    data = expanded.data
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        return None, errors_from_validation(exc, data, positions)
    except Exception as exc:  # a validator that raised something other than ValueError: still no traceback
        message = (
            f"scenario: validation failed with {type(exc).__name__}: {exc} (a harness bug; please report it)"
        )
        return None, [ScenarioError(path, document.line, document.col, message)]
    line, col = positions.position(("name",), key=True)
    steps = tuple(positions.location(("steps", index)) for index in range(len(scenario.steps)))
    loaded = LoadedScenario(scenario, path, line, col, steps, positions, number, expanded.row)
    return loaded, check_scenario(loaded)
