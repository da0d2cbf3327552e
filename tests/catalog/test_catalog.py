"""Tests for the carcloud signal catalog: its content against VSS 5.1, and value validation."""

from __future__ import annotations

import enum
import functools
import importlib.resources
import json
import math
import pickle
from pathlib import Path
from typing import Any

import pytest

from carcloud.catalog import (
    SignalCatalog,
    SignalSpec,
    SignalValueError,
    ValueKind,
    default_catalog,
    kind_for_datatype,
)
from carcloud.errors import ValidationError

VSS_JSON = Path(__file__).resolve().parents[3] / "shared" / "vss" / "vss_v5.1.json"

INTEGER_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}

# The signals the project requires; each must be in the catalog under its VSS 5.1 path.
REQUIRED_SIGNALS = [
    "Vehicle.Speed",
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.CurrentLocation.Heading",
    "Vehicle.CurrentLocation.Altitude",
    "Vehicle.TraveledDistance",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed",
    "Vehicle.Powertrain.Range",
    "Vehicle.Powertrain.TractionBattery.Charging.IsCharging",
    "Vehicle.Powertrain.TractionBattery.Charging.ChargingPort.AnyPosition.IsChargingCableConnected",
    "Vehicle.Powertrain.TractionBattery.Charging.ChargeRate",
    "Vehicle.Powertrain.TractionBattery.Charging.ChargeCurrent.DC",
    "Vehicle.Powertrain.TractionBattery.Charging.ChargeVoltage.DC",
    "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit",
    "Vehicle.Powertrain.TractionBattery.Charging.TimeToComplete",
    "Vehicle.Powertrain.FuelSystem.RelativeLevel",
    "Vehicle.Powertrain.FuelSystem.Range",
    *(
        f"Vehicle.Cabin.Door.{row}.{side}.{leaf}"
        for row in ("Row1", "Row2")
        for side in ("DriverSide", "PassengerSide")
        for leaf in ("IsOpen", "IsLocked", "Window.Position")
    ),
    "Vehicle.Body.Trunk.Rear.IsOpen",
    "Vehicle.Body.Trunk.Rear.IsLocked",
    "Vehicle.Cabin.HVAC.AmbientAirTemperature",
    "Vehicle.Exterior.AirTemperature",
    "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature",
    "Vehicle.Cabin.HVAC.Station.Row1.Passenger.Temperature",
    "Vehicle.Cabin.HVAC.IsAirConditioningActive",
    "Vehicle.LowVoltageSystemState",
    *(
        f"Vehicle.Chassis.Axle.{row}.Wheel.{side}.Tire.Pressure"
        for row in ("Row1", "Row2")
        for side in ("Left", "Right")
    ),
    # VSS 5.1 deprecates Vehicle.OBD.DTCList, Vehicle.OBD.CoolantTemperature and
    # Vehicle.Powertrain.CombustionEngine.ECT; these are their replacements.
    "Vehicle.Diagnostics.DTCList",
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    "Vehicle.LowVoltageBattery.CurrentVoltage",
    "Vehicle.Powertrain.CombustionEngine.Speed",
    "Vehicle.Chassis.Accelerator.PedalPosition",
    "Vehicle.Chassis.Brake.PedalPosition",
    "Vehicle.IsMoving",
    "Vehicle.Chassis.ParkingBrake.IsEngaged",
    "Vehicle.Powertrain.Transmission.CurrentGear",
    "Vehicle.Powertrain.TractionBattery.Temperature.Average",
]


# --- fixtures ---------------------------------------------------------------------------


@functools.cache
def _vss_leaves() -> dict[str, dict[str, Any]]:
    if not VSS_JSON.is_file():
        pytest.fail(
            f"the VSS 5.1 catalog is missing: expected it at {VSS_JSON} "
            "(the 'shared' folder beside the repository)",
            pytrace=False,
        )
    tree = json.loads(VSS_JSON.read_text(encoding="utf-8"))
    leaves: dict[str, dict[str, Any]] = {}

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("type") == "branch":
            for name, child in node.get("children", {}).items():
                walk(child, f"{path}.{name}")
        else:
            leaves[path] = node

    for name, node in tree.items():
        walk(node, name)
    return leaves


@pytest.fixture(scope="module")
def vss() -> dict[str, dict[str, Any]]:
    return _vss_leaves()


