"""The PowerShell the harness sends: values travel only as data, results and errors come back readable.

No PowerShell runs here, so the scripts are checked with a real PowerShell grammar (tree-sitter) and
by reading them; the wire format (argv, stdin, the LKDH-RESULT / LKDH-ERROR lines) is checked
exactly, byte for byte.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
import tree_sitter_language_pack

from harness.target.windows import powershell
from harness.target.windows.powershell import (
    BOOTSTRAP_ARGV,
    ERROR_MARKER,
    RESULT_MARKER,
    SCRIPT_NAMES,
    ScriptError,
    invocation,
    parse_result,
    redacted,
    script_text,
)
from harness.target.windows.session import CommandResult, SessionError

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "harness" / "target" / "windows" / "scripts"
VM = REPO / "vm"
CMD_EXE_LIMIT = 8191

EXPECTED_SCRIPTS = {
    "boot-time",
    "restart-computer",
    "list-dumps",
    "file-hash",
    "read-chunk",
    "install-driver",
    "live-dump-events",
    "driver-status",
    "import-certificate",
    "enable-test-signing",
    "configure-verifier",
    "configure-live-dumps",
    "dump-folder-status",
    "run-lkdctl",
    "upload-chunk",
    "restore-checkpoint",
    "host-info",
    "device-parameters",
}

HOSTILE_SHAPES = [
    "it's",
    'say "hi"',
    "back`tick`n",
    "$(Remove-Item C:\\ -Recurse)",
    "a; Stop-Computer -Force",
    "line1\nline2\r\nline3",
    "%SystemRoot% %PATH%",
    "Grüße 日本語 😀 \u202e",
    "@'\nhere\n'@",
    "x" * 10_000,
]


def split_stdin(stdin: bytes) -> tuple[Any, str]:
    """What the bootstrap reads: the JSON parameters (line 1, base64) and the script text (the rest)."""
    params_line, _, script = stdin.partition(b"\n")
    return json.loads(base64.b64decode(params_line, validate=True).decode("utf-8")), script.decode("ascii")


def declared_params(name: str) -> tuple[set[str], set[str]]:
    line = (SCRIPTS / f"{name}.ps1").read_text().splitlines()[1]
    tokens = line.removeprefix("# lkdh-params:").split()
    return {t.rstrip("!") for t in tokens}, {t.rstrip("!") for t in tokens if t.endswith("!")}


def hostile_params(name: str, shape: str) -> dict[str, Any]:
    """Every declared parameter of `name` set to `shape` plus a canary; list-like ones get lists."""
    declared, _ = declared_params(name)
    params: dict[str, Any] = {}
    for key in sorted(declared):
        value = f"{shape}CANARY{uuid.uuid4().hex}"
        params[key] = [value, {"nested": value}] if key in {"paths", "arguments", "stores"} else value
    return params


def canaries(params: dict[str, Any]) -> list[str]:
    return re.findall(r"CANARY[0-9a-f]{32}", json.dumps(params))


def result_line(value: Any) -> str:
    return RESULT_MARKER + base64.b64encode(json.dumps(value).encode("utf-8")).decode("ascii")


def error_line(message: str, category: str = "NotSpecified", script_line: int = 0) -> str:
    payload = {"message": message, "category": category, "script_line": script_line}
    return ERROR_MARKER + base64.b64encode(json.dumps(payload).encode("utf-8")).decode("ascii")


# --- the invocation protocol ---------------------------------------------------------------------


def test_the_templates_are_exactly_the_ones_other_code_names() -> None:
    assert SCRIPT_NAMES == EXPECTED_SCRIPTS


def _string_constants_in_the_harness() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "harness").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_every_template_is_one_the_harness_runs() -> None:
    """A template nothing runs is dead code on the guest's side (delete-files was one, and it
    contradicted "nothing on the guest is deleted")."""
    assert SCRIPT_NAMES - _string_constants_in_the_harness() == set()


@pytest.mark.parametrize("name", sorted(EXPECTED_SCRIPTS))
@pytest.mark.parametrize("shape", HOSTILE_SHAPES, ids=range(len(HOSTILE_SHAPES)))
def test_values_travel_as_data_and_never_as_code(name: str, shape: str) -> None:
    params = hostile_params(name, shape)
    run = invocation(name, params)

    sent_params, sent_script = split_stdin(run.stdin)
    assert sent_params == params
    assert sent_script == script_text(name)
    assert run.argv == BOOTSTRAP_ARGV
    for canary in canaries(params):
        assert canary not in sent_script
        assert all(canary not in argument for argument in run.argv)


def test_the_command_line_is_constant_and_short() -> None:
    command_line = " ".join(BOOTSTRAP_ARGV)
    assert len(command_line) < CMD_EXE_LIMIT
    assert BOOTSTRAP_ARGV[:6] == (
        r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-EncodedCommand",
    )
    big = invocation("upload-chunk", {"path": "C:\\x", "offset": 0, "data": "A" * 2_000_000})
    small = invocation("upload-chunk", {"path": "C:\\x", "offset": 0, "data": ""})
    assert big.argv == small.argv == BOOTSTRAP_ARGV


def test_the_encoded_command_is_the_bootstrap_in_utf16() -> None:
    bootstrap = base64.b64decode(BOOTSTRAP_ARGV[-1]).decode("utf-16-le")
    assert "$input" in bootstrap
    assert "LKDH-RESULT:" in bootstrap and "LKDH-ERROR:" in bootstrap
    assert "$ErrorActionPreference = 'Stop'" in bootstrap
    assert not any(line.lstrip().startswith("#") for line in bootstrap.splitlines())


def test_parameters_are_checked_against_what_the_template_declares() -> None:
    with pytest.raises(ValueError, match="takes no parameter pathz"):
        invocation("file-hash", {"pathz": ["C:\\a"]})
    with pytest.raises(ValueError, match="needs parameter hardware_id"):
        invocation("install-driver", {"inf_path": "C:\\d\\lkdh.inf"})
    with pytest.raises(ValueError, match="unknown script 'format-disk'"):
        invocation("format-disk", {})


def test_keys_differing_only_in_case_are_refused_because_powershell_cannot_hold_both() -> None:
    with pytest.raises(ValueError, match="differ only in case"):
        invocation("file-hash", {"paths": [{"a": 1, "A": 2}]})


def test_values_json_cannot_carry_are_refused() -> None:
    with pytest.raises(ValueError):
        invocation("read-chunk", {"path": "C:\\a", "offset": float("nan"), "length": 1})


# --- secrets -------------------------------------------------------------------------------------


SECRET = "Pa$$w0rd'\";`$(evil)"


def test_redacted_masks_secret_keys_at_any_depth_and_keeps_the_rest() -> None:
    params = {
        "run_as_user": "lkdh-user",
        "password": SECRET,
        "nested": {"API_TOKEN": SECRET, "keep": [1, {"client_secret": SECRET}]},
    }
    shown = redacted(params)
    assert SECRET not in json.dumps(shown)
    assert shown["run_as_user"] == "lkdh-user"
    assert shown["password"] == powershell.SECRET_MASK
    assert shown["nested"]["keep"][0] == 1
    assert params["password"] == SECRET  # the caller's mapping is untouched


def test_the_password_never_reaches_argv_or_any_repr() -> None:
    params = {"exe_path": "C:\\lkdh\\lkdctl.exe", "run_as_user": "u", "password": SECRET}
    run = invocation("run-lkdctl", params)
    encoded_params = run.stdin.partition(b"\n")[0].decode("ascii")
    assert split_stdin(run.stdin)[0]["password"] == SECRET  # it is there, only on stdin
    for text in (repr(run), str(run), " ".join(run.argv)):
        assert SECRET not in text
        assert encoded_params not in text
        assert encoded_params[:24] not in text


def test_templates_use_a_secret_parameter_only_to_check_it_or_hand_it_to_register_scheduledtask() -> None:
    secret_use = re.compile(r"\$P\.(password|\w*secret\w*|\w*token\w*)", re.IGNORECASE)
    allowed = [
        re.compile(r"^\s*if \(-not \$P\.password\) \{$"),
        re.compile(r"Register-ScheduledTask .* -Password \(\[string\]\$P\.password\) "),
    ]
    uses = []
    for path in SCRIPTS.glob("*.ps1"):
        for line in path.read_text().splitlines():
            if secret_use.search(line):
                uses.append(line)
                assert any(rule.search(line) for rule in allowed), f"{path.name}: {line.strip()}"
    assert len(uses) == 2


# --- parse_result --------------------------------------------------------------------------------


def test_a_result_line_gives_the_object_even_after_other_output() -> None:
    value = {"last_boot_unix": 1_700_000_000, "text": "Grüße\n日本"}
    stdout = f"pnputil says hello\r\nanother line\r\n{result_line(value)}\r\n".encode()
    assert parse_result(CommandResult(0, stdout, b""), "boot-time") == value


def test_an_error_line_becomes_a_script_error_naming_the_template_line() -> None:
    check_line = next(
        n for n, line in enumerate(script_text("read-chunk").splitlines(), 1) if "IsPathRooted" in line
    )
    stdout = error_line("read-chunk: 'x' is not an absolute path", "OperationStopped", check_line).encode()
    with pytest.raises(ScriptError) as caught:
        parse_result(CommandResult(1, stdout, b""), "read-chunk", host="vm1")
    error = caught.value
    assert isinstance(error, SessionError)
    assert error.stage == "command" and error.host == "vm1"
    assert error.exit_code == 1 and error.category == "OperationStopped"
    assert error.script_line == f"read-chunk.ps1:{check_line}"  # no fragment: template lines map 1:1
    assert "'read-chunk'" in str(error) and "is not an absolute path" in str(error)


def test_an_error_inside_a_spliced_fragment_names_the_fragment_and_its_line() -> None:
    lines = script_text("list-dumps").splitlines()
    composed_line = next(n for n, line in enumerate(lines, 1) if "function Get-LkdhDumpFolders" in line)
    fragment_line = next(
        n
        for n, line in enumerate((SCRIPTS / "_dump-folders.ps1").read_text().splitlines(), 1)
        if "function Get-LkdhDumpFolders" in line
    )
    stdout = error_line("boom", script_line=composed_line).encode()
    with pytest.raises(ScriptError) as caught:
        parse_result(CommandResult(1, stdout, b""), "list-dumps")
    assert caught.value.script_line == f"_dump-folders.ps1:{fragment_line}"


def test_no_marker_gives_the_exit_code_and_the_stderr() -> None:
    stderr = b"'powershell.exe' is not recognized as an internal or external command"
    with pytest.raises(ScriptError) as caught:
        parse_result(CommandResult(9009, b"", stderr), "host-info", host="vm1")
    message = str(caught.value)
    assert "exit code 9009" in message and "no result line" in message
    assert "is not recognized" in message
    assert caught.value.exit_code == 9009


def test_a_result_with_a_failing_exit_code_is_not_trusted() -> None:
    stdout = result_line({"ok": True}).encode()
    with pytest.raises(ScriptError, match="exit code 3 and a result line but a failing exit code"):
        parse_result(CommandResult(3, stdout, b""), "host-info")


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        (RESULT_MARKER + "%%%not-base64", "unreadable LKDH-RESULT"),
        (RESULT_MARKER + base64.b64encode(b"{not json").decode(), "unreadable LKDH-RESULT"),
        (result_line([1, 2]), "returned list, not an object"),
        (ERROR_MARKER + "!!", "unreadable LKDH-ERROR"),
    ],
)
def test_garbled_marker_lines_are_reported_not_guessed(stdout: str, expected: str) -> None:
    with pytest.raises(ScriptError, match=expected):
        parse_result(CommandResult(0, stdout.encode(), b""), "host-info")


CLIXML_STDERR = (
    b"#< CLIXML\r\n"
    b'<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    b"<S S=\"Error\">Cannot find path 'C:\\nope' because it does not exist._x000D__x000A_</S>"
    b"</Objs>"
)


def test_clixml_stderr_is_decoded_into_the_error_text() -> None:
    with pytest.raises(ScriptError) as caught:
        parse_result(CommandResult(1, b"", CLIXML_STDERR), "host-info")
    assert "Cannot find path 'C:\\nope' because it does not exist." in str(caught.value)
    assert "_x000D_" not in caught.value.stderr_text


def test_stderr_is_kept_raw_when_it_is_not_clixml() -> None:
    with pytest.raises(ScriptError) as caught:
        parse_result(CommandResult(1, b"", "plain failure é".encode()), "host-info")
    assert caught.value.stderr_text == "plain failure é"


# --- the templates themselves --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_SCRIPTS))
def test_every_parameter_a_template_reads_is_declared_and_every_declared_one_is_read(name: str) -> None:
    text = script_text(name)
    used = set(re.findall(r"\$P\.([A-Za-z_][A-Za-z0-9_]*)", text))
    declared, required = declared_params(name)
    assert used == declared
    assert required <= declared


@pytest.mark.parametrize("path", sorted(SCRIPTS.glob("*.ps1")), ids=lambda p: p.name)
def test_scripts_are_ascii_so_no_console_code_page_can_change_them(path: Path) -> None:
    path.read_text(encoding="utf-8").encode("ascii")


@pytest.mark.parametrize("name", sorted(EXPECTED_SCRIPTS))
def test_every_template_starts_with_the_single_parameter_object(name: str) -> None:
    assert script_text(name).splitlines()[0] == "param($P)"


# --- syntax, with a real PowerShell grammar ------------------------------------------------------


@pytest.fixture(scope="module")
def powershell_parser() -> Any:
    return tree_sitter_language_pack.get_parser("powershell")  # the dev extra pins 0.13.0


def syntax_errors(parser: Any, source: str) -> list[str]:
    """`line:column` and text of every ERROR or MISSING node, for a failure message that says where."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if node.type == "ERROR" or node.is_missing:
            row, column = node.start_point
            snippet = source.encode("utf-8")[node.start_byte : node.end_byte][:60].decode("utf-8", "replace")
            found.append(f"{row + 1}:{column + 1} {'MISSING' if node.is_missing else 'ERROR'} {snippet!r}")
        for child in node.children:
            walk(child)

    walk(parser.parse(source.encode("utf-8")).root_node)
    return found


