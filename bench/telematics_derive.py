"""Derivation cost while a trip is under way: resumed from the checkpoint vs from history.

    python bench/telematics_derive.py [--hours 0.25,1,2] [--rounds 20]

One vehicle drives for HOURS at 1 Hz (13 signals a second, SQLite). Then ROUNDS
times: 5 more seconds are committed and the vehicle is derived, as the derive role
does after each batch. "resumed" is the service as it runs (it goes on from the
checkpoint the last derivation saved, reading and scanning only the 5 new seconds);
"history" is the baseline, the same service told that data from the open trip's
start changed (as after a backlog there), so it reads the history and detects
again from the trip's start. Both in the same run, on the same file.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from carcloud.ingest.models import TelemetryMessage
from carcloud.storage.sqlite import sqlite_stores
from carcloud.telematics import timeline as tl
from carcloud.telematics.service import TelematicsService

VIN = "WVWZZZ1JZXW000001"
SECOND = 1_000_000
START = 1_780_000_000 * SECOND


def sample(t: int) -> dict[str, Any]:
    """The car at second t of a steady drive."""
    speed = 70 + 10 * math.sin(t / 60)
    return {
        tl.SPEED: round(speed, 1), tl.GEAR: 1, tl.POWER_STATE: "ON",
        tl.ODOMETER: round(1000 + t * 70 / 3600, 3), tl.LATITUDE: 48.1 + t * 1e-5,
        tl.LONGITUDE: 11.5, tl.BATTERY_POWER: -round(9000 + 50 * speed), tl.SOC: 80 - t / 600,
        tl.OUTSIDE_TEMPERATURE: 12.0, tl.CABLE: False, tl.IS_CHARGING: False,
        tl.DC_CURRENT: 0.0, tl.AC_CURRENT: 0.0,
    }  # fmt: skip


def messages(first: int, count: int) -> list[TelemetryMessage]:
    return [
        TelemetryMessage(
            VIN, t, START + t * SECOND, START + t * SECOND,
            tuple((path, START + t * SECOND, value) for path, value in sample(t).items()),
        )
        for t in range(first, first + count)
    ]  # fmt: skip


async def measure(hours: float, rounds: int, folder: Path) -> dict[str, float]:
    stores = sqlite_stores(folder / f"bench-{hours}.db")
    await stores.open()
    try:
        await stores.registry.create_brand("volta", "Volta")
        await stores.registry.create_vehicle(VIN, "volta", "E1", 2025, [], "x")
        seconds = int(hours * 3600)
        for first in range(0, seconds, 3600):
            await stores.telemetry.write_telemetry(messages(first, min(3600, seconds - first)), [])
        service = TelematicsService(stores.telematics)
        await service.derive(VIN, START)
        times: dict[str, list[float]] = {"resumed": [], "history": []}
        now = seconds
        for index in range(rounds * 2):
            way = "resumed" if index % 2 == 0 else "history"
            await stores.telemetry.write_telemetry(messages(now, 5), [])
            since = START if way == "history" else START + now * SECOND
            began = time.perf_counter()
            await service.derive(VIN, since)
            times[way].append(time.perf_counter() - began)
            now += 5
        trips = await stores.telematics.list_trips(VIN, None)
        assert len(trips) == 1 and trips[0].status == "driving", trips
        return {way: statistics.median(values) * 1000 for way, values in times.items()}
    finally:
        await stores.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", default="0.25,1,2")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for hours in (float(h) for h in args.hours.split(",")):
            result = await measure(hours, args.rounds, Path(folder))
            print(
                f"open trip {hours:5.2f} h: derive median resumed {result['resumed']:7.1f} ms, "
                f"from history {result['history']:7.1f} ms "
                f"({result['history'] / result['resumed']:.1f} x)"
            )


if __name__ == "__main__":
    asyncio.run(main())
