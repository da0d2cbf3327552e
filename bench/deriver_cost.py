"""The cost of each deriver per derivation, for cars whose new data changes nothing.

    python bench/deriver_cost.py [--cars 5] [--rounds 200] [--fences 20] [--rules]
                                 [--outside] [--database postgresql://…/postgres]

CARS parked cars (19 signals each, the same values every second; SQLite, or with
--database PostgreSQL in a database of its own, dropped at the end) are derived after
each round of one new row per car, as the derive role does: "trips" (the telematics
service), "geofences" (FENCES fences of the brand, the cars parked inside one, or with
--outside in none), "alerts" (with --rules the five telemetry built-ins, else none, as
a brand starts), "motion" (calls.video_allowed). Prints each deriver's median and p90
per derivation, and MotionWatch's reads on their own: the whole latest state and twin
it read before, the three signals and one own desired property it reads now.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from carcloud.alerts.builtins import BUILTINS
from carcloud.alerts.models import AlertRule
from carcloud.alerts.service import AlertService
from carcloud.calls import motion as mo
from carcloud.calls.motion import MotionWatch
from carcloud.geofences.models import Geofence
from carcloud.geofences.service import GeofenceService
from carcloud.ingest.models import TelemetryMessage
from carcloud.storage import Stores
from carcloud.storage.postgres import postgres_stores
from carcloud.storage.sqlite import sqlite_stores
from carcloud.telematics import timeline as tl
from carcloud.telematics.service import TelematicsService
from carcloud.telematics.timeline import Position
from carcloud.twins.service import TwinService

SECOND = 1_000_000
START = 1_780_000_000 * SECOND
DEPOT = Position(48.1, 11.5)
AWAY = Position(48.3, 11.3)  # outside every fence
PARKED: dict[str, Any] = {
    tl.SPEED: 0.0, tl.GEAR: 0, tl.POWER_STATE: "OFF", tl.ODOMETER: 1234.5,
    tl.LATITUDE: DEPOT.lat, tl.LONGITUDE: DEPOT.lon, tl.BATTERY_POWER: 0.0, tl.SOC: 80.0,
    tl.OUTSIDE_TEMPERATURE: 12.0, tl.CABLE: False, tl.IS_CHARGING: False,
    tl.DC_CURRENT: 0.0, tl.AC_CURRENT: 0.0, mo.PARKING_BRAKE: True,
    "Vehicle.LowVoltageBattery.CurrentVoltage": 12.4, "Vehicle.IsMoving": False,
    "Vehicle.Cabin.HVAC.AmbientAirTemperature": 19.5,
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed": 80.0,
    "Vehicle.Powertrain.Range": 312.0, "Vehicle.LowVoltageSystemState": "ON",
}  # fmt: skip


def vin(index: int) -> str:
    return f"WVWZZZ1JZXW{index:06d}"


def messages(cars: int, t: int, outside: bool = False) -> list[TelemetryMessage]:
    at = START + t * SECOND
    values = {**PARKED, tl.LATITUDE: AWAY.lat, tl.LONGITUDE: AWAY.lon} if outside else PARKED
    return [
        TelemetryMessage(vin(i), t, at, at, tuple((p, at, v) for p, v in values.items()))
        for i in range(cars)
    ]


def fences(count: int) -> list[Geofence]:
    made = [Geofence("gfn_depot", "volta", "depot", "circle", (DEPOT,), radius_m=150.0)]
    for index in range(1, count):
        centre = Position(48.0 + index * 0.01, 11.7 + index * 0.01)  # away from the depot
        made.append(Geofence(f"gfn_{index}", "volta", f"c{index}", "circle", (centre,),
                             radius_m=300.0))  # fmt: skip
    return made


async def measure(stores: Stores, args: argparse.Namespace) -> None:
    await stores.registry.create_brand("volta", "Volta")
    for index in range(args.cars):
        await stores.registry.create_vehicle(vin(index), "volta", "E1", 2025, [], "scrypt$h")
    for t in range(0, 600, 60):  # ten minutes parked before the measured rounds
        await stores.telemetry.write_telemetry(messages(args.cars, t, args.outside), [])
    geofences = GeofenceService(stores.geofences, stores.telematics)
    alerts = AlertService(stores.alerts, stores.telematics, stores.registry)
    for fence in fences(args.fences)[: args.fences]:
        await geofences.create_geofence(fence)
    if args.rules:
        for key, spec in BUILTINS.items():
            if spec.kind != "offline":
                await alerts.create_rule(AlertRule("new", "volta", spec.name, spec.kind,
                                                   spec.condition, spec.for_s,
                                                   spec.clear_condition, builtin=key))  # fmt: skip
    twins = TwinService(stores.twins)
    motion = MotionWatch(stores.telemetry, twins)
    derivers: dict[str, Callable[[str, int], Awaitable[object]]] = {
        "trips": TelematicsService(stores.telematics).derive,
        "geofences": geofences.derive,
        "alerts": alerts.derive,
        "motion": motion.derive,
    }
    parts: dict[str, Callable[[str], Awaitable[object]]] = {
        "latest_state": stores.telemetry.latest_state,
        "twins.get": lambda v: twins.get(v, None),
    }
    if hasattr(stores.telemetry, "latest_values"):  # absent before this bench's commit
        paths = (mo.SPEED, mo.GEAR, mo.PARKING_BRAKE)
        parts["latest_values (3)"] = lambda v: stores.telemetry.latest_values(v, paths)
        parts["own_desired_value"] = lambda v: twins.own_desired_value(v, mo.TWIN_KEY)
    for index in range(args.cars):  # the state the derive role has after a while
        for derive in derivers.values():
            await derive(vin(index), START)
    times: dict[str, list[float]] = {name: [] for name in [*derivers, *parts]}
    for round_index in range(args.rounds):
        t = 600 + round_index
        await stores.telemetry.write_telemetry(messages(args.cars, t, args.outside), [])
        for index in range(args.cars):
            for name, derive in derivers.items():
                began = time.perf_counter()
                await derive(vin(index), START + t * SECOND)
                times[name].append(time.perf_counter() - began)
            for name, part in parts.items():
                began = time.perf_counter()
                await part(vin(index))
                times[name].append(time.perf_counter() - began)
    print(f"{args.cars} parked cars x {args.rounds} rounds, {len(PARKED)} signals, "
          f"{args.fences} fences ({'outside' if args.outside else 'inside one'}), "
          f"{5 if args.rules else 0} alert rules:")  # fmt: skip
    for name, values in times.items():
        values.sort()
        median, p90 = statistics.median(values), values[int(len(values) * 0.9)]
        print(f"  {name:<24} median {median * 1e6:8.0f} us   p90 {p90 * 1e6:8.0f} us")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cars", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--fences", type=int, default=20)
    parser.add_argument("--rules", action="store_true")
    parser.add_argument("--outside", action="store_true", help="park outside every fence")
    parser.add_argument("--database", help="a PostgreSQL server's URL (default: SQLite)")
    args = parser.parse_args()
    if args.database is None:
        with tempfile.TemporaryDirectory() as folder:
            stores = sqlite_stores(Path(folder) / "bench.db")
            await stores.open()
            try:
                await measure(stores, args)
            finally:
                await stores.close()
        return
    name = f"carcloud_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(args.database)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        stores = postgres_stores(f"{args.database.rsplit('/', 1)[0]}/{name}")
        await stores.open()
        try:
            await measure(stores, args)
        finally:
            await stores.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
