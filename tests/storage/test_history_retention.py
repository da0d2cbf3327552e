"""Retention contract on both backends: old full-rate history goes, recent stays, and the
downsampled history keeps answering bucketed queries for the days that went."""

from __future__ import annotations

from carcloud.ingest.maintenance import maintain_history
from carcloud.ingest.models import Sample, TelemetryMessage
from carcloud.ingest.retention import DAY_US, MINUTE_US, RetentionPolicy, day_start
from carcloud.ingest.store import TelemetryStore
from tests.storage.conftest import SECOND, VIN

NOW = 1_773_144_000 * SECOND  # 2026-03-10 12:00 UTC
TODAY = day_start(NOW)
SPEED = "Vehicle.Speed"
MOVING = "Vehicle.IsMoving"


async def fill_day(store: TelemetryStore, day: int, first_seq: int) -> None:
    """Ten minutes of one sample every 10 s: speed rising 0..59, moving after minute 5."""
    batch = []
    for index in range(60):
        ts = day + 3600 * SECOND + index * 10 * SECOND
        samples = (Sample(SPEED, ts, float(index)), Sample(MOVING, ts, index >= 30))
        batch.append(TelemetryMessage(VIN, first_seq + index, ts, ts, samples))
    await store.write_telemetry(batch, [])


async def test_retention_drops_old_full_rate_history_and_keeps_minutes(
    telemetry: TelemetryStore,
) -> None:
    days = [TODAY - offset * DAY_US for offset in (5, 4, 1, 0)]
    for number, day in enumerate(days):
        await fill_day(telemetry, day, number * 1000)
    old_day = days[0]
    before_hourly = await telemetry.history(
        VIN, SPEED, old_day, old_day + DAY_US, 100, 3600 * SECOND
    )
    before_minutes = await telemetry.history(VIN, SPEED, old_day, old_day + DAY_US, 100, MINUTE_US)
    before_moving = await telemetry.history(VIN, MOVING, old_day, old_day + DAY_US, 100, MINUTE_US)
    assert len(before_minutes) == 10 and await telemetry.count_samples(VIN) == 240

    report = await maintain_history(telemetry, RetentionPolicy(2, 30), NOW)

    assert report.retention is not None
    assert report.retention.full_rate_from == TODAY - 2 * DAY_US
    # Full rate: the two old days are gone, the last two days are all there.
    assert await telemetry.count_samples(VIN) == 120
    assert await telemetry.history(VIN, SPEED, old_day, old_day + DAY_US, 100) == []
    recent = await telemetry.history(VIN, SPEED, days[2], None, 1000)
    assert len(recent) == 120 and recent[0].value == 0.0
    # Downsampled: the old day still answers by minute and by hour, as before.
    assert await telemetry.history(VIN, SPEED, old_day, old_day + DAY_US, 100, MINUTE_US) == (
        before_minutes
    )
    hourly = await telemetry.history(VIN, SPEED, old_day, old_day + DAY_US, 100, 3600 * SECOND)
    assert [(p.ts, p.count) for p in hourly] == [(p.ts, p.count) for p in before_hourly]
    assert abs(float(hourly[0].value) - 29.5) < 1e-9  # type: ignore[arg-type]
    moving = await telemetry.history(VIN, MOVING, old_day, old_day + DAY_US, 100, MINUTE_US)
    assert moving == before_moving and moving[-1].value is True and moving[0].value is False
    # A range across the boundary: minutes of dropped days, then full-rate buckets.
    daily = await telemetry.history(VIN, SPEED, days[0], None, 100, DAY_US)
    assert [(p.ts, p.count) for p in daily] == [(day, 60) for day in days]


async def test_downsampled_history_expires_too(telemetry: TelemetryStore) -> None:
    old_day, recent_day = TODAY - 40 * DAY_US, TODAY - 10 * DAY_US
    await fill_day(telemetry, old_day, 0)
    await fill_day(telemetry, recent_day, 1000)
    await maintain_history(telemetry, RetentionPolicy(2, 30), NOW)
    assert await telemetry.history(VIN, SPEED, old_day, old_day + DAY_US, 100, MINUTE_US) == []
    kept = await telemetry.history(VIN, SPEED, recent_day, recent_day + DAY_US, 100, MINUTE_US)
    assert len(kept) == 10 and sum(p.count for p in kept) == 60


async def test_a_second_pass_changes_nothing(telemetry: TelemetryStore) -> None:
    old_day = TODAY - 5 * DAY_US
    await fill_day(telemetry, old_day, 0)
    await maintain_history(telemetry, RetentionPolicy(2, 0), NOW)
    first = await telemetry.history(VIN, SPEED, old_day, old_day + DAY_US, 100, MINUTE_US)
    again = await maintain_history(telemetry, RetentionPolicy(2, 0), NOW)
    assert again.retention is not None and again.retention.minutes_written == 0
    assert await telemetry.history(VIN, SPEED, old_day, old_day + DAY_US, 100, MINUTE_US) == first
    assert sum(p.count for p in first) == 60


async def test_no_policy_keeps_everything(telemetry: TelemetryStore) -> None:
    await fill_day(telemetry, TODAY - 400 * DAY_US, 0)
    report = await maintain_history(telemetry, RetentionPolicy(), NOW)
    assert report.retention is None
    assert await telemetry.count_samples(VIN) == 60


async def test_retention_trims_message_identities_with_the_full_rate_history(
    telemetry: TelemetryStore,
) -> None:
    old_day, recent_day = TODAY - 5 * DAY_US, TODAY - DAY_US
    await fill_day(telemetry, old_day, 0)
    await fill_day(telemetry, recent_day, 1000)

    report = await maintain_history(telemetry, RetentionPolicy(2, 30), NOW)

    assert report.retention is not None and report.retention.messages_deleted == 60
    # A recent message sent again is still recognised.
    ts = recent_day + 3600 * SECOND
    again = TelemetryMessage(VIN, 1000, ts, ts, (Sample(SPEED, ts, 0.0),))
    assert (await telemetry.write_telemetry([again], [])).duplicates == 1
    # One older than full-rate history is not: it is stored as a late row of its day.
    ts = old_day + 3600 * SECOND
    old = TelemetryMessage(VIN, 0, ts, ts, (Sample(SPEED, ts, 0.0),))
    assert (await telemetry.write_telemetry([old], [])).messages_stored == 1
