"""A vehicle's committed history as a timeline of moments, in the car's own time.

Detection reads a handful of VSS signals. A car sends a value when it has one
(some brands only on change), so each moment carries the newest value of every
signal at or before its time (forward fill), and says which positions it really
reported, so that a trip's position count is honest.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from carcloud.ingest.models import SignalValue

SPEED = "Vehicle.Speed"
GEAR = "Vehicle.Powertrain.Transmission.CurrentGear"
POWER_STATE = "Vehicle.LowVoltageSystemState"
ODOMETER = "Vehicle.TraveledDistance"
LATITUDE = "Vehicle.CurrentLocation.Latitude"
LONGITUDE = "Vehicle.CurrentLocation.Longitude"
BATTERY_POWER = "Vehicle.Powertrain.TractionBattery.CurrentPower"
# Lifetime energy counters (kWh): out of the battery, into it from chargers, back from braking.
CONSUMED_ENERGY = "Vehicle.Powertrain.TractionBattery.AccumulatedConsumedEnergy"
CHARGED_ENERGY = "Vehicle.Powertrain.TractionBattery.AccumulatedChargedEnergy"
BRAKING_ENERGY = "Vehicle.Powertrain.AccumulatedBrakingEnergy"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
FUEL_LEVEL = "Vehicle.Powertrain.FuelSystem.RelativeLevel"
OUTSIDE_TEMPERATURE = "Vehicle.Exterior.AirTemperature"
_CHARGING = "Vehicle.Powertrain.TractionBattery.Charging."
CABLE = _CHARGING + "ChargingPort.AnyPosition.IsChargingCableConnected"
IS_CHARGING = _CHARGING + "IsCharging"
DC_CURRENT = _CHARGING + "ChargeCurrent.DC"
AC_CURRENT = _CHARGING + "ChargeCurrent.Phase1"

# Every signal detection reads; one history query fetches them together.
PATHS: tuple[str, ...] = (
    SPEED,
    GEAR,
    POWER_STATE,
    ODOMETER,
    LATITUDE,
    LONGITUDE,
    BATTERY_POWER,
    CONSUMED_ENERGY,
    CHARGED_ENERGY,
    BRAKING_ENERGY,
    SOC,
    FUEL_LEVEL,
    OUTSIDE_TEMPERATURE,
    CABLE,
    IS_CHARGING,
    DC_CURRENT,
    AC_CURRENT,
)

# One row of committed history: the car's time and the values it reported then.
HistoryRow = tuple[int, Mapping[str, SignalValue]]

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class Position:
    """A WGS84 position in degrees."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"position ({self.lat}, {self.lon}) is outside WGS84 bounds")


def distance_km(a: Position, b: Position) -> float:
    """Great-circle distance (haversine)."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlon = lat2 - lat1, math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Moment:
    """The car at one time: each signal's newest value at or before `ts` (None: unknown)."""

    ts: int
    speed_kmh: float | None = None
    gear: int | None = None
    power_state: str | None = None
    odometer_km: float | None = None
    position: Position | None = None
    reported_position: bool = False
    battery_power_w: float | None = None
    consumed_kwh: float | None = None
    charged_kwh: float | None = None
    braking_kwh: float | None = None
    soc: float | None = None
    fuel_level: float | None = None
    outside_temp_c: float | None = None
    cable: bool | None = None
    charging: bool | None = None
    dc_current_a: float | None = None
    ac_current_a: float | None = None

    @property
    def powered_off(self) -> bool:
        """The car reports its power state as OFF."""
        return self.power_state == "OFF"


def _number(value: SignalValue | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class Timeline:
    """Moments from `start` on, built row by row; rows newer than the last can be appended.

    Appending gives exactly the moments a rebuild from the same rows would, so a
    service may keep a vehicle's timeline between derivations and read only what
    is new, as long as the new rows are all newer than `last_ts`.
    """

    def __init__(self, start: int, seed: Mapping[str, SignalValue] | None = None) -> None:
        self.start = start
        self.moments: list[Moment] = []
        self._current: dict[str, SignalValue] = dict(seed or {})

    @property
    def last_ts(self) -> int:
        """The newest moment's time (start - 1 when empty)."""
        return self.moments[-1].ts if self.moments else self.start - 1

    def extend(self, rows: Iterable[HistoryRow]) -> None:
        """Append rows, which must be newer than `last_ts` (sorted here)."""
        current = self._current
        for ts, values in sorted(rows, key=lambda row: row[0]):
            if ts <= self.last_ts:
                raise ValueError(
                    f"row at {ts} is not newer than the timeline's last {self.last_ts}"
                )
            current.update(values)
            self.moments.append(_moment(ts, current, values))

    def latest(self) -> dict[str, SignalValue]:
        """Each signal's newest value at `last_ts` (to start a timeline after it)."""
        return dict(self._current)

    def since(self, start: int) -> list[Moment]:
        """The moments at or after `start`."""
        index = bisect.bisect_left(self.moments, start, key=lambda moment: moment.ts)
        return self.moments[index:]

    def trim(self, start: int) -> None:
        """Forget moments before `start` (the forward-fill state stays)."""
        if start > self.start:
            self.moments = self.since(start)
            self.start = start


def _moment(
    ts: int, current: Mapping[str, SignalValue], values: Mapping[str, SignalValue]
) -> Moment:
    lat, lon = _number(current.get(LATITUDE)), _number(current.get(LONGITUDE))
    gear = current.get(GEAR)
    state = current.get(POWER_STATE)
    cable, charging = current.get(CABLE), current.get(IS_CHARGING)
    return Moment(
        ts=ts,
        speed_kmh=_number(current.get(SPEED)),
        gear=int(gear) if isinstance(gear, int) and not isinstance(gear, bool) else None,
        power_state=state if isinstance(state, str) else None,
        odometer_km=_number(current.get(ODOMETER)),
        position=Position(lat, lon) if lat is not None and lon is not None else None,
        reported_position=LATITUDE in values and LONGITUDE in values,
        battery_power_w=_number(current.get(BATTERY_POWER)),
        consumed_kwh=_number(current.get(CONSUMED_ENERGY)),
        charged_kwh=_number(current.get(CHARGED_ENERGY)),
        braking_kwh=_number(current.get(BRAKING_ENERGY)),
        soc=_number(current.get(SOC)),
        fuel_level=_number(current.get(FUEL_LEVEL)),
        outside_temp_c=_number(current.get(OUTSIDE_TEMPERATURE)),
        cable=cable if isinstance(cable, bool) else None,
        charging=charging if isinstance(charging, bool) else None,
        dc_current_a=_number(current.get(DC_CURRENT)),
        ac_current_a=_number(current.get(AC_CURRENT)),
    )


def build_timeline(
    rows: Iterable[HistoryRow], seed: Mapping[str, SignalValue] | None = None
) -> list[Moment]:
    """Moments in time order from history rows (any order), forward-filled from `seed`."""
    ordered = sorted(rows, key=lambda row: row[0])
    timeline = Timeline(ordered[0][0] if ordered else 0, seed)
    timeline.extend(ordered)
    return timeline.moments
