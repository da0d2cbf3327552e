"""Whether the car's battery covers a trip, and how long a charging stop on the way takes.

Range comes from the state of charge and the model's usable capacity and rated
consumption (the model table of the fleet); for a model carcloud does not know, from
the range the car reports itself. A trip needs `margin` more than its length plus a
fixed reserve at arrival: winter, traffic and a detour eat into the rated figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
REPORTED_RANGE = "Vehicle.Powertrain.TractionBattery.Range"
TOTAL_RANGE = "Vehicle.Powertrain.Range"


@dataclass(frozen=True, slots=True)
class ModelEnergy:
    """A model's usable battery and rated consumption, and the fast-charging power it takes."""

    battery_kwh: float
    kwh_per_100km: float
    max_dc_kw: float


@dataclass(frozen=True, slots=True)
class RangePolicy:
    """How much range a trip needs beyond its length, and what a charging stop is like."""

    margin: float = 0.2  # 20 % more than the trip's length
    reserve_km: float = 15.0  # arriving with less is not a plan
    charger_detour_min: float = 8.0  # off the route to a fast charger and back
    charger_kw: float = 150.0  # a common public DC charger
    average_fraction: float = 0.7  # a session averages this share of the peak power


@dataclass(frozen=True, slots=True)
class ChargingStop:
    """A stop to charge on the way: how long, and how much energy it must add."""

    minutes: float
    energy_kwh: float
    reason: str

    def document(self) -> dict[str, object]:
        """The JSON form."""
        return {"minutes": round(self.minutes, 1), "energy_kwh": round(self.energy_kwh, 1),
                "reason": self.reason}  # fmt: skip


def known_models() -> dict[str, ModelEnergy]:
    """The electric models carcloud knows (the demo fleet's table), by model name."""
    from carcloud.sim.fleet import BRANDS  # the simulator's model table, read once at start

    return {
        line.spec.model: ModelEnergy(
            line.spec.battery_kwh, line.spec.rated_kwh_per_100km, line.spec.max_dc_kw
        )
        for brand in BRANDS.values()
        for line in brand.models
        if line.spec.battery_kwh > 0
    }


def range_km(signals: Mapping[str, object], model: ModelEnergy | None) -> float | None:
    """What the battery still covers: SoC × capacity ÷ consumption, or the reported range."""
    soc = signals.get(SOC)
    if model is not None and isinstance(soc, int | float) and not isinstance(soc, bool):
        return max(0.0, float(soc)) / 100.0 * model.battery_kwh / model.kwh_per_100km * 100.0
    for path in (REPORTED_RANGE, TOTAL_RANGE):
        reported = signals.get(path)
        if isinstance(reported, int | float) and not isinstance(reported, bool):
            return float(reported) / 1000.0
    return None


def needed_km(trip_km: float, policy: RangePolicy) -> float:
    """The range a trip of `trip_km` needs."""
    return trip_km * (1.0 + policy.margin) + policy.reserve_km


def limit_for(trip_km: float, model: ModelEnergy, policy: RangePolicy) -> int:
    """The charge limit (percent, a multiple of 5, at most 100) whose full battery covers
    a trip of `trip_km` with the margin."""
    full_km = model.battery_kwh / model.kwh_per_100km * 100.0
    wanted = needed_km(trip_km, policy) / full_km * 100.0
    return min(100, max(50, math.ceil(wanted / 5.0 - 1e-9) * 5))


def range_at_limit_km(limit_percent: float, model: ModelEnergy) -> float:
    """What a battery charged to `limit_percent` covers."""
    return limit_percent / 100.0 * model.battery_kwh / model.kwh_per_100km * 100.0


def charging_stop(
    trip_km: float, available_km: float | None, model: ModelEnergy | None, policy: RangePolicy
) -> ChargingStop | None:
    """The charging stop a trip needs, or None when the range covers it (or is unknown)."""
    if available_km is None:
        return None
    missing_km = needed_km(trip_km, policy) - available_km
    if missing_km <= 0:
        return None
    consumption = model.kwh_per_100km if model is not None else 18.0
    energy = missing_km * consumption / 100.0
    peak = min(policy.charger_kw, model.max_dc_kw) if model and model.max_dc_kw else 50.0
    minutes = policy.charger_detour_min + energy / (peak * policy.average_fraction) * 60.0
    reason = (
        f"range {available_km:.0f} km < {needed_km(trip_km, policy):.0f} km needed "
        f"for {trip_km:.1f} km"
    )
    return ChargingStop(math.ceil(minutes * 10) / 10, energy, reason)
