"""The rules every fleet wants, declared as data; a brand turns each on or off.

`POST /api/v1/alert-rules {"builtin": "overspeed"}` makes a brand's rule from one
of these (any field given overrides the default: a threshold in the condition, the
`for_s`, the severity, the target); `enabled: false` turns it off again.
"""

from __future__ import annotations

from dataclasses import dataclass

from carcloud.errors import ValidationError

_SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
_VOLTAGE = "Vehicle.LowVoltageBattery.CurrentVoltage"
_TYRES = [
    f"Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Tire.Pressure"
    for row in (1, 2)
    for side in ("Left", "Right")
]


@dataclass(frozen=True, slots=True)
class BuiltinRule:
    """A built-in rule's defaults."""

    key: str
    name: str
    description: str
    kind: str = "condition"
    condition: str | None = None
    for_s: float = 0.0
    clear_condition: str | None = None
    severity: str = "warning"


BUILTINS: dict[str, BuiltinRule] = {
    rule.key: rule
    for rule in (
        BuiltinRule(
            "low_12v_battery",
            "low 12 V battery",
            "the 12 V battery below 11.8 V for 5 minutes; clears at 12.2 V",
            condition=f"{_VOLTAGE} < 11.8",
            for_s=300,
            clear_condition=f"{_VOLTAGE} >= 12.2",
        ),
        BuiltinRule(
            "low_tyre_pressure",
            "low tyre pressure",
            "a tyre below 180 kPa for a minute; clears when every tyre is at 200 kPa",
            condition=" or ".join(f"{tyre} < 180" for tyre in _TYRES),
            for_s=60,
            clear_condition=" and ".join(f"{tyre} >= 200" for tyre in _TYRES),
            severity="critical",
        ),
        BuiltinRule(
            "new_dtc",
            "diagnostic trouble code",
            "a trouble code in Vehicle.Diagnostics.DTCList: pending when first reported, "
            "confirmed (the alert) when still reported after 60 s, cleared when it is gone",
            kind="dtc",
            for_s=60,
        ),
        BuiltinRule(
            "low_soc_parked",
            "low state of charge while parked",
            "state of charge below 10 % while standing for 10 minutes; clears at 15 % or moving",
            condition=f"{_SOC} < 10 and Vehicle.Speed < 1",
            for_s=600,
            clear_condition=f"{_SOC} >= 15 or Vehicle.Speed >= 1",
        ),
        BuiltinRule(
            "offline",
            "offline too long",
            "the car has not been connected for 24 hours (presence, checked every minute)",
            kind="offline",
            for_s=24 * 3600,
            severity="info",
        ),
        BuiltinRule(
            "overspeed",
            "overspeed",
            "faster than 130 km/h for 10 seconds; clears below 120 km/h",
            condition="Vehicle.Speed > 130",
            for_s=10,
            clear_condition="Vehicle.Speed < 120",
        ),
    )
}


def builtin(key: str) -> BuiltinRule:
    """A built-in rule; ValidationError naming `builtin` for an unknown key."""
    found = BUILTINS.get(key)
    if found is None:
        raise ValidationError(f"builtin must be one of {', '.join(BUILTINS)}, not {key!r}")
    return found
