"""The carcloud signal catalog: which VSS signals cars may report, and how values are checked.

The catalog is the subset of COVESA VSS 5.1 that connected cars in carcloud report. Each
entry keeps the VSS path, datatype, unit, allowed values and description exactly as VSS 5.1
defines them. Numeric signals always carry ``min``/``max`` bounds: VSS's own bounds where
VSS declares them, otherwise plausible bounds chosen by carcloud (``bounds_source``).

:meth:`SignalCatalog.validate` sits on the ingest hot path. One validator closure is compiled
per path when the catalog is built, so validating a value is a dict lookup plus a call, and
the error message is only worked out when a value is rejected.
"""

from __future__ import annotations

import enum
import functools
import importlib.resources
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeAlias

from carcloud_agent.errors import ValidationError

__all__ = [
    "SignalCatalog",
    "SignalSpec",
    "SignalValue",
    "SignalValueError",
    "Validator",
    "ValueKind",
    "default_catalog",
    "kind_for_datatype",
]

SignalValue: TypeAlias = float | int | bool | str | list[str]
"""A validated, normalized signal value."""

Validator: TypeAlias = Callable[[object], SignalValue]
"""Checks one raw value for one signal; returns it normalized or raises SignalValueError."""


class ValueKind(enum.Enum):
    """The Python shape of a signal's values, derived from its VSS datatype."""

    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    STRING = "string"
    STRING_LIST = "string_list"


# Inclusive value range of each VSS integer datatype.
_INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}

# Largest finite magnitude of each VSS floating-point datatype.
_FLOAT_LIMITS: dict[str, float] = {
    "float": 3.4028234663852886e38,  # IEEE 754 binary32
    "double": 1.7976931348623157e308,  # IEEE 754 binary64
}

_KINDS: dict[str, ValueKind] = {
    **dict.fromkeys(_FLOAT_LIMITS, ValueKind.NUMBER),
    **dict.fromkeys(_INTEGER_RANGES, ValueKind.INTEGER),
    "boolean": ValueKind.BOOLEAN,
    "string": ValueKind.STRING,
    "string[]": ValueKind.STRING_LIST,
}

_BOUNDS_SOURCES = ("vss", "carcloud")


def kind_for_datatype(datatype: str) -> ValueKind:
    """Map a VSS datatype (``float``, ``uint8``, ``string[]``...) to its ValueKind.

    Raises ValueError for datatypes the catalog does not support (other arrays, structs).
    """
    try:
        return _KINDS[datatype]
    except KeyError:
        supported = ", ".join(_KINDS)
        raise ValueError(
            f"unsupported VSS datatype {datatype!r} (supported: {supported})"
        ) from None


