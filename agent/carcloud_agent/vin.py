"""Vehicle identification numbers (ISO 3779), validated once at the edge."""

from __future__ import annotations

import re
from dataclasses import dataclass

from carcloud_agent.errors import ValidationError

# ISO 3779: 17 characters from digits and capital letters except I, O and Q.
_VIN_RE = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")


@dataclass(frozen=True, slots=True)
class Vin:
    """A 17-character VIN; safe to use as an MQTT topic level and a NATS token."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not _VIN_RE.fullmatch(self.value):
            raise ValidationError(describe_invalid_vin(self.value))

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, raw: str) -> Vin:
        """Parse a VIN typed by a person: surrounding space is dropped, case is upper."""
        return cls(raw.strip().upper()) if isinstance(raw, str) else cls(raw)


def is_valid_vin(raw: str) -> bool:
    """True when `raw` is exactly a valid VIN (no normalisation)."""
    return bool(_VIN_RE.fullmatch(raw))


def describe_invalid_vin(raw: object) -> str:
    """A message that says what is wrong with a VIN."""
    if not isinstance(raw, str):
        return f"VIN must be a string, got {type(raw).__name__}"
    if len(raw) != 17:
        return f"VIN {raw!r} has {len(raw)} characters; a VIN has exactly 17"
    bad = sorted({c for c in raw if not re.fullmatch(r"[A-HJ-NPR-Z0-9]", c)})
    return (
        f"VIN {raw!r} contains {', '.join(repr(c) for c in bad)}; "
        "allowed are digits and capital letters except I, O and Q (ISO 3779)"
    )
