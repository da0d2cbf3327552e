"""Continuous minute rollups, on both backends: a bucketed answer is the same whether it
comes from the raw rows or from the per-minute aggregates, late rows into folded minutes
show at once, and the raw tail after the watermark is always part of the answer.

SQLite folds in a periodic pass behind a watermark; PostgreSQL folds every write's rows
in the write itself (`folds_at_write`), so its pass has nothing to do: the answers must
be the same on both, the passes' reports differ."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import pytest

from carcloud.ingest.maintenance import maintain_history, roll_up
from carcloud.ingest.models import HistoryPoint, Sample, SignalValue, TelemetryMessage
from carcloud.ingest.retention import DAY_US, MINUTE_US, RetentionPolicy, day_start
from carcloud.ingest.store import TelemetryStore
from tests.storage.conftest import SECOND, VIN

NOW = 1_773_144_000 * SECOND  # 2026-03-10 12:00 UTC
START = NOW - 3 * 3600 * SECOND
HOUR = 3600 * SECOND
SPEED = "Vehicle.Speed"
MOVING = "Vehicle.IsMoving"
GEAR = "Vehicle.Powertrain.Transmission.CurrentGear"

Reading = tuple[int, str, SignalValue]  # ts, path, value


class Fleet:
    """One vehicle's writes, kept beside the store as the reference for every answer."""

    def __init__(self, store: TelemetryStore) -> None:
        self.store, self.readings, self.seq = store, list[Reading](), 0

    async def write(self, stamps: Sequence[int], speed_of: int = 0) -> None:
        batch = []
        for ts in stamps:
            self.seq += 1
            speed = float((ts // SECOND * 7 + speed_of) % 53) + 0.25
            samples = (
                Sample(SPEED, ts, speed),
                Sample(MOVING, ts, (ts // SECOND) % 70 < 35),
                Sample(GEAR, ts, (ts // SECOND) % 5),
            )
            batch.append(TelemetryMessage(VIN, self.seq, ts, ts, samples))
            self.readings += [(ts, path, value) for path, _, value in samples]
        await self.store.write_telemetry(batch, [])

    def expected(self, path: str, lower: int, upper: int, bucket: int) -> list[HistoryPoint]:
        """The buckets computed from every value written: the average (numbers) or the
        last value (others) and the count."""
        buckets: dict[int, list[tuple[int, SignalValue]]] = {}
        for ts, name, value in sorted(self.readings, key=lambda r: r[0]):
            if name == path and lower <= ts < upper:
                buckets.setdefault(ts // bucket * bucket, []).append((ts, value))
        points = []
        for start, values in sorted(buckets.items()):
            if isinstance(values[0][1], bool):
                points.append(HistoryPoint(start, values[-1][1], len(values)))
            else:
                average = math.fsum(float(v) for _, v in values) / len(values)  # type: ignore[arg-type]
                points.append(HistoryPoint(start, average, len(values)))
        return points

    async def check(self, path: str, lower: int, upper: int, bucket: int) -> None:
        """The store's answer equals the reference (averages to float rounding)."""
        got = await self.store.history(VIN, path, lower, upper, 10_000, bucket)
        want = self.expected(path, lower, upper, bucket)
        assert [(p.ts, p.count) for p in got] == [(p.ts, p.count) for p in want], (path, bucket)
        for point, reference in zip(got, want, strict=True):
            if isinstance(reference.value, float):
                assert point.value == pytest.approx(reference.value, rel=1e-12), point.ts
            else:
                assert point.value == reference.value, point.ts


QUESTIONS = [
    (SPEED, START, START + 2 * HOUR, MINUTE_US),
    (SPEED, START + 25 * SECOND, START + HOUR + 95 * SECOND, MINUTE_US),  # partial minutes
    (SPEED, START - DAY_US, NOW, HOUR),
    (SPEED, START + 17 * SECOND, NOW, 5 * MINUTE_US),
    (SPEED, day_start(START), day_start(START) + DAY_US, DAY_US),
    (SPEED, START, NOW, 90 * SECOND),  # not whole minutes: always from the raw rows
    (GEAR, START, NOW, 15 * MINUTE_US),
    (MOVING, START, NOW, MINUTE_US),
    (MOVING, START + 13 * SECOND, NOW, HOUR),
]


async def check_all(fleet: Fleet) -> None:
    for path, lower, upper, bucket in QUESTIONS:
        await fleet.check(path, lower, upper, bucket)


def every(first: int, last: int, step_s: int) -> list[int]:
    return list(range(first, last, step_s * SECOND))


async def test_bucketed_answers_are_the_same_before_and_after_a_rollup(
    telemetry: TelemetryStore,
) -> None:
    fleet = Fleet(telemetry)
    await fleet.write(every(START, START + 2 * HOUR, 10))
    await check_all(fleet)

    report = await telemetry.roll_up_history(START + HOUR)

    if not telemetry.folds_at_write:
        # The first hour went into minutes: 60 minutes of three signals.
        assert report.minutes_written == 180 and report.vehicles == 1
    else:
        assert report.minutes_written == 0  # the write folded them already
    await check_all(fleet)
    # A second pass to the same watermark has nothing to do.
    assert (await telemetry.roll_up_history(START + HOUR)).minutes_written == 0
    await check_all(fleet)


async def test_late_rows_after_a_rollup_show_at_once_and_are_folded_again(
    telemetry: TelemetryStore,
) -> None:
    fleet = Fleet(telemetry)
    await fleet.write(every(START, START + 2 * HOUR, 10))
    await telemetry.roll_up_history(START + 2 * HOUR)

    # A car's backlog: rows inside minutes that were folded, with other values.
    late = [START + 10 * MINUTE_US + 5 * SECOND, START + 61 * MINUTE_US + 7 * SECOND]
    await fleet.write(late, speed_of=11)
    await check_all(fleet)
    minute = await telemetry.history(VIN, SPEED, late[0], late[0] + SECOND, 10, MINUTE_US)
    assert minute[0].count == 1  # the partial minute: only the late row
    whole = START + 10 * MINUTE_US
    assert (await telemetry.history(VIN, SPEED, whole, whole + MINUTE_US, 10, MINUTE_US))[
        0
    ].count == 7

    report = await telemetry.roll_up_history(START + 2 * HOUR)
    # Folded again from the first dirty minute to the watermark (or by the late write).
    assert report.minutes_written == (0 if telemetry.folds_at_write else (120 - 10) * 3)
    await check_all(fleet)
    # A redelivered message changes nothing.
    again = TelemetryMessage(VIN, fleet.seq, late[1], late[1], ((SPEED, late[1], 999.0),))
    assert (await telemetry.write_telemetry([again], [])).duplicates == 1
    await check_all(fleet)


async def test_the_raw_tail_after_the_watermark_is_part_of_the_answer(
    telemetry: TelemetryStore,
) -> None:
    fleet = Fleet(telemetry)
    await fleet.write(every(START, START + HOUR + 30 * MINUTE_US, 10))
    await roll_up(telemetry, START + HOUR + 31 * MINUTE_US)  # folds to START + 1 h 30 min
    # New rows after the watermark, in the same hour and the same day.
    await fleet.write(every(START + HOUR + 30 * MINUTE_US, START + 2 * HOUR + 5 * SECOND, 10))
    await check_all(fleet)
    hourly = await telemetry.history(VIN, SPEED, START, NOW, 10, HOUR)
    assert [p.count for p in hourly] == [360, 360, 1]


async def test_retention_after_a_rollup_only_drops(telemetry: TelemetryStore) -> None:
    fleet = Fleet(telemetry)
    today = day_start(NOW)
    for offset in (5, 4, 1):
        day = today - offset * DAY_US + HOUR
        await fleet.write(every(day, day + 20 * MINUTE_US, 10))
    old = today - 5 * DAY_US
    questions = [(SPEED, old, NOW, HOUR), (SPEED, old, NOW, DAY_US), (MOVING, old, NOW, MINUTE_US)]
    rolled = await roll_up(telemetry, NOW)
    assert rolled.minutes_written == (0 if telemetry.folds_at_write else 3 * 20 * 3)

    report = await maintain_history(telemetry, RetentionPolicy(2, 30), NOW)

    assert report.retention is not None and report.retention.minutes_written == 0
    assert report.rollup is not None and report.rollup.minutes_written == 0
    assert await telemetry.count_samples(VIN) == 120
    for path, lower, upper, bucket in questions:
        await fleet.check(path, lower, upper, bucket)
    # A late row of a day still kept, then retention of that day: it is in the minutes.
    kept = today - DAY_US + HOUR + 5 * SECOND
    await fleet.write([kept], speed_of=5)
    await maintain_history(telemetry, RetentionPolicy(1, 30), NOW + DAY_US)
    assert await telemetry.count_samples(VIN) == 0
    for path, lower, upper, bucket in questions:
        await fleet.check(path, lower, upper, bucket)


async def test_late_rows_written_while_passes_run_are_never_left_out(
    telemetry: TelemetryStore,
) -> None:
    fleet = Fleet(telemetry)
    await fleet.write(every(START, START + HOUR, 10))
    await telemetry.roll_up_history(START + 10 * MINUTE_US)
    writing = asyncio.Event()

    async def passes() -> None:
        while not writing.is_set():
            await telemetry.roll_up_history(START + HOUR)
            await asyncio.sleep(0)

    async with asyncio.TaskGroup() as group:
        group.create_task(passes())
        for offset in (3, 5, 7):  # late rows into minutes being folded, one write each
            for index in range(40):
                late = START + index * 90 * SECOND + offset * SECOND
                await fleet.write([late], speed_of=index)
        writing.set()
    await check_all(fleet)
    await telemetry.roll_up_history(START + HOUR)
    await check_all(fleet)


async def test_a_vehicle_time_sent_again_under_another_seq_replaces_its_values(
    telemetry: TelemetryStore,
) -> None:
    fleet = Fleet(telemetry)
    await fleet.write(every(START, START + 10 * MINUTE_US, 10))
    await roll_up(telemetry, START + HOUR)
    # The car resends two instants with new values (a new seq each): the raw rows hold
    # the new values, and so must every bucket, whether it reads aggregates or rows.
    again = [START + 2 * MINUTE_US + 10 * SECOND, START + 7 * MINUTE_US]
    await fleet.write(again, speed_of=29)
    before, resent = fleet.readings[:-6], fleet.readings[-6:]
    fleet.readings = [reading for reading in before if reading[0] not in again] + resent
    await check_all(fleet)
    minute = START + 2 * MINUTE_US
    speeds = await telemetry.history(VIN, SPEED, minute, minute + MINUTE_US, 10, MINUTE_US)
    assert speeds[0].count == 6
    await telemetry.roll_up_history(START + HOUR)
    await check_all(fleet)


async def test_writers_at_once_into_the_same_minutes_lose_nothing(
    telemetry: TelemetryStore,
) -> None:
    """Several ingest processes commit batches of the same vehicle and minutes at once
    (PostgreSQL: concurrent transactions merging the same minute rows)."""
    fleets = [Fleet(telemetry) for _ in range(4)]
    for index, fleet in enumerate(fleets):
        fleet.seq = index * 1_000_000  # distinct seqs, as one car's messages spread out

    async def write(index: int) -> None:
        for batch in range(10):
            first = START + (batch * 4 + index) * SECOND
            await fleets[index].write(every(first, first + 160 * SECOND, 40))

    await asyncio.gather(*(write(index) for index in range(4)))
    merged = Fleet(telemetry)
    merged.readings = [reading for fleet in fleets for reading in fleet.readings]
    await telemetry.roll_up_history(START + HOUR)
    for path in (SPEED, MOVING):
        await merged.check(path, START, START + HOUR, MINUTE_US)
        await merged.check(path, START, START + HOUR, 5 * MINUTE_US)
