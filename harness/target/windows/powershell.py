"""The PowerShell the harness sends to a Windows machine: fixed templates, values passed only as data.

Every remote action is one template in `scripts/<name>.ps1`, run by one constant command line
(DESIGN.md: "Scripts go over stdin ..., never on the command line"):

    <POWERSHELL_EXE> -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand <bootstrap>

(POWERSHELL_EXE: Windows PowerShell 5.1 by its full path.)

The bootstrap (`scripts/_bootstrap.ps1`) reads stdin: line 1 is base64 of the UTF-8 JSON parameters,
the rest is the template text, whose first statement is `param($P)`. It runs the template with the
parameters object as its only argument and prints one final line `LKDH-RESULT:<base64 JSON>`, or
`LKDH-ERROR:<base64 JSON {message, category, script_line}>` with exit code 1. So no value ever
reaches a command line or a script's text (no quoting, no injection), the command line stays far
below cmd.exe's 8,191 characters whatever the script size, and the result survives any console code
page because it travels as base64.

A template declares its parameters on its second line, `# lkdh-params: name! other` (`!` = required),
so a typo in a parameter name fails here, before a round trip to the machine. A line
`# lkdh-include: _fragment.ps1` is replaced by that fragment, so rules that must agree (which folders
hold dumps, for listing and for deleting) are written once.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from harness.target.windows.clixml import decode_clixml
from harness.target.windows.session import CommandResult, SessionError

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

RESULT_MARKER = "LKDH-RESULT:"
ERROR_MARKER = "LKDH-ERROR:"
SECRET_MASK = "***"

_SCRIPTS_PACKAGE = "harness.target.windows"
_PARAMS_LINE = re.compile(r"^# lkdh-params:(?P<names>.*)$")
_INCLUDE_LINE = re.compile(r"^# lkdh-include: (?P<fragment>_[a-z0-9-]+\.ps1)\s*$")
_PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SECRET_KEY = re.compile(r"password|passwd|secret|token|credential", re.IGNORECASE)
_EVIDENCE_LIMIT = 2000
"""Characters of stdout/stderr an error message keeps: enough to diagnose, short enough to read."""


@dataclass(frozen=True)
class Invocation:
    """One script run: a constant argv and the stdin that carries the parameters and the script.

    `stdin` stays out of the repr: it holds the parameters, which may include a password.
    """

    argv: tuple[str, ...]
    stdin: bytes = field(repr=False)


class ScriptError(SessionError):
    """A template failed on the machine, or its output could not be understood.

    Carries the evidence: the script's name, the exit code, the error PowerShell reported (message,
    category, and the template line it came from) and the decoded stderr.
    """

    def __init__(
        self,
        script_name: str,
        message: str,
        *,
        host: str = "",
        exit_code: int | None = None,
        category: str = "",
        script_line: str = "",
        stderr_text: str = "",
    ) -> None:
        super().__init__("command", host or "remote host", f"script {script_name!r}: {message}")
        self.script_name = script_name
        self.exit_code = exit_code
        self.category = category
        self.script_line = script_line
        self.stderr_text = stderr_text


@dataclass(frozen=True)
class _Template:
    """A template with its fragments spliced in, and where each of its lines came from."""

    text: str
    origins: tuple[tuple[str, int], ...]
    declared: frozenset[str]
    required: frozenset[str]


def _read_script_file(file_name: str) -> str:
    return resources.files(_SCRIPTS_PACKAGE).joinpath("scripts", file_name).read_text(encoding="utf-8")


def _script_file_names() -> list[str]:
    folder = resources.files(_SCRIPTS_PACKAGE).joinpath("scripts")
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".ps1"))


SCRIPT_NAMES: frozenset[str] = frozenset(
    name.removesuffix(".ps1") for name in _script_file_names() if not name.startswith("_")
)
"""The templates a caller may run (files starting with `_` are the bootstrap and fragments)."""


def _parse_declared_params(script_name: str, lines: list[str]) -> tuple[frozenset[str], frozenset[str]]:
    match = _PARAMS_LINE.match(lines[1]) if len(lines) > 1 else None
    if lines[0].strip() != "param($P)" or match is None:
        raise ValueError(f"template {script_name!r} must start with 'param($P)' then '# lkdh-params:'")
    declared, required = set(), set()
    for token in match["names"].split():
        name = token.rstrip("!")
        if not _PARAM_NAME.match(name):
            raise ValueError(f"template {script_name!r} declares a bad parameter name {token!r}")
        declared.add(name)
        if token.endswith("!"):
            required.add(name)
    return frozenset(declared), frozenset(required)


@cache
def _template(script_name: str) -> _Template:
    if script_name not in SCRIPT_NAMES:
        raise ValueError(f"unknown script {script_name!r}; known: {', '.join(sorted(SCRIPT_NAMES))}")
    file_name = f"{script_name}.ps1"
    own_lines = _read_script_file(file_name).splitlines()
    declared, required = _parse_declared_params(script_name, own_lines)
    lines: list[str] = []
    origins: list[tuple[str, int]] = []
    for number, line in enumerate(own_lines, start=1):
        include = _INCLUDE_LINE.match(line)
        if include is None:
            lines.append(line)
            origins.append((file_name, number))
            continue
        fragment = include["fragment"]
        for fragment_number, fragment_line in enumerate(_read_script_file(fragment).splitlines(), start=1):
            lines.append(fragment_line)
            origins.append((fragment, fragment_number))
    return _Template("\n".join(lines) + "\n", tuple(origins), declared, required)


def script_text(script_name: str) -> str:
    """The exact script text `invocation` sends for `script_name` (fragments spliced in)."""
    return _template(script_name).text


def _bootstrap_command() -> str:
    """The bootstrap without its comment lines: they cost command-line length and say nothing to Windows."""
    lines = _read_script_file("_bootstrap.ps1").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#")) + "\n"


POWERSHELL_EXE = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
"""Windows PowerShell 5.1 by its full path: a bare `powershell.exe` is looked up in the session's
PATH (and, by cmd.exe, in the working folder first), where anything could stand in for it."""

BOOTSTRAP_ARGV: tuple[str, ...] = (
    POWERSHELL_EXE,
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-EncodedCommand",
    base64.b64encode(_bootstrap_command().encode("utf-16-le")).decode("ascii"),
)
"""The one command line every invocation uses; it never contains a parameter value."""


def _check_keys(value: Any, where: str) -> None:
    """Keys must be distinct ignoring case: PowerShell's ConvertFrom-Json refuses `a` beside `A`."""
    if isinstance(value, Mapping):
        seen: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"{where}: keys must be non-empty strings, got {key!r}")
            if key.lower() in seen:
                raise ValueError(f"{where}: keys {seen[key.lower()]!r} and {key!r} differ only in case")
            seen[key.lower()] = key
            _check_keys(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_keys(item, f"{where}[{index}]")


def invocation(script_name: str, params: Mapping[str, JsonValue]) -> Invocation:
    """Build the run of one template with `params` as data (ValueError for unknown or missing names)."""
    template = _template(script_name)
    unknown = sorted(set(params) - template.declared)
    if unknown:
        raise ValueError(f"script {script_name!r} takes no parameter {', '.join(unknown)}")
    missing = sorted(template.required - set(params))
    if missing:
        raise ValueError(f"script {script_name!r} needs parameter {', '.join(missing)}")
    _check_keys(params, script_name)
    encoded = json.dumps(dict(params), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    params_line = base64.b64encode(encoded.encode("utf-8"))
    return Invocation(BOOTSTRAP_ARGV, params_line + b"\n" + template.text.encode("ascii"))


def redacted(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` fit for a log: the value of any key that names a secret (password, token...) masked."""

    def mask(key: str, value: Any) -> Any:
        if _SECRET_KEY.search(key):
            return SECRET_MASK
        if isinstance(value, Mapping):
            return {k: mask(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [mask(key, item) for item in value]
        return value

    return {key: mask(str(key), value) for key, value in params.items()}


def _decoded_stderr(stderr: bytes) -> str:
    """stderr as text, PowerShell's `#< CLIXML` serialization (how -EncodedCommand writes errors) decoded."""
    return decode_clixml(stderr.decode("utf-8", errors="replace"))


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _EVIDENCE_LIMIT else "..." + text[-_EVIDENCE_LIMIT:]


def _last_marker_payload(stdout: str, marker: str) -> str | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(marker):
            return line[len(marker) :].strip()
    return None


def _decode_payload(payload: str) -> Any:
    return json.loads(base64.b64decode(payload, validate=True).decode("utf-8"))


def _origin(script_name: str, line: Any) -> str:
    """`file:line` of the template line PowerShell reported (fragments are spliced in)."""
    if not isinstance(line, int) or line <= 0:
        return ""
    origins = _template(script_name).origins if script_name in SCRIPT_NAMES else ()
    if line > len(origins):
        return f"line {line}"
    file_name, number = origins[line - 1]
    return f"{file_name}:{number}"


def parse_result(result: CommandResult, script_name: str, *, host: str = "") -> dict[str, Any]:
    """The object a template returned, or ScriptError with the script's error and decoded stderr."""
    stdout = result.stdout.decode("utf-8", errors="replace")
    error_payload = _last_marker_payload(stdout, ERROR_MARKER)
    if error_payload is not None:
        try:
            failure = _decode_payload(error_payload)
        except (ValueError, binascii.Error) as error:
            raise ScriptError(
                script_name,
                f"unreadable {ERROR_MARKER} line ({error})",
                host=host,
                exit_code=result.exit_code,
            ) from None
        if not isinstance(failure, dict):
            failure = {"message": str(failure)}
        origin = _origin(script_name, failure.get("script_line"))
        category = str(failure.get("category") or "")
        where = f" at {origin}" if origin else ""
        raise ScriptError(
            script_name,
            f"{failure.get('message', '(no message)')}{where} [{category or 'no category'}]",
            host=host,
            exit_code=result.exit_code,
            category=category,
            script_line=origin,
            stderr_text=_decoded_stderr(result.stderr),
        )
    result_payload = _last_marker_payload(stdout, RESULT_MARKER)
    if result_payload is None or result.exit_code != 0:
        stderr_text = _decoded_stderr(result.stderr)
        what = "no result line" if result_payload is None else "a result line but a failing exit code"
        raise ScriptError(
            script_name,
            f"exit code {result.exit_code} and {what}; stderr: {_tail(stderr_text) or '(empty)'}; "
            f"stdout: {_tail(stdout) or '(empty)'}",
            host=host,
            exit_code=result.exit_code,
            stderr_text=stderr_text,
        )
    try:
        value = _decode_payload(result_payload)
    except (ValueError, binascii.Error) as error:
        raise ScriptError(
            script_name, f"unreadable {RESULT_MARKER} line ({error})", host=host, exit_code=result.exit_code
        ) from None
    if not isinstance(value, dict):
        raise ScriptError(
            script_name, f"returned {type(value).__name__}, not an object", host=host, exit_code=0
        )
    return value