@pytest.fixture(scope="module")
def raw_entries() -> list[dict[str, Any]]:
    text = (
        importlib.resources.files("carcloud_agent.catalog")
        .joinpath("signals.json")
        .read_text(encoding="utf-8")
    )
    document = json.loads(text)
    assert document["vss_version"] == "5.1"
    entries: list[dict[str, Any]] = document["signals"]
    return entries


@pytest.fixture(scope="module")
def catalog() -> SignalCatalog:
    return default_catalog()


def _specs_of(kind: ValueKind) -> list[SignalSpec]:
    return [spec for spec in default_catalog() if spec.kind is kind]


def _ids(specs: list[SignalSpec]) -> list[str]:
    return [spec.path for spec in specs]


NUMERIC_SPECS = _specs_of(ValueKind.NUMBER) + _specs_of(ValueKind.INTEGER)
NUMBER_SPECS = _specs_of(ValueKind.NUMBER)
INTEGER_SPECS = _specs_of(ValueKind.INTEGER)
BOOLEAN_SPECS = _specs_of(ValueKind.BOOLEAN)
STRING_SPECS = _specs_of(ValueKind.STRING)
ALLOWED_STRING_SPECS = [spec for spec in STRING_SPECS if spec.allowed]
STRING_LIST_SPECS = _specs_of(ValueKind.STRING_LIST)


def _rejected(catalog: SignalCatalog, path: str, value: object) -> str:
    with pytest.raises(SignalValueError) as info:
        catalog.validate(path, value)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert info.value.path == path
    assert message == f"{path}: {info.value.reason}"
    return info.value.reason


# --- catalog content against VSS 5.1 --------------------------------------------------------


def test_catalog_size_is_a_telematics_subset(catalog: SignalCatalog) -> None:
    assert 50 <= len(catalog) <= 80
    assert len({spec.path for spec in catalog}) == len(catalog)


def test_signals_json_entries_have_exactly_the_documented_keys(
    raw_entries: list[dict[str, Any]],
) -> None:
    keys = {"path", "datatype", "unit", "min", "max", "allowed", "description", "bounds_source"}
    for entry in raw_entries:
        assert set(entry) == keys, entry["path"]


def test_every_entry_is_a_vss_leaf_with_the_same_datatype_and_unit(
    catalog: SignalCatalog, vss: dict[str, dict[str, Any]]
) -> None:
    for spec in catalog:
        assert spec.path in vss, f"{spec.path} is not a VSS 5.1 leaf"
        node = vss[spec.path]
        assert spec.datatype == node["datatype"], spec.path
        assert spec.unit == node.get("unit"), spec.path
        assert spec.kind is kind_for_datatype(node["datatype"]), spec.path
        vss_allowed = node.get("allowed")
        assert spec.allowed == (None if vss_allowed is None else tuple(vss_allowed)), spec.path
        assert spec.description == node["description"], spec.path


def test_no_entry_is_deprecated_in_vss(
    catalog: SignalCatalog, vss: dict[str, dict[str, Any]]
) -> None:
    deprecated = {
        spec.path: vss[spec.path]["deprecation"]
        for spec in catalog
        if "deprecation" in vss[spec.path]
    }
    assert deprecated == {}


def test_bounds_lie_within_vss_bounds(
    catalog: SignalCatalog, vss: dict[str, dict[str, Any]]
) -> None:
    for spec in catalog:
        node = vss[spec.path]
        if "min" in node:
            assert spec.min is not None and spec.min >= node["min"], spec.path
        if "max" in node:
            assert spec.max is not None and spec.max <= node["max"], spec.path


def test_bounds_source_says_who_chose_the_bounds(
    raw_entries: list[dict[str, Any]], vss: dict[str, dict[str, Any]]
) -> None:
    for entry in raw_entries:
        node = vss[entry["path"]]
        numeric = kind_for_datatype(entry["datatype"]) in (ValueKind.NUMBER, ValueKind.INTEGER)
        if not numeric:
            assert entry["min"] is None and entry["max"] is None, entry["path"]
            assert entry["bounds_source"] is None, entry["path"]
            continue
        # Every numeric signal has bounds to validate against.
        assert entry["min"] is not None and entry["max"] is not None, entry["path"]
        assert entry["min"] < entry["max"], entry["path"]
        if entry["bounds_source"] == "vss":
            assert (entry["min"], entry["max"]) == (node.get("min"), node.get("max")), entry["path"]
        else:
            assert entry["bounds_source"] == "carcloud", entry["path"]
            # carcloud only chooses bounds where VSS declares none.
            assert "min" not in node and "max" not in node, entry["path"]


