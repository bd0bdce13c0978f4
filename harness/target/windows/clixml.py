"""Readable text from PowerShell's CLIXML error stream.

When PowerShell runs with redirected stderr (always the case over WinRM or SSH) it does not write its
errors as text: it serializes the error records as CLIXML, announced by a `#< CLIXML` line, e.g.

    #< CLIXML
    <Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">
      <S S="Error">Cannot find path 'C:\\x' because it does not exist._x000D__x000A_</S> ...</Objs>

Each `<S S="Error">` element carries one line; control characters and characters outside the BMP are
escaped as UTF-16 code units `_xHHHH_`, and a literal `_x` is escaped as `_x005F_x` (MS-PSRP 2.2.5.3.2).
Progress records (`<Obj S="progress">`) are noise for a test report and are dropped.

`CommandResult.stderr` keeps the raw bytes (the evidence); this module only makes them readable.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from harness.target.windows.session import CommandResult

CLIXML_MARKER = "#< CLIXML"
POWERSHELL_NAMESPACE = "http://schemas.microsoft.com/powershell/2004/04"

_ESCAPED_CODE_UNIT = re.compile(r"_x([0-9A-Fa-f]{4})_")
_OBJS_END = "</Objs>"


def unescape_clixml_string(text: str) -> str:
    """Undo CLIXML's `_xHHHH_` escaping; surrogate pairs are joined, a lone surrogate becomes U+FFFD."""
    code_units = _ESCAPED_CODE_UNIT.sub(lambda match: chr(int(match.group(1), 16)), text)
    # Escaped surrogates arrive as two separate code points; a UTF-16 round trip pairs them up.
    return code_units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _decode_bytes(data: bytes) -> str:
    """Bytes from a Windows console: UTF-8 when the shell ran with code page 65001, else the OEM page.

    cp437 maps every byte, so decoding never fails and no byte of evidence is dropped.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp437")


def _stream_lines(objs_xml: str, streams: frozenset[str]) -> list[str] | None:
    """The unescaped text of every `<S>` in the wanted streams, or None when the XML does not parse."""
    try:
        root = ET.fromstring(objs_xml)
    except ET.ParseError:
        return None
    string_tag = f"{{{POWERSHELL_NAMESPACE}}}S"
    return [
        unescape_clixml_string(element.text or "")
        for element in root
        if element.tag == string_tag and element.get("S", "").lower() in streams
    ]


def decode_clixml(text: str, streams: frozenset[str] = frozenset({"error"})) -> str:
    """Replace every CLIXML block in `text` with the plain lines of the wanted streams.

    Text outside the blocks (a native program's own stderr written before PowerShell's) is kept as is,
    and a block that does not parse is kept raw: a report must never lose what the guest said.
    Stream names compare case-insensitively (PowerShell writes `Error` but `warning`, `verbose`).
    """
    wanted = frozenset(name.lower() for name in streams)
    pieces: list[str] = []
    position = 0
    while (marker := text.find(CLIXML_MARKER, position)) != -1:
        start = text.find("<Objs", marker)
        end = text.find(_OBJS_END, start) if start != -1 else -1
        if end == -1:
            break
        end += len(_OBJS_END)
        lines = _stream_lines(text[start:end], wanted)
        pieces.append(text[position:marker])
        pieces.append(text[marker:end] if lines is None else "".join(lines))
        position = end
        # The block ends its line; drop that line break so decoded text is not followed by a blank line.
        for newline in ("\r\n", "\n"):
            if text.startswith(newline, position):
                position += len(newline)
                break
    pieces.append(text[position:])
    return "".join(pieces)


def stderr_text(result: CommandResult | bytes) -> str:
    """A command's stderr as readable text: CLIXML decoded, anything else decoded unchanged."""
    raw = result.stderr if isinstance(result, CommandResult) else result
    return decode_clixml(_decode_bytes(raw))
