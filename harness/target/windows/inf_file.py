"""Reading a driver INF file: sections, entries, %strings%, with the file:line of every value.

No Python library reads INF files (configparser refuses repeated keys and bare values, both normal
in an INF), so this is written by hand against MicrosoftDocs "General Syntax Rules for INF Files":
`;` starts a comment outside double quotes, a line ending in `\\` continues on the next one, section
names and keys are case-insensitive, a value may be a comma-separated list, `%token%` is replaced
from [Strings] (`%%` is a literal percent, `%13%` a DIRID left as it is), and `""` inside a quoted
string is one quote. Only what the package preflight needs is modelled: it never writes an INF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


class InfError(ValueError):
    """An INF that cannot be read, or lacks what a driver package INF must have; names file:line."""


@dataclass(frozen=True)
class InfEntry:
    """One line of a section: `key = v1, v2` or a bare `v1, v2` (key None); line is 1-based."""

    key: str | None
    values: tuple[str, ...]
    line: int


@dataclass
class InfFile:
    path: Path
    sections: dict[str, list[InfEntry]] = field(default_factory=dict)
    """Lower-cased section name → its entries in order (a section written twice is merged, as Setup does)."""

    def section(self, name: str) -> list[InfEntry]:
        return self.sections.get(name.lower(), [])

    def has_section(self, name: str) -> bool:
        return name.lower() in self.sections

    def value(self, section: str, key: str) -> InfEntry | None:
        """The first `key = ...` of a section (keys compare case-insensitively)."""
        for entry in self.section(section):
            if entry.key is not None and entry.key.lower() == key.lower():
                return entry
        return None

    def where(self, entry: InfEntry | None = None) -> str:
        return f"{self.path.name}:{entry.line}" if entry is not None else self.path.name


_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$")


def _strip_comment(line: str) -> str:
    """The line without its `;` comment; a `;` inside double quotes is text."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            return line[:index]
    return line


def _split_values(text: str) -> list[str]:
    """Comma-separated values, double quotes removed (`""` inside quotes is one quote)."""
    values, current, quoted, index = [], [], False, 0
    while index < len(text):
        char = text[index]
        if char == '"':
            if quoted and text[index + 1 : index + 2] == '"':
                current.append('"')
                index += 2
                continue
            quoted = not quoted
        elif char == "," and not quoted:
            values.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    values.append("".join(current).strip())
    return values


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first physical line number, text) with comments removed and `\\` continuations joined."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        body = _strip_comment(raw).rstrip()
        if not pending:
            start = number
        if body.endswith("\\"):
            pending += body[:-1]
            continue
        lines.append((start, pending + body))
        pending = ""
    if pending:
        lines.append((start, pending))
    return lines


def read_inf(path: Path) -> InfFile:
    """Parse `path` (UTF-16 with a BOM, UTF-8 or ASCII, as Setup accepts) and substitute %strings%."""
    data = path.read_bytes()
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InfError(f"{path.name}: not UTF-16 (with BOM) or UTF-8 text: {error}") from None
    inf = InfFile(path)
    current: list[InfEntry] | None = None
    for number, line in _logical_lines(text):
        stripped = line.strip()
        if not stripped:
            continue
        header = _SECTION.match(stripped)
        if header:
            current = inf.sections.setdefault(header["name"].strip().lower(), [])
            continue
        if current is None:
            raise InfError(f"{path.name}:{number}: text before the first [section]: {stripped[:60]!r}")
        key, equals, rest = stripped.partition("=")
        if equals and '"' not in key:
            current.append(InfEntry(key.strip(), tuple(_split_values(rest)), number))
        else:
            current.append(InfEntry(None, tuple(_split_values(stripped)), number))
    _substitute_strings(inf)
    return inf


def _substitute_strings(inf: InfFile) -> None:
    strings = {
        entry.key.lower(): entry.values[0] if entry.values else ""
        for entry in inf.section("Strings")
        if entry.key is not None
    }

    def replace(text: str, line: int) -> str:
        def token(match: re.Match[str]) -> str:
            name = match[1]
            if name == "":
                return "%"
            if name.isdigit():  # %13%, %12%: a DIRID, resolved by Setup at install time
                return match[0]
            if name.lower() not in strings:
                raise InfError(f"{inf.path.name}:{line}: %{name}% is not defined in [Strings]")
            return strings[name.lower()]

        return re.sub(r"%([^%]*)%", token, text)

    for name, entries in inf.sections.items():
        if name == "strings":
            continue
        inf.sections[name] = [
            InfEntry(
                None if entry.key is None else replace(entry.key, entry.line),
                tuple(replace(value, entry.line) for value in entry.values),
                entry.line,
            )
            for entry in entries
        ]