def here_string_bodies(source: str) -> list[str]:
    """Scripts a template writes out and runs (single-quoted here-strings): they must parse too."""
    return re.findall(r"@'\n(.*?)\n'@", source, flags=re.DOTALL)


POWERSHELL_FILES = [*sorted(SCRIPTS.glob("*.ps1")), VM / "bootstrap.ps1"]


@pytest.mark.parametrize("path", POWERSHELL_FILES, ids=lambda p: p.name)
def test_powershell_files_parse_without_errors(powershell_parser: Any, path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert syntax_errors(powershell_parser, source) == [], path
    for body in here_string_bodies(source):
        assert syntax_errors(powershell_parser, body) == [], f"here-string in {path.name}"


@pytest.mark.parametrize("name", sorted(EXPECTED_SCRIPTS))
def test_composed_scripts_and_the_sent_bootstrap_parse(powershell_parser: Any, name: str) -> None:
    assert syntax_errors(powershell_parser, script_text(name)) == []
    sent_bootstrap = base64.b64decode(BOOTSTRAP_ARGV[-1]).decode("utf-16-le")
    assert syntax_errors(powershell_parser, sent_bootstrap) == []


def test_the_syntax_check_catches_broken_powershell(powershell_parser: Any) -> None:
    fixed = "param($P)\nif ($P.x -eq 1) {\n    Write-Output 'closed'\n}\n"
    broken = "param($P)\nif ($P.x -eq 1 {\n    Write-Output 'unclosed'\n"
    assert syntax_errors(powershell_parser, fixed) == []
    errors = syntax_errors(powershell_parser, broken)
    assert errors, "a missing ')' and '}' must be reported"
    assert re.match(r"\d+:\d+ (ERROR|MISSING) ", errors[0])


# --- vm/ -----------------------------------------------------------------------------------------


def test_autounattend_is_well_formed_and_runs_bootstrap_at_first_logon() -> None:
    tree = ElementTree.parse(VM / "packer" / "autounattend.xml")
    ns = {"u": "urn:schemas-microsoft-com:unattend"}
    commands = [e.text or "" for e in tree.getroot().iterfind(".//u:FirstLogonCommands//u:CommandLine", ns)]
    assert any("-File C:\\lkdh\\bootstrap.ps1" in command for command in commands)


def test_autounattend_placeholders_are_exactly_what_packer_passes() -> None:
    answer_file = (VM / "packer" / "autounattend.xml").read_text()
    hcl = (VM / "packer" / "windows.pkr.hcl").read_text()
    used = set(re.findall(r"\$\{(?:textencodebase64\(\")?\$?\{?([a-z_]+)\}?", answer_file))
    call = re.search(r'templatefile\("\$\{path\.root\}/autounattend\.xml", \{(.*?)\}\)', hcl, re.DOTALL)
    assert call is not None
    passed = set(re.findall(r"^\s*([a-z_]+)\s*=", call.group(1), re.MULTILINE))
    assert used == passed == {"admin_user", "admin_password", "image_name"}
    assert "admin_password" not in re.sub(r"\$\{[^}]*\}", "", answer_file.split("-->", 1)[1])


@pytest.mark.parametrize("name", sorted(EXPECTED_SCRIPTS))
def test_no_native_stderr_is_redirected_while_errors_are_terminating(name: str) -> None:
    """Under the bootstrap's $ErrorActionPreference = 'Stop', Windows PowerShell 5.1 turns each stderr
    line of a native command redirected with 2>&1 into a terminating NativeCommandError (shutdown.exe
    writes one on success): every 2>&1 must sit in a scope that sets 'Continue' first."""
    lines = script_text(name).splitlines()
    for number, line in enumerate(lines):
        if "2>&1" in line.split("#")[0]:
            scope = "\n".join(lines[max(0, number - 3) : number])
            assert "$ErrorActionPreference = 'Continue'" in scope, f"{name}:{number + 1}: {line.strip()}"


def test_bootstrap_keeps_a_crash_looping_vm_out_of_automatic_repair() -> None:
    assert "/set '{current}' bootstatuspolicy ignoreallfailures" in (VM / "bootstrap.ps1").read_text()


def test_autounattend_carries_a_generic_key_shown_only_on_error() -> None:
    tree = ElementTree.parse(VM / "packer" / "autounattend.xml")
    ns = {"u": "urn:schemas-microsoft-com:unattend"}
    (key,) = tree.getroot().iterfind(".//u:UserData/u:ProductKey", ns)
    assert key.findtext("u:WillShowUI", namespaces=ns) == "OnError"
    assert re.fullmatch(r"([A-Z0-9]{5}-){4}[A-Z0-9]{5}", key.findtext("u:Key", namespaces=ns) or "")
