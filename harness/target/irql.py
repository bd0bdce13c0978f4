"""Interrupt request levels a scenario step may run at (DMF_FACTS.md F14, F28-F31)."""

from __future__ import annotations

from enum import IntEnum


class Irql(IntEnum):
    """The three software IRQLs a driver can raise to; the values are the x64 kernel's."""

    PASSIVE_LEVEL = 0
    APC_LEVEL = 1
    DISPATCH_LEVEL = 2

    @classmethod
    def parse(cls, text: str | int) -> Irql:
        """Accept 'DISPATCH_LEVEL', 'dispatch', 'DISPATCH' or 2; raise ValueError naming the choices."""
        if isinstance(text, bool):
            raise ValueError(f"IRQL must be a name or 0-2, not {text!r}")
        if isinstance(text, int):
            try:
                return cls(text)
            except ValueError:
                raise ValueError(f"IRQL {text} is not one of 0 (PASSIVE), 1 (APC), 2 (DISPATCH)") from None
        key = text.strip().upper()
        if not key.endswith("_LEVEL"):
            key += "_LEVEL"
        try:
            return cls[key]
        except KeyError:
            choices = ", ".join(member.name for member in cls)
            raise ValueError(f"unknown IRQL {text!r}; expected one of {choices}") from None
