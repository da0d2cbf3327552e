"""What geofences and alert rules add to each derivation, against trips in the same run.

    python bench/geofence_alert_derive.py [--hours 1] [--rounds 20] [--fences 20]

One vehicle drives for HOURS at 1 Hz (14 signals a second, SQLite), into a depot
fence where it stays. Then ROUNDS times: 5 more seconds are committed and the
vehicle is derived by each deriver, as the derive role does after each batch:
"trips" (the telematics service, the baseline), "geofences" (FENCES circles and
polygons of the brand, the car inside one of them: its open visit resumes), and
"alerts" (the five telemetry built-ins: 12 V, tyres, DTC, SoC parked, overspeed).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from carcloud.alerts.builtins import BUILTINS
from carcloud.alerts.models import AlertRule
from carcloud.alerts.service import AlertService
from carcloud.geofences.models import Geofence
from carcloud.geofences.service import GeofenceService
from carcloud.ingest.models import TelemetryMessage
from carcloud.storage.sqlite import sqlite_stores
from carcloud.telematics import timeline as tl
from carcloud.telematics.service import TelematicsService
from carcloud.telematics.timeline import Position

VIN = "WVWZZZ1JZXW000001"
SECOND = 1_000_000
START = 1_780_000_000 * SECOND
DEPOT = Position(48.1 + 600 * 1e-5, 11.5)  # reached after 10 minutes


def sample(t: int) -> dict[str, Any]:
    """The car at second t: drives north for 10 minutes, then stands in the depot."""
    moving = t < 600
    speed = 70 + 10 * math.sin(t / 60) if moving else 0.0
    return {
        tl.SPEED: round(speed, 1), tl.GEAR: 1, tl.POWER_STATE: "ON",
        tl.ODOMETER: round(1000 + min(t, 600) * 70 / 3600, 3),
        tl.LATITUDE: 48.1 + min(t, 600) * 1e-5, tl.LONGITUDE: 11.5,
        tl.BATTERY_POWER: -round(9000 + 50 * speed), tl.SOC: 80 - t / 600,
        tl.OUTSIDE_TEMPERATURE: 12.0, tl.CABLE: False, tl.IS_CHARGING: False,
        tl.DC_CURRENT: 0.0, tl.AC_CURRENT: 0.0,
        "Vehicle.LowVoltageBattery.CurrentVoltage": 12.4,
    }  # fmt: skip


def messages(first: int, count: int) -> list[TelemetryMessage]:
    return [
        TelemetryMessage(
            VIN, t, START + t * SECOND, START + t * SECOND,
            tuple((path, START + t * SECOND, value) for path, value in sample(t).items()),
        )
        for t in range(first, first + count)
    ]  # fmt: skip


def fences(count: int) -> list[Geofence]:
    made = [Geofence("gfn_depot", "volta", "depot", "circle", (DEPOT,), radius_m=150.0)]
    for index in range(1, count):
        lat, lon = 48.0 + index * 0.01, 11.7 + index * 0.01  # away from the route
        if index % 2:
            made.append(Geofence(f"gfn_{index}", "volta", f"c{index}", "circle",
                                 (Position(lat, lon),), radius_m=300.0))  # fmt: skip
        else:
            ring = tuple(
                Position(lat + dy, lon + dx)
                for dy, dx in ((0, 0), (0, 0.005), (0.004, 0.006), (0.006, 0.002), (0.003, -0.002))
            )
            made.append(Geofence(f"gfn_{index}", "volta", f"p{index}", "polygon", ring))
    return made


async def measure(hours: float, rounds: int, fence_count: int, folder: Path) -> dict[str, float]:
    stores = sqlite_stores(folder / "bench.db")
    await stores.open()
    try:
        await stores.registry.create_brand("volta", "Volta")
        await stores.registry.create_vehicle(VIN, "volta", "E1", 2025, [], "scrypt$h")
        seconds = int(hours * 3600)
        for first in range(0, seconds, 600):
            await stores.telemetry.write_telemetry(messages(first, min(600, seconds - first)), [])
        trips = TelematicsService(stores.telematics)
        geofences = GeofenceService(stores.geofences, stores.telematics)
        alerts = AlertService(stores.alerts, stores.telematics, stores.registry)
        for fence in fences(fence_count):
            await geofences.create_geofence(fence)
        for key, spec in BUILTINS.items():
            if spec.kind != "offline":
                await alerts.create_rule(AlertRule("new", "volta", spec.name, spec.kind,
                                                   spec.condition, spec.for_s,
                                                   spec.clear_condition, builtin=key))  # fmt: skip
        derivers: dict[str, Callable[[str, int], Awaitable[object]]] = {
            "trips": trips.derive, "geofences": geofences.derive, "alerts": alerts.derive,
        }  # fmt: skip
        for derive in derivers.values():  # the state the derive role has after a while
            await derive(VIN, START)
        times: dict[str, list[float]] = {name: [] for name in derivers}
        for round_index in range(rounds):
            first = seconds + round_index * 5
            await stores.telemetry.write_telemetry(messages(first, 5), [])
            for name, derive in derivers.items():
                began = time.perf_counter()
                await derive(VIN, START + first * SECOND)
                times[name].append(time.perf_counter() - began)
        [visit] = await stores.geofences.list_visits("volta")
        assert visit.inside, "the car should still be in the depot"
        return {name: statistics.median(values) * 1000 for name, values in times.items()}
    finally:
        await stores.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--fences", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = await measure(args.hours, args.rounds, args.fences, Path(folder))
    print(f"{args.hours:g} h of history, {args.fences} fences, 5 alert rules, "
          f"median derivation of a 5-second batch:")  # fmt: skip
    for name, ms in result.items():
        ratio = f" ({ms / result['trips']:.2f} x trips)" if name != "trips" else " (baseline)"
        print(f"  {name:<10} {ms:7.2f} ms{ratio}")


if __name__ == "__main__":
    asyncio.run(main())
