"""CLIXML error streams become readable text; the samples have the shapes Windows PowerShell 5.1 writes."""

from __future__ import annotations

import pytest

from harness.target.windows.clixml import decode_clixml, stderr_text, unescape_clixml_string
from harness.target.windows.session import CommandResult

HEADER = b"#< CLIXML\r\n"
OBJS_OPEN = b'<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'

# `Write-Error "Error"` run through powershell.exe over WinRM: the console is 80 columns wide, so
# PowerShell wraps long lines with " _x000D__x000A_" and continues them in the next <S>.
WRITE_ERROR = (
    HEADER
    + OBJS_OPEN
    + b'<S S="Error">Write-Error "Error" : Error_x000D__x000A_</S>'
    + b'<S S="Error">    + CategoryInfo          : NotSpecified: (:) [Write-Error], WriteErrorExcep '
    + b"_x000D__x000A_</S>"
    + b'<S S="Error">   tion_x000D__x000A_</S>'
    + b'<S S="Error">    + FullyQualifiedErrorId : Microsoft.PowerShell.Commands.WriteErrorExceptio '
    + b"_x000D__x000A_</S>"
    + b'<S S="Error">   n_x000D__x000A_</S>'
    + b'<S S="Error"> _x000D__x000A_</S>'
    + b"</Objs>"
)

# An unknown command, with the progress record PowerShell emits the first time modules load.
COMMAND_NOT_FOUND = (
    HEADER
    + OBJS_OPEN
    + b'<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T>'
    + b'<T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for'
    + b" first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD>"
    + b"</PR></MS></Obj>"
    + b"<S S=\"Error\">lkdctl : The term 'lkdctl' is not recognized as the name of a cmdlet."
    + b"_x000D__x000A_</S>"
    + b'<S S="Error">At line:1 char:1_x000D__x000A_</S>'
    + b'<S S="Error">+ lkdctl store -&gt; 0x10_x000D__x000A_</S>'
    + b'<S S="Error">    + CategoryInfo          : ObjectNotFound: (lkdctl:String) [], '
    + b"CommandNotFoundException"
    + b"_x000D__x000A_</S>"
    + b"</Objs>"
)


def test_write_error_sample_becomes_the_lines_powershell_printed() -> None:
    assert stderr_text(WRITE_ERROR) == (
        'Write-Error "Error" : Error\r\n'
        "    + CategoryInfo          : NotSpecified: (:) [Write-Error], WriteErrorExcep \r\n"
        "   tion\r\n"
        "    + FullyQualifiedErrorId : Microsoft.PowerShell.Commands.WriteErrorExceptio \r\n"
        "   n\r\n"
        " \r\n"
    )


def test_progress_records_are_dropped_and_xml_entities_decoded() -> None:
    text = stderr_text(COMMAND_NOT_FOUND)
    assert "Preparing modules" not in text
    assert text.splitlines() == [
        "lkdctl : The term 'lkdctl' is not recognized as the name of a cmdlet.",
        "At line:1 char:1",
        "+ lkdctl store -> 0x10",
        "    + CategoryInfo          : ObjectNotFound: (lkdctl:String) [], CommandNotFoundException",
    ]


def test_stderr_text_reads_a_command_result_and_leaves_its_raw_bytes_alone() -> None:
    result = CommandResult(exit_code=1, stdout=b"", stderr=WRITE_ERROR)
    assert stderr_text(result).startswith('Write-Error "Error" : Error\r\n')
    assert result.stderr.startswith(b"#< CLIXML")


@pytest.mark.parametrize(
    ("escaped", "plain"),
    [
        ("line_x000D__x000A_", "line\r\n"),
        ("tab_x0009_here", "tab\there"),
        ("literal _x005F_x000D_ stays", "literal _x000D_ stays"),  # PowerShell escapes a real "_x" too
        ("lower case _x000d__x000a_", "lower case \r\n"),
        ("emoji _xD83D__xDE00_", "emoji \U0001f600"),  # a surrogate pair, escaped unit by unit
        ("lone _xD83D_ surrogate", "lone \ufffd surrogate"),
        ("not hex _x00G1_", "not hex _x00G1_"),
        ("no escape x000D", "no escape x000D"),
    ],
)
def test_unescape(escaped: str, plain: str) -> None:
    assert unescape_clixml_string(escaped) == plain


def test_text_around_the_block_is_kept() -> None:
    native = b"lkdctl: device not found\r\n"
    data = native + WRITE_ERROR + b"\r\ntrailing native line\r\n"
    text = stderr_text(data)
    assert text.startswith("lkdctl: device not found\r\nWrite-Error")
    assert text.endswith(" \r\ntrailing native line\r\n")
    assert "<Objs" not in text


def test_two_blocks_are_both_decoded() -> None:
    text = stderr_text(WRITE_ERROR + WRITE_ERROR)
    assert text.count('Write-Error "Error" : Error') == 2
    assert "CLIXML" not in text


def test_other_streams_only_when_asked_for_case_insensitively() -> None:
    data = (
        "#< CLIXML\r\n"
        + OBJS_OPEN.decode()
        + '<S S="warning">disk almost full</S><S S="Error">boom</S></Objs>'
    )
    assert decode_clixml(data) == "boom"
    assert decode_clixml(data, frozenset({"Warning"})) == "disk almost full"
    assert decode_clixml(data, frozenset({"warning", "error"})) == "disk almost fullboom"


def test_empty_block_decodes_to_nothing() -> None:
    assert stderr_text(HEADER + OBJS_OPEN + b"</Objs>") == ""


def test_a_block_that_does_not_parse_is_kept_raw() -> None:
    broken = HEADER + OBJS_OPEN + b'<S S="Error">unclosed</Objs>'
    assert stderr_text(broken) == broken.decode()


def test_a_truncated_block_is_kept_raw() -> None:
    truncated = WRITE_ERROR[:120]
    assert stderr_text(truncated) == truncated.decode()


def test_plain_stderr_passes_through() -> None:
    assert stderr_text(b"Access is denied.\r\n") == "Access is denied.\r\n"


def test_non_utf8_bytes_fall_back_to_the_oem_code_page() -> None:
    # "Zugriff verweigert für" from a German console in code page 437: 0x81 is "ü" there.
    assert stderr_text(b"Zugriff verweigert f\x81r C:\\dumps") == "Zugriff verweigert für C:\\dumps"