class SignalValueError(ValidationError, ValueError):
    """A value that does not fit its signal, or a path that is not in the catalog.

    ``path`` is the signal path and ``reason`` says what is wrong; the message is
    ``"<path>: <reason>"``, e.g. ``"Vehicle.Speed: expected a number, got string 'fast'"``.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[SignalValueError], tuple[str, str]]:
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """One catalog entry: a VSS leaf and the rules its values must follow.

    ``min``/``max`` are inclusive; ``bounds_source`` says who chose them (``"vss"`` or
    ``"carcloud"``) and is None for signals without bounds. Construction checks that the
    fields are consistent with each other and with the datatype, and raises ValueError if not.
    """

    path: str
    datatype: str
    kind: ValueKind
    unit: str | None
    min: float | None
    max: float | None
    allowed: tuple[str, ...] | None
    description: str
    bounds_source: str | None = None

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError(f"invalid catalog entry {self.path!r}: {'; '.join(problems)}")

    def _problems(self) -> Iterator[str]:
        if not isinstance(self.path, str) or not self.path.startswith("Vehicle."):
            yield "path must be a string starting with 'Vehicle.'"
        try:
            expected_kind = kind_for_datatype(self.datatype)
        except ValueError as exc:
            yield str(exc)
            return
        if self.kind is not expected_kind:
            yield f"kind {self.kind.name} does not match datatype {self.datatype!r}"
            return
        numeric = expected_kind in (ValueKind.NUMBER, ValueKind.INTEGER)
        for name, bound in (("min", self.min), ("max", self.max)):
            if bound is None:
                continue
            if not numeric:
                yield f"{name} is only allowed for numeric signals"
            elif isinstance(bound, bool) or not isinstance(bound, int | float):
                yield f"{name} must be a number, got {bound!r}"
            elif not math.isfinite(bound):
                yield f"{name} must be finite, got {bound!r}"
            elif not _type_low(self.datatype) <= bound <= _type_high(self.datatype):
                yield f"{name} {_fmt(bound)} is outside the {self.datatype} range"
        if (
            numeric
            and isinstance(self.min, int | float)
            and isinstance(self.max, int | float)
            and self.min > self.max
        ):
            yield f"min {_fmt(self.min)} is greater than max {_fmt(self.max)}"
        if self.bounds_source is not None and self.bounds_source not in _BOUNDS_SOURCES:
            yield f"bounds_source must be one of {_BOUNDS_SOURCES} or None"
        if self.bounds_source is not None and self.min is None and self.max is None:
            yield "bounds_source is set but there are no bounds"
        if self.allowed is not None:
            if expected_kind not in (ValueKind.STRING, ValueKind.STRING_LIST):
                yield "allowed values are only supported for string signals"
            elif not isinstance(self.allowed, tuple) or not all(
                isinstance(item, str) for item in self.allowed
            ):
                yield "allowed must be a tuple of strings"
            elif not self.allowed:
                yield "allowed must not be empty"


def _type_low(datatype: str) -> float:
    if datatype in _INTEGER_RANGES:
        return _INTEGER_RANGES[datatype][0]
    return -_FLOAT_LIMITS[datatype]


def _type_high(datatype: str) -> float:
    if datatype in _INTEGER_RANGES:
        return _INTEGER_RANGES[datatype][1]
    return _FLOAT_LIMITS[datatype]


# --- error messages (only computed on the slow, rejecting path) --------------------------

_MAX_SHOWN = 60


def _fmt(number: float) -> str:
    """Format a number for a message: 400.0 -> '400', 12.5 -> '12.5', 10**400 -> '~1e+400'."""
    if isinstance(number, float):
        if number.is_integer() and abs(number) < 1e16:
            return str(int(number))
        return str(number)
    if abs(number) >= 10**20:  # huge ints: short, and str() may refuse them outright
        return f"{'-' if number < 0 else ''}~1e+{int(math.log10(abs(number)))}"
    return str(number)


def _describe(value: object) -> str:
    """Name a rejected value's type and show (a shortened form of) the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, str):
        kind = "string"
    elif isinstance(value, int | float):
        return f"number {_fmt(value) if isinstance(value, int) else repr(value)}"
    elif isinstance(value, list | tuple):
        kind = "list"
    elif isinstance(value, dict):
        kind = "object"
    else:
        kind = type(value).__name__
    shown = repr(value)
    if len(shown) > _MAX_SHOWN:
        shown = shown[: _MAX_SHOWN - 3] + "..."
    return f"{kind} {shown}"


def _with_unit(number: float, unit: str | None) -> str:
    return f"{_fmt(number)} {unit}" if unit else _fmt(number)


def _range_reason(spec: SignalSpec, value: float, low: float, high: float, expected: str) -> str:
    if isinstance(value, float) and math.isnan(value):
        return f"expected {expected}, got NaN"
    if isinstance(value, float) and math.isinf(value):
        return f"expected {expected}, got {'-' if value < 0 else ''}infinity"
    if value < low:
        which, bound = "below the minimum", low
        from_type = spec.min is None
    else:
        which, bound = "above the maximum", high
        from_type = spec.max is None
    suffix = f" (the {spec.datatype} range)" if from_type else ""
    return f"{_fmt(value)} is {which} {_with_unit(bound, spec.unit)}{suffix}"


def _number_reason(spec: SignalSpec, value: object, low: float, high: float) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {_describe(value)}"
    return _range_reason(spec, value, low, high, "a finite number")


def _integer_reason(spec: SignalSpec, value: object, low: float, high: float) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected an integer, got {_describe(value)}"
    if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
        return f"expected an integer, got {_fmt(value)}"
    return _range_reason(spec, value, low, high, "an integer")


def _string_reason(spec: SignalSpec, value: object) -> str:
    if not isinstance(value, str):
        return f"expected a string, got {_describe(value)}"
    return f"{_describe(value)} is not one of the allowed values {_allowed_text(spec)}"


def _string_list_reason(spec: SignalSpec, value: object) -> str:
    if not isinstance(value, list | tuple):
        return f"expected a list of strings, got {_describe(value)}"
    for index, item in enumerate(value):
        if not isinstance(item, str):
            return f"expected a list of strings, item {index} is {_describe(item)}"
        if spec.allowed is not None and item not in spec.allowed:
            return (
                f"item {index} ({_describe(item)}) is not one of the allowed values "
                f"{_allowed_text(spec)}"
            )
    return "expected a list of strings"  # pragma: no cover - validators only call on failure