def test_bounds_fit_the_datatype(catalog: SignalCatalog) -> None:
    for spec in NUMERIC_SPECS:
        assert spec.min is not None and spec.max is not None
        if spec.datatype in INTEGER_RANGES:
            low, high = INTEGER_RANGES[spec.datatype]
            assert low <= spec.min <= spec.max <= high, spec.path


@pytest.mark.parametrize("path", REQUIRED_SIGNALS)
def test_required_signal_is_present(catalog: SignalCatalog, path: str) -> None:
    assert path in catalog
    spec = catalog.get(path)
    assert spec is not None and spec.path == path


def test_required_signal_kinds(catalog: SignalCatalog, vss: dict[str, dict[str, Any]]) -> None:
    assert vss["Vehicle.Diagnostics.DTCList"]["datatype"] == "string[]"
    assert catalog.get("Vehicle.Diagnostics.DTCList") is not None
    dtc = catalog.get("Vehicle.Diagnostics.DTCList")
    assert dtc is not None and dtc.kind is ValueKind.STRING_LIST
    speed = catalog.get("Vehicle.Speed")
    assert speed is not None and speed.kind is ValueKind.NUMBER


# --- datatype mapping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datatype", "kind"),
    [
        ("float", ValueKind.NUMBER),
        ("double", ValueKind.NUMBER),
        *((name, ValueKind.INTEGER) for name in INTEGER_RANGES),
        ("boolean", ValueKind.BOOLEAN),
        ("string", ValueKind.STRING),
        ("string[]", ValueKind.STRING_LIST),
    ],
)
def test_kind_for_datatype(datatype: str, kind: ValueKind) -> None:
    assert kind_for_datatype(datatype) is kind


def test_kind_for_unsupported_datatype() -> None:
    with pytest.raises(ValueError, match="unsupported VSS datatype 'Types.Struct'"):
        kind_for_datatype("Types.Struct")


# --- catalog API ------------------------------------------------------------------------


def test_default_catalog_is_cached() -> None:
    assert default_catalog() is default_catalog()


def test_catalog_container_protocol(catalog: SignalCatalog, raw_entries: list[Any]) -> None:
    paths = [entry["path"] for entry in raw_entries]
    assert [spec.path for spec in catalog] == paths
    assert list(catalog.paths) == paths
    assert len(catalog) == len(paths)
    assert all(path in catalog for path in paths)
    assert "Vehicle.NoSuchSignal" not in catalog
    assert ["not", "hashable"] not in catalog
    assert catalog.get("Vehicle.NoSuchSignal") is None


def test_unknown_path_is_rejected(catalog: SignalCatalog) -> None:
    reason = _rejected(catalog, "Vehicle.Foo", 1)
    assert reason == "unknown signal path (not in the carcloud signal catalog)"
    with pytest.raises(SignalValueError, match="unknown signal path"):
        catalog.validator("Vehicle.Foo")


def test_non_string_path_is_rejected(catalog: SignalCatalog) -> None:
    with pytest.raises(SignalValueError, match="signal path must be a string"):
        catalog.validate(42, 1)  # type: ignore[arg-type]
    with pytest.raises(SignalValueError, match="signal path must be a string"):
        catalog.validate(["Vehicle.Speed"], 1)  # type: ignore[arg-type]


def test_validator_matches_validate(catalog: SignalCatalog) -> None:
    for spec in NUMERIC_SPECS:
        assert spec.max is not None
        check = catalog.validator(spec.path)
        assert check(spec.max) == catalog.validate(spec.path, spec.max)


def test_signal_value_error_is_a_value_error_and_a_validation_error() -> None:
    error = SignalValueError("Vehicle.Speed", "expected a number, got string 'fast'")
    assert isinstance(error, ValueError)
    assert isinstance(error, ValidationError)
    assert str(error) == "Vehicle.Speed: expected a number, got string 'fast'"
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.path, copy.reason, str(copy)) == (
        SignalValueError,
        error.path,
        error.reason,
        str(error),
    )


# --- validation: accepted values --------------------------------------------------------------


