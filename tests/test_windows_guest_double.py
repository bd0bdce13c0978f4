"""The guest side of the Windows double, checked on this host: the command-line split that stands in
for the Microsoft C runtime's (the guest's sshd hands the harness's command line over as one string,
as Windows OpenSSH hands it to cmd.exe and powershell.exe)."""

from __future__ import annotations

import subprocess

import pytest
from windows_guest_double import windows_argv

from harness.target.windows import powershell
from harness.target.windows.ssh_session import windows_command_line


def test_the_bootstrap_command_line_splits_back_into_the_harness_argv() -> None:
    line = windows_command_line(powershell.BOOTSTRAP_ARGV)
    assert windows_argv(line) == list(powershell.BOOTSTRAP_ARGV)


@pytest.mark.parametrize(
    "argv",
    [
        ["C:\\Program Files\\lkdh\\lkdctl.exe", "--ioctl", "0x222004"],
        ["a b", "", "tab\there"],
        ['say "hi"', 'end\\"', "trailing\\", "two\\\\", 'mid\\\\"q'],
        ["\\\\server\\share\\x", "plain"],
    ],
)
def test_list2cmdline_quoting_round_trips(argv: list[str]) -> None:
    """subprocess.list2cmdline writes exactly the rules windows_argv reads (both document the MS C
    runtime's), so any argv survives the trip."""
    assert windows_argv(subprocess.list2cmdline(argv)) == argv


def test_the_documented_examples_split_as_the_c_runtime_does() -> None:
    """The table in "Parsing C command-line arguments" (learn.microsoft.com)."""
    assert windows_argv('"abc" d e') == ["abc", "d", "e"]
    assert windows_argv('a\\\\\\b d"e f"g h') == ["a\\\\\\b", "de fg", "h"]
    assert windows_argv('a\\\\\\"b c d') == ['a\\"b', "c", "d"]
    assert windows_argv('a\\\\\\\\"b c" d e') == ["a\\\\b c", "d", "e"]
    assert windows_argv('a"b"" c d') == ['ab" c d']