def _allowed_text(spec: SignalSpec) -> str:
    allowed = spec.allowed or ()
    return ", ".join(allowed) if len(allowed) <= 12 else ", ".join(allowed[:12]) + ", ..."


# --- validator compilation ------------------------------------------------------------


def _number_validator(spec: SignalSpec) -> Validator:
    path = spec.path
    limit = _FLOAT_LIMITS[spec.datatype]
    # Finite bounds make the single range comparison also reject NaN and +/-inf.
    low = -limit if spec.min is None else spec.min
    high = limit if spec.max is None else spec.max

    def validate_number(value: object) -> float:
        if type(value) is float:
            if low <= value <= high:
                return value
        elif type(value) is int:
            if low <= value <= high:
                return float(value)
        elif (
            isinstance(value, int | float)  # int/float subclasses, e.g. IntEnum
            and not isinstance(value, bool)
            and low <= value <= high
        ):
            return float(value)
        raise SignalValueError(path, _number_reason(spec, value, low, high))

    return validate_number


def _integer_validator(spec: SignalSpec) -> Validator:
    path = spec.path
    type_low, type_high = _INTEGER_RANGES[spec.datatype]
    low: float = type_low if spec.min is None else max(type_low, spec.min)
    high: float = type_high if spec.max is None else min(type_high, spec.max)

    def validate_integer(value: object) -> int:
        if type(value) is int:
            if low <= value <= high:
                return value
        elif type(value) is float:
            # JSON encoders may send 42.0 for 42: accept integral floats only.
            if value.is_integer() and low <= value <= high:
                return int(value)
        elif (
            isinstance(value, int)  # int subclasses, e.g. IntEnum
            and not isinstance(value, bool)
            and low <= value <= high
        ):
            return int(value)
        raise SignalValueError(path, _integer_reason(spec, value, low, high))

    return validate_integer


def _boolean_validator(spec: SignalSpec) -> Validator:
    path = spec.path

    def validate_boolean(value: object) -> bool:
        if type(value) is bool:
            return value
        raise SignalValueError(path, f"expected a boolean, got {_describe(value)}")

    return validate_boolean


def _string_validator(spec: SignalSpec) -> Validator:
    path = spec.path
    allowed = None if spec.allowed is None else frozenset(spec.allowed)

    def validate_string(value: object) -> str:
        if type(value) is str:
            if allowed is None or value in allowed:
                return value
        elif isinstance(value, str):
            plain = str.__str__(value)  # a str subclass (e.g. StrEnum) as a plain str
            if allowed is None or plain in allowed:
                return plain
        raise SignalValueError(path, _string_reason(spec, value))

    return validate_string


def _string_list_validator(spec: SignalSpec) -> Validator:
    path = spec.path
    allowed = None if spec.allowed is None else frozenset(spec.allowed)

    def validate_string_list(value: object) -> list[str]:
        if isinstance(value, list | tuple):
            items: list[str] = []
            for item in value:
                if type(item) is str:
                    items.append(item)
                elif isinstance(item, str):
                    items.append(str.__str__(item))  # a str subclass as a plain str
                else:
                    break
            else:
                if allowed is None or allowed.issuperset(items):
                    return items
        raise SignalValueError(path, _string_list_reason(spec, value))

    return validate_string_list


_COMPILERS: dict[ValueKind, Callable[[SignalSpec], Validator]] = {
    ValueKind.NUMBER: _number_validator,
    ValueKind.INTEGER: _integer_validator,
    ValueKind.BOOLEAN: _boolean_validator,
    ValueKind.STRING: _string_validator,
    ValueKind.STRING_LIST: _string_list_validator,
}

_UNKNOWN_PATH = "unknown signal path (not in the carcloud signal catalog)"


# --- the catalog ------------------------------------------------------------------------


