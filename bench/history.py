"""History benchmark: does a time-range query stay fast as the history grows?

    python bench/history.py [--vehicles 10] [--hours 2,20,200]

Fills a SQLite store through the storage interface, one message per vehicle per
second of vehicle time with 20 signals, and after each size times the same
question: one hour of one signal of one vehicle (3,600 points), and the same hour
downsampled to minutes. With the (vehicle, time) key the cost depends on the
answer's size, not on the history's: the ratio between sizes should stay near 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from carcloud.ingest.models import TelemetryMessage
from carcloud.ingest.store import TelemetryStore
from carcloud.storage.sqlite import sqlite_stores

SIGNALS = [
    ("Vehicle.Speed", 50.0),
    ("Vehicle.CurrentLocation.Latitude", 52.5),
    ("Vehicle.CurrentLocation.Longitude", 13.4),
    ("Vehicle.TraveledDistance", 1000.0),
    ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 60.0),
    ("Vehicle.Powertrain.Range", 200_000),
    ("Vehicle.Exterior.AirTemperature", 7.0),
    ("Vehicle.Cabin.HVAC.AmbientAirTemperature", 21.0),
    ("Vehicle.IsMoving", True),
    ("Vehicle.LowVoltageBattery.CurrentVoltage", 14.1),
    ("Vehicle.CurrentLocation.Heading", 90.0),
    ("Vehicle.CurrentLocation.Altitude", 35.0),
    ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed", 60.0),
    ("Vehicle.Powertrain.TractionBattery.Charging.IsCharging", False),
    ("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure", 250),
    ("Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure", 250),
    ("Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure", 250),
    ("Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure", 250),
    ("Vehicle.Powertrain.Transmission.CurrentGear", 1),
    ("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked", True),
]
SECOND = 1_000_000
T0 = 1_767_225_600 * SECOND  # 2026-01-01


async def fill(store: TelemetryStore, vins: list[str], first_s: int, last_s: int) -> None:
    batch: list[TelemetryMessage] = []
    for second in range(first_s, last_s):
        ts = T0 + second * SECOND
        for vin in vins:
            samples = tuple((path, ts, value) for path, value in SIGNALS)
            batch.append(TelemetryMessage(vin, second, ts, ts, samples))
        if len(batch) >= 5000:
            await store.write_telemetry(batch, [])
            batch = []
    if batch:
        await store.write_telemetry(batch, [])


async def time_query(
    store: TelemetryStore, vin: str, hour_start_s: int, bucket: int | None
) -> float:
    start = T0 + hour_start_s * SECOND
    timings = []
    for _ in range(7):
        began = time.perf_counter()
        points = await store.history(
            vin, "Vehicle.Speed", start, start + 3600 * SECOND, 10_000, bucket
        )
        timings.append(time.perf_counter() - began)
        assert len(points) == (60 if bucket else 3600), len(points)
    return statistics.median(timings) * 1000


async def main(args: argparse.Namespace) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="carcloud-history-"))
    stores = sqlite_stores(root / "carcloud.db")
    await stores.open()
    await stores.registry.create_brand("bench", "Bench")
    vins = [f"HIST{index:013d}" for index in range(args.vehicles)]
    for vin in vins:
        await stores.registry.create_vehicle(vin, "bench", "B1", 2025, [], "x")
    store = stores.telemetry
    results: list[dict[str, float]] = []
    filled = 0
    try:
        for hours in sorted(int(h) for h in args.hours.split(",")):
            began = time.perf_counter()
            await fill(store, vins, filled * 3600, hours * 3600)
            fill_s = time.perf_counter() - began
            filled = hours
            rows = await store.count_samples()
            # Ask about the middle of the history: no help from being at either end.
            middle = (hours // 2) * 3600
            raw_ms = await time_query(store, vins[len(vins) // 2], middle, None)
            minute_ms = await time_query(store, vins[len(vins) // 2], middle, 60 * SECOND)
            results.append(
                {
                    "history_rows": rows,
                    "signal_values": rows * len(SIGNALS),
                    "database_mb": round((root / "carcloud.db").stat().st_size / 1e6, 1),
                    "hour_of_one_signal_ms": round(raw_ms, 2),
                    "hour_by_minute_ms": round(minute_ms, 2),
                    "fill_seconds": round(fill_s, 1),
                }
            )
            print(
                f"{rows:>10,} rows ({rows * len(SIGNALS):>12,} values, "
                f"{results[-1]['database_mb']} MB): one hour of one signal {raw_ms:6.2f} ms, "
                f"by minute {minute_ms:6.2f} ms"
            )
    finally:
        await stores.close()
        shutil.rmtree(root, ignore_errors=True)
    first, last = results[0], results[-1]
    ratio = last["hour_of_one_signal_ms"] / first["hour_of_one_signal_ms"]
    growth = last["history_rows"] // first["history_rows"]
    print(f"history grew {growth}×; query time changed {ratio:.2f}×")
    return {"runs": results, "growth_query_time_ratio": round(ratio, 2)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vehicles", type=int, default=10)
    parser.add_argument("--hours", default="2,20,200", help="history sizes, in hours per vehicle")
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    if arguments.json:
        arguments.json.write_text(json.dumps(outcome, indent=2))
