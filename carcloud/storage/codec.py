"""How signal values map onto the two value columns every backend has."""

from __future__ import annotations

import json

from carcloud.storage.models import SignalValue

# A signal's kind is fixed by the catalog; it is kept per signal, not per row.
KINDS = ("num", "int", "bool", "str", "list")


def kind_of(value: SignalValue) -> str:
    """The storage kind of a validated value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "num"
    if isinstance(value, str):
        return "str"
    return "list"


def encode_value(value: SignalValue) -> tuple[float | None, str | None]:
    """(value_num, value_text) for a validated value."""
    if isinstance(value, bool | int | float):
        return float(value), None
    if isinstance(value, str):
        return None, value
    return None, json.dumps(value, separators=(",", ":"))


def decode_value(kind: str, num: float | None, text: str | None) -> SignalValue:
    """The value a row holds, in the type its signal declares."""
    if kind == "num":
        return float(num) if num is not None else 0.0
    if kind == "int":
        return int(num) if num is not None else 0
    if kind == "bool":
        return bool(num)
    if kind == "str":
        return text or ""
    decoded = json.loads(text or "[]")
    return [str(item) for item in decoded]