@pytest.mark.parametrize("spec", NUMERIC_SPECS, ids=_ids(NUMERIC_SPECS))
def test_numeric_accepts_values_in_range(catalog: SignalCatalog, spec: SignalSpec) -> None:
    assert spec.min is not None and spec.max is not None
    expected_type = float if spec.kind is ValueKind.NUMBER else int
    low, high = math.ceil(spec.min), math.floor(spec.max)
    for value in (low, high, (low + high) // 2):
        result = catalog.validate(spec.path, value)
        assert type(result) is expected_type
        assert result == value
        # An integral float (as some JSON encoders send) is accepted too.
        result = catalog.validate(spec.path, float(value))
        assert type(result) is expected_type
        assert result == value


@pytest.mark.parametrize("spec", NUMBER_SPECS, ids=_ids(NUMBER_SPECS))
def test_number_accepts_fractions(catalog: SignalCatalog, spec: SignalSpec) -> None:
    assert spec.min is not None and spec.max is not None
    value = spec.min + (spec.max - spec.min) / 3
    assert catalog.validate(spec.path, value) == value


def test_number_accepts_int_and_float_subclasses(catalog: SignalCatalog) -> None:
    class Level(enum.IntEnum):
        HALF = 50

    class Reading(float):
        pass

    spec = NUMBER_SPECS[0]
    assert spec.min is not None and spec.max is not None
    midpoint = (spec.min + spec.max) / 2
    result = catalog.validate(spec.path, Reading(midpoint))
    assert type(result) is float and result == midpoint
    level_spec = next(s for s in INTEGER_SPECS if s.min == 0 and s.max is not None and s.max > 50)
    result = catalog.validate(level_spec.path, Level.HALF)
    assert type(result) is int and result == 50


@pytest.mark.parametrize("spec", BOOLEAN_SPECS, ids=_ids(BOOLEAN_SPECS))
def test_boolean_accepts_true_and_false(catalog: SignalCatalog, spec: SignalSpec) -> None:
    assert catalog.validate(spec.path, True) is True
    assert catalog.validate(spec.path, False) is False


@pytest.mark.parametrize("spec", STRING_SPECS, ids=_ids(STRING_SPECS))
def test_string_accepts_allowed_or_any(catalog: SignalCatalog, spec: SignalSpec) -> None:
    values = spec.allowed if spec.allowed else ("", "2025-01-31T12:00:00Z")
    for value in values:
        assert catalog.validate(spec.path, value) == value


def test_string_subclass_is_normalized(catalog: SignalCatalog) -> None:
    spec = ALLOWED_STRING_SPECS[0]
    assert spec.allowed is not None
    member = enum.StrEnum("State", {"X": spec.allowed[0]}).X  # type: ignore[attr-defined]
    result = catalog.validate(spec.path, member)
    assert type(result) is str and result == spec.allowed[0]


@pytest.mark.parametrize("spec", STRING_LIST_SPECS, ids=_ids(STRING_LIST_SPECS))
def test_string_list_accepts_lists_of_strings(catalog: SignalCatalog, spec: SignalSpec) -> None:
    items = list(spec.allowed[:2]) if spec.allowed else ["P0101", "U0100"]
    for value in (items, tuple(items), []):
        result = catalog.validate(spec.path, value)
        assert type(result) is list and result == list(value)
    original = list(items)
    result = catalog.validate(spec.path, original)
    assert result is not original  # the caller's list is not shared


# --- validation: rejected values --------------------------------------------------------------


NOT_NUMBERS: list[tuple[object, str]] = [
    ("fast", "string 'fast'"),
    ("12", "string '12'"),
    (None, "null"),
    ([1], "list [1]"),
    ({"v": 1}, "object {'v': 1}"),
    (True, "boolean True"),
    (False, "boolean False"),
]


@pytest.mark.parametrize("spec", NUMERIC_SPECS, ids=_ids(NUMERIC_SPECS))
def test_numeric_rejects_non_numbers_including_bool(
    catalog: SignalCatalog, spec: SignalSpec
) -> None:
    expected = "a number" if spec.kind is ValueKind.NUMBER else "an integer"
    for value, shown in NOT_NUMBERS:
        assert _rejected(catalog, spec.path, value) == f"expected {expected}, got {shown}"


@pytest.mark.parametrize("spec", NUMERIC_SPECS, ids=_ids(NUMERIC_SPECS))
def test_numeric_rejects_nan_and_infinity(catalog: SignalCatalog, spec: SignalSpec) -> None:
    expected = "a finite number" if spec.kind is ValueKind.NUMBER else "an integer"
    assert _rejected(catalog, spec.path, math.nan) == f"expected {expected}, got NaN"
    assert _rejected(catalog, spec.path, math.inf) == f"expected {expected}, got infinity"
    assert _rejected(catalog, spec.path, -math.inf) == f"expected {expected}, got -infinity"


def _with_unit(number: float, unit: str | None) -> str:
    text = str(int(number)) if float(number).is_integer() else str(number)
    return f"{text} {unit}" if unit else text


@pytest.mark.parametrize("spec", NUMERIC_SPECS, ids=_ids(NUMERIC_SPECS))
def test_numeric_rejects_out_of_range(catalog: SignalCatalog, spec: SignalSpec) -> None:
    assert spec.min is not None and spec.max is not None
    above, below = math.floor(spec.max) + 1, math.ceil(spec.min) - 1
    assert _rejected(catalog, spec.path, above) == (
        f"{above} is above the maximum {_with_unit(spec.max, spec.unit)}"
    )
    assert _rejected(catalog, spec.path, below) == (
        f"{below} is below the minimum {_with_unit(spec.min, spec.unit)}"
    )
    for huge in (10**400, 10**5000):  # beyond any float; 10**5000 is too long for str()
        assert _rejected(catalog, spec.path, huge).startswith("~1e+")
        assert _rejected(catalog, spec.path, -huge).startswith("-~1e+")


def test_speed_messages_match_the_documented_format(catalog: SignalCatalog) -> None:
    spec = catalog.get("Vehicle.Speed")
    assert spec is not None and spec.max is not None and spec.unit == "km/h"
    too_fast = int(spec.max) + 500
    with pytest.raises(SignalValueError) as info:
        catalog.validate("Vehicle.Speed", too_fast)
    assert str(info.value) == (
        f"Vehicle.Speed: {too_fast} is above the maximum {int(spec.max)} km/h"
    )
    with pytest.raises(SignalValueError) as info:
        catalog.validate("Vehicle.Speed", "fast")
    assert str(info.value) == "Vehicle.Speed: expected a number, got string 'fast'"


@pytest.mark.parametrize("spec", INTEGER_SPECS, ids=_ids(INTEGER_SPECS))
def test_integer_rejects_fractions(catalog: SignalCatalog, spec: SignalSpec) -> None:
    assert spec.min is not None
    value = math.ceil(spec.min) + 0.5
    assert _rejected(catalog, spec.path, value) == f"expected an integer, got {value}"


@pytest.mark.parametrize("spec", BOOLEAN_SPECS, ids=_ids(BOOLEAN_SPECS))
def test_boolean_rejects_non_booleans(catalog: SignalCatalog, spec: SignalSpec) -> None:
    for value, shown in [
        (1, "number 1"),
        (0, "number 0"),
        ("true", "string 'true'"),
        (None, "null"),
        (1.0, "number 1.0"),
        (10**5000, "number ~1e+5000"),
    ]:
        assert _rejected(catalog, spec.path, value) == f"expected a boolean, got {shown}"


@pytest.mark.parametrize("spec", STRING_SPECS, ids=_ids(STRING_SPECS))
def test_string_rejects_non_strings(catalog: SignalCatalog, spec: SignalSpec) -> None:
    for value, shown in [(1, "number 1"), (None, "null"), (True, "boolean True"), (["a"], "list")]:
        reason = _rejected(catalog, spec.path, value)
        assert reason.startswith(f"expected a string, got {shown}"), reason


@pytest.mark.parametrize("spec", ALLOWED_STRING_SPECS, ids=_ids(ALLOWED_STRING_SPECS))
def test_string_rejects_values_not_allowed(catalog: SignalCatalog, spec: SignalSpec) -> None:
    assert spec.allowed is not None
    for value in ("NOT_A_VALUE", spec.allowed[0].lower(), ""):
        if value in spec.allowed:
            continue
        reason = _rejected(catalog, spec.path, value)
        assert reason.startswith(f"string {value!r} is not one of the allowed values "), reason
        assert all(allowed in reason for allowed in spec.allowed[:12])


@pytest.mark.parametrize("spec", STRING_LIST_SPECS, ids=_ids(STRING_LIST_SPECS))
def test_string_list_rejects_bad_lists(catalog: SignalCatalog, spec: SignalSpec) -> None:
    good = spec.allowed[0] if spec.allowed else "P0101"
    assert _rejected(catalog, spec.path, good) == (
        f"expected a list of strings, got string {good!r}"
    )
    assert _rejected(catalog, spec.path, None) == "expected a list of strings, got null"
    assert _rejected(catalog, spec.path, [good, 7]) == (
        "expected a list of strings, item 1 is number 7"
    )
    assert _rejected(catalog, spec.path, [None]) == "expected a list of strings, item 0 is null"


def test_long_values_are_shortened_in_messages(catalog: SignalCatalog) -> None:
    spec = NUMBER_SPECS[0]
    reason = _rejected(catalog, spec.path, "x" * 10_000)
    assert reason.startswith("expected a number, got string 'xxx")
    assert reason.endswith("...")
    assert len(reason) < 200


# --- catalog construction -----------------------------------------------------------------


def _spec(**changes: Any) -> SignalSpec:
    fields: dict[str, Any] = {
        "path": "Vehicle.Test.Level",
        "datatype": "uint8",
        "kind": ValueKind.INTEGER,
        "unit": "percent",
        "min": 0.0,
        "max": 100.0,
        "allowed": None,
        "description": "A test signal.",
        "bounds_source": "carcloud",
    }
    fields.update(changes)
    return SignalSpec(**fields)


def test_catalog_rejects_duplicate_paths() -> None:
    with pytest.raises(ValueError, match="duplicate catalog entry 'Vehicle.Test.Level'"):
        SignalCatalog([_spec(), _spec()])


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"kind": ValueKind.NUMBER}, "does not match datatype"),
        ({"datatype": "float[]"}, "unsupported VSS datatype"),
        ({"min": 10.0, "max": 5.0}, "is greater than max"),
        ({"max": 300.0}, "outside the uint8 range"),
        ({"min": -1.0}, "outside the uint8 range"),
        ({"max": math.inf, "datatype": "float", "kind": ValueKind.NUMBER}, "must be finite"),
        ({"allowed": ("A", "B")}, "only supported for string signals"),
        (
            {"datatype": "boolean", "kind": ValueKind.BOOLEAN},
            "only allowed for numeric signals",
        ),
        ({"bounds_source": "guess"}, "bounds_source must be one of"),
        ({"path": "Speed"}, "must be a string starting with 'Vehicle.'"),
    ],
)
def test_spec_rejects_inconsistent_fields(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        _spec(**changes)


def test_catalog_without_bounds_still_rejects_non_finite_and_type_overflow() -> None:
    catalog = SignalCatalog(
        [
            _spec(
                path="Vehicle.Test.Float",
                datatype="float",
                kind=ValueKind.NUMBER,
                min=None,
                max=None,
                bounds_source=None,
            ),
            _spec(min=None, max=None, bounds_source=None),
        ]
    )
    assert catalog.validate("Vehicle.Test.Float", -1e30) == -1e30
    assert _rejected(catalog, "Vehicle.Test.Float", math.nan) == "expected a finite number, got NaN"
    assert "(the float range)" in _rejected(catalog, "Vehicle.Test.Float", 1e39)
    assert catalog.validate("Vehicle.Test.Level", 255) == 255
    assert _rejected(catalog, "Vehicle.Test.Level", 256) == (
        "256 is above the maximum 255 percent (the uint8 range)"
    )


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], "must be an object with a 'signals' list"),
        ({"signals": [1]}, "catalog entry 0: must be an object"),
        ({"signals": [{"path": "Vehicle.X", "datatype": "float"}]}, "missing keys"),
        (
            {"signals": [{"path": "Vehicle.X", "datatype": "float", "description": "x", "y": 1}]},
            "unknown keys",
        ),
        (
            {
                "signals": [
                    {"path": "Vehicle.X", "datatype": "float", "description": "x", "min": "0"}
                ]
            },
            "'min' must be a number",
        ),
        (
            {"signals": [{"path": "Vehicle.X", "datatype": "bool", "description": "x"}]},
            "unsupported VSS datatype",
        ),
    ],
)
def test_from_json_rejects_malformed_documents(document: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SignalCatalog.from_json(json.dumps(document))