class SignalCatalog:
    """An immutable set of SignalSpecs, keyed by VSS path, with precompiled validators."""

    __slots__ = ("_specs", "_validators")

    def __init__(self, specs: Iterable[SignalSpec]) -> None:
        by_path: dict[str, SignalSpec] = {}
        for spec in specs:
            if not isinstance(spec, SignalSpec):
                raise TypeError(f"expected SignalSpec, got {type(spec).__name__}")
            if spec.path in by_path:
                raise ValueError(f"duplicate catalog entry {spec.path!r}")
            by_path[spec.path] = spec
        self._specs: dict[str, SignalSpec] = by_path
        self._validators: dict[str, Validator] = {
            path: _COMPILERS[spec.kind](spec) for path, spec in by_path.items()
        }

    @classmethod
    def from_json(cls, text: str | bytes) -> SignalCatalog:
        """Build a catalog from a signals.json document (see carcloud/catalog/signals.json)."""
        return cls(_parse_document(json.loads(text)))

    def get(self, path: str) -> SignalSpec | None:
        """The spec for ``path``, or None if the path is not in the catalog."""
        return self._specs.get(path)

    def validator(self, path: str) -> Validator:
        """The compiled validator for ``path``, for callers that validate one path in a loop.

        Raises SignalValueError if the path is not in the catalog.
        """
        try:
            return self._validators[path]
        except (KeyError, TypeError):
            raise _unknown_path(path) from None

    def validate(self, path: str, value: object) -> SignalValue:
        """Check ``value`` against the signal at ``path`` and return it normalized.

        Numbers come back as float (ints are accepted for float signals), integers as int
        (integral floats such as 42.0 are accepted), booleans as bool, strings as str and
        string lists as a new list of str. Booleans are never accepted as numbers, and
        NaN/infinity are always rejected. Raises SignalValueError naming the path and reason.
        """
        try:
            check = self._validators[path]
        except (KeyError, TypeError):
            raise _unknown_path(path) from None
        return check(value)

    @property
    def validators(self) -> Mapping[str, Validator]:
        """Path to compiled validator, for hot loops that look paths up themselves."""
        return MappingProxyType(self._validators)

    @property
    def paths(self) -> tuple[str, ...]:
        """All signal paths, in catalog order."""
        return tuple(self._specs)

    def __contains__(self, path: object) -> bool:
        try:
            return path in self._specs
        except TypeError:  # unhashable
            return False

    def __iter__(self) -> Iterator[SignalSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"<SignalCatalog with {len(self._specs)} signals>"


def _unknown_path(path: object) -> SignalValueError:
    if isinstance(path, str):
        return SignalValueError(path, _UNKNOWN_PATH)
    return SignalValueError(repr(path), f"signal path must be a string, got {_describe(path)}")


# --- signals.json parsing ---------------------------------------------------------------

_ENTRY_KEYS = frozenset(
    ("path", "datatype", "unit", "min", "max", "allowed", "description", "bounds_source")
)
_REQUIRED_KEYS = frozenset(("path", "datatype", "description"))


def _parse_document(document: object) -> list[SignalSpec]:
    if not isinstance(document, Mapping) or not isinstance(document.get("signals"), list):
        raise ValueError("a signal catalog document must be an object with a 'signals' list")
    signals: list[object] = document["signals"]
    return [_parse_entry(index, entry) for index, entry in enumerate(signals)]


def _parse_entry(index: int, entry: object) -> SignalSpec:
    where = f"catalog entry {index}"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: must be an object")
    if isinstance(entry.get("path"), str):
        where = f"catalog entry {entry['path']!r}"
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    missing = _REQUIRED_KEYS - set(entry)
    if missing:
        raise ValueError(f"{where}: missing keys {sorted(missing)}")
    path = _as_str(where, "path", entry["path"])
    datatype = _as_str(where, "datatype", entry["datatype"])
    description = _as_str(where, "description", entry["description"])
    unit = _as_optional_str(where, "unit", entry.get("unit"))
    bounds_source = _as_optional_str(where, "bounds_source", entry.get("bounds_source"))
    low = _as_optional_number(where, "min", entry.get("min"))
    high = _as_optional_number(where, "max", entry.get("max"))
    allowed_raw = entry.get("allowed")
    allowed: tuple[str, ...] | None = None
    if allowed_raw is not None:
        if not isinstance(allowed_raw, list) or not all(isinstance(a, str) for a in allowed_raw):
            raise ValueError(f"{where}: 'allowed' must be a list of strings or null")
        allowed = tuple(allowed_raw)
    try:
        kind = kind_for_datatype(datatype)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return SignalSpec(
        path=path,
        datatype=datatype,
        kind=kind,
        unit=unit,
        min=low,
        max=high,
        allowed=allowed,
        description=description,
        bounds_source=bounds_source,
    )


def _as_str(where: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: {key!r} must be a non-empty string")
    return value


def _as_optional_str(where: str, key: str, value: object) -> str | None:
    return None if value is None else _as_str(where, key, value)


def _as_optional_number(where: str, key: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: {key!r} must be a number or null")
    return float(value)


@functools.cache
def default_catalog() -> SignalCatalog:
    """The catalog shipped with carcloud (carcloud/catalog/signals.json), loaded once."""
    resource = importlib.resources.files("carcloud_agent.catalog").joinpath("signals.json")
    return SignalCatalog.from_json(resource.read_text(encoding="utf-8"))
