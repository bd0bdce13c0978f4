"""What a failed expectation says: where in the scenario, what was expected, what the machine gave."""

from __future__ import annotations

from dataclasses import dataclass

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Mismatch:
    """One expectation that did not hold, with the evidence found on the machine or in the dump.

    `path` is relative to the step (e.g. ("expect", "dump", "contains", 0)) so the runner can name
    the YAML line that stated the expectation.
    """

    path: YamlPath
    message: str
    expected: str = ""
    found: str = ""

    def render(self) -> str:
        """The message with an expected/found diff underneath."""
        lines = [self.message]
        if self.expected or self.found:
            lines.append(f"    expected: {self.expected}")
            lines.append(f"    found:    {self.found}")
        return "\n".join(lines)
