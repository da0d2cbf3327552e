"""How signal values map onto typed columns, by the kind the catalog declares."""

from __future__ import annotations

import json
import re

from carcloud.catalog import SignalCatalog, ValueKind
from carcloud.ingest.models import SignalValue

# Storage kind per catalog kind, and the SQL column type that holds it.
KIND_OF: dict[ValueKind, str] = {
    ValueKind.NUMBER: "num",
    ValueKind.INTEGER: "int",
    ValueKind.BOOLEAN: "bool",
    ValueKind.STRING: "str",
    ValueKind.STRING_LIST: "list",
}
SQL_TYPE = {"num": "REAL", "int": "INTEGER", "bool": "INTEGER", "str": "TEXT", "list": "TEXT"}


def column_name(path: str) -> str:
    """A safe SQL identifier for a VSS path: Vehicle.Speed -> s_vehicle_speed."""
    name = "s_" + re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_")
    if not re.fullmatch(r"[a-z0-9_]{1,60}", name):
        # Very long paths keep a readable head and a stable hash tail.
        import hashlib

        name = name[:48] + "_" + hashlib.sha256(path.encode()).hexdigest()[:10]
    return name


def signal_columns(catalog: SignalCatalog) -> dict[str, tuple[str, str]]:
    """Path -> (column, storage kind) for every catalog signal."""
    return {spec.path: (column_name(spec.path), KIND_OF[spec.kind]) for spec in catalog}


def encode(kind: str, value: SignalValue) -> float | int | str:
    """The column value of a validated signal value."""
    if kind == "list":
        return json.dumps(value, separators=(",", ":"))
    if kind == "bool":
        return 1 if value else 0
    return value  # type: ignore[return-value]


def decode(kind: str, raw: object) -> SignalValue:
    """The signal value a column holds, in the type its signal declares."""
    if kind == "bool":
        return bool(raw)
    if kind == "list":
        return [str(item) for item in json.loads(str(raw))]
    if kind == "num":
        return float(raw)  # type: ignore[arg-type]
    if kind == "int":
        return int(raw)  # type: ignore[call-overload, no-any-return]
    return str(raw)
