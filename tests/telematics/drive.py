"""A scripted day of a car: legs of driving, standing, parking and charging, with the truth.

The car is simulated at 10 Hz (speed, distance, battery power) and reports once a
second, as a real car would: so the measured energy and distance differ from the
truth by what sampling loses, and tests hold detection to the issue's bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from carcloud.telematics.timeline import (
    AC_CURRENT,
    BATTERY_POWER,
    BRAKING_ENERGY,
    CABLE,
    CHARGED_ENERGY,
    CONSUMED_ENERGY,
    DC_CURRENT,
    GEAR,
    IS_CHARGING,
    LATITUDE,
    LONGITUDE,
    ODOMETER,
    OUTSIDE_TEMPERATURE,
    POWER_STATE,
    SOC,
    SPEED,
)

SECOND = 1_000_000
CAPACITY_KWH = 60.0
START_TS = 1_780_000_000 * SECOND  # 2026-05-28T20:26:40Z


@dataclass
class Leg:
    """One leg of the script.

    `drive` at a cruise speed, `stand` (power on, speed 0), `park` (power off),
    `charge` at `charge_kw` (0: a pause; `plugged=False`: the cable is removed).
    """

    kind: str
    seconds: float
    speed_kmh: float = 0.0
    charge_kw: float = 0.0
    plugged: bool = True
    dc: bool = False


@dataclass
class Truth:
    """What the car really did in one trip or charging session."""

    start_ts: int
    end_ts: int
    distance_km: float = 0.0
    energy_kwh: float = 0.0


@dataclass
class Script:
    """Reported samples (ts, signals) and the truth of each trip and charge."""

    samples: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    trips: list[Truth] = field(default_factory=list)
    charges: list[Truth] = field(default_factory=list)


def run(
    legs: list[Leg],
    start_ts: int = START_TS,
    report_every_s: float = 1.0,
    counters: bool = False,
) -> Script:
    """Simulate `legs` in order and report once a second (or every `report_every_s`);
    with `counters`, the battery's lifetime energy counters too."""
    script = Script()
    t = 0.0
    step = 0.1
    odometer = 12_345.0
    lat, lon, heading = 48.137, 11.575, 0.0
    soc = 80.0
    trip: Truth | None = None
    charge: Truth | None = None
    next_report = 0.0
    standing_kwh = 0.0
    consumed, charged, braking = 20_000.0, 18_500.0, 1_600.0  # lifetime kWh
    for leg in legs:
        leg_t = 0.0
        if leg.kind == "drive" and trip is None:
            trip = Truth(start_ts + int(t * SECOND), 0)
            standing_kwh = 0.0
        if leg.kind in ("park",) and trip is not None:
            script.trips.append(trip)
            trip = None
        if leg.kind == "charge" and charge is None and leg.plugged:
            charge = Truth(start_ts + int(t * SECOND), 0)
        while leg_t < leg.seconds - 1e-9:
            speed = 0.0
            power_w = 0.0
            state = "OFF"
            charging = False
            if leg.kind == "drive":
                ramp = min(1.0, leg_t / 12.0, (leg.seconds - leg_t) / 12.0)
                speed = leg.speed_kmh * ramp * (1 + 0.08 * math.sin(leg_t / 17.0))
                accel = (
                    leg.speed_kmh
                    / 12.0
                    / 3.6
                    * (1 if leg_t < 12 else -1 if leg.seconds - leg_t < 12 else 0)
                )
                power_w = -(450 + 60 * speed + 0.9 * speed**2 + 900 * accel * speed / 10)
                state = "ON"
            elif leg.kind == "stand":
                power_w, state = -420.0, "ON"
            elif leg.kind == "charge":
                charging = leg.plugged and leg.charge_kw > 0
                power_w = (
                    leg.charge_kw * 1000 * (1 - 0.05 * math.cos(leg_t / 40.0)) if charging else 0.0
                )
            distance = speed / 3600 * step
            odometer += distance
            heading += 0.002
            lat += distance * math.cos(heading) / 111.195
            lon += distance * math.sin(heading) / (111.195 * math.cos(math.radians(lat)))
            energy = power_w * step / 3_600_000
            soc += energy / CAPACITY_KWH * 100
            if charging:
                charged += energy
            elif energy > 0:
                braking += energy
            else:
                consumed -= energy
            if trip is not None and leg.kind in ("drive", "stand"):
                # Standing counts only when the car drives on afterwards (a red light).
                standing_kwh -= energy
                if speed > 0:
                    trip.distance_km += distance
                    trip.energy_kwh += standing_kwh
                    standing_kwh = 0.0
                    trip.end_ts = start_ts + int((t + step) * SECOND)
            if charge is not None and charging:
                charge.energy_kwh += energy
            if t >= next_report - 1e-9:
                plugged = leg.kind == "charge" and leg.plugged
                script.samples.append(
                    (
                        start_ts + round(t * SECOND),
                        {
                            SPEED: round(speed, 1),
                            GEAR: 1 if leg.kind == "drive" else 0,
                            POWER_STATE: state,
                            ODOMETER: round(odometer, 3),
                            LATITUDE: round(lat, 7),
                            LONGITUDE: round(lon, 7),
                            BATTERY_POWER: round(power_w),
                            SOC: round(soc, 2),
                            OUTSIDE_TEMPERATURE: 12.5,
                            CABLE: plugged,
                            IS_CHARGING: charging,
                            DC_CURRENT: round(power_w / 400, 1) if charging and leg.dc else 0.0,
                            AC_CURRENT: round(power_w / 690, 1) if charging and not leg.dc else 0.0,
                        },
                    )
                )
                if counters:
                    script.samples[-1][1].update(
                        {
                            CONSUMED_ENERGY: round(consumed, 4),
                            CHARGED_ENERGY: round(charged, 4),
                            BRAKING_ENERGY: round(braking, 4),
                        }
                    )
                next_report += report_every_s
            t += step
            leg_t += step
        if leg.kind == "charge" and not leg.plugged and charge is not None:
            charge.end_ts = start_ts + int(t * SECOND)
            script.charges.append(charge)
            charge = None
    if trip is not None:
        script.trips.append(trip)
    return script


def rows(script: Script) -> list[tuple[int, dict[str, Any]]]:
    """The samples as history rows."""
    return [(ts, dict(values)) for ts, values in script.samples]


# Two drives and a short shunt, as the platform tests publish them:
# drive 1 has a red light (60 s, power on) that must not split it and ends standing
# 200 s (> 3 min); drive 2 ends with power off; the 40 m shunt is not a trip.
DAY = [
    Leg("park", 60),
    Leg("stand", 20),
    Leg("drive", 420, speed_kmh=55),
    Leg("stand", 60),
    Leg("drive", 300, speed_kmh=70),
    Leg("stand", 200),
    Leg("park", 120),
    Leg("stand", 10),
    Leg("drive", 900, speed_kmh=90),
    Leg("park", 300),
    Leg("stand", 5),
    Leg("drive", 14, speed_kmh=12),
    Leg("park", 240),
]

# A plug-in with a pause: 20 min at 11 kW, 10 min paused, 15 min at 11 kW, unplugged.
CHARGE = [
    Leg("park", 60),
    Leg("charge", 1200, charge_kw=11.0),
    Leg("charge", 600, charge_kw=0.0),
    Leg("charge", 900, charge_kw=11.0),
    Leg("charge", 30, plugged=False),
    Leg("park", 60),
]
