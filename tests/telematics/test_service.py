"""Re-derivation over a real store: whatever order committed data arrives in, the stored
trips and sessions end equal to deriving the whole history at once."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from carcloud.ingest.models import TelemetryMessage
from carcloud.storage import Stores
from carcloud.storage.sqlite import sqlite_stores
from carcloud.telematics.charging import detect_sessions
from carcloud.telematics.models import DetectionSettings
from carcloud.telematics.service import TelematicsService, downsample
from carcloud.telematics.timeline import Position, build_timeline
from carcloud.telematics.trips import detect_trips
from tests.telematics.drive import CHARGE, DAY, SECOND, rows, run

VIN = "WVWZZZ1JZXW000001"


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    stores = sqlite_stores(tmp_path / "carcloud.db")
    await stores.open()
    await stores.registry.create_brand("volta", "Volta")
    await stores.registry.create_vehicle(VIN, "volta", "E1", 2025, [], "scrypt$h")
    yield stores
    await stores.close()


def _messages(samples: list[tuple[int, dict[str, Any]]], first_seq: int) -> list[TelemetryMessage]:
    return [
        TelemetryMessage(
            VIN, first_seq + n, ts, ts, tuple((path, ts, value) for path, value in values.items())
        )
        for n, (ts, values) in enumerate(samples)
    ]


async def _feed(stores: Stores, service: TelematicsService, chunks: list[list[Any]]) -> None:
    seq = 0
    for chunk in chunks:
        await stores.telemetry.write_telemetry(_messages(chunk, seq), [])
        seq += len(chunk)
        await service.derive(VIN, min(ts for ts, _ in chunk))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_any_arrival_order_ends_with_the_trips_of_the_whole_history(
    stores: Stores, seed: int
) -> None:
    script = run(DAY + CHARGE)
    samples = rows(script)
    # Live in order, in batches of 5 s, except three offline stretches sent later, in
    # random order (a backlog can also arrive before newer live data).
    rng = random.Random(seed)
    holes = sorted(rng.sample(range(100, len(samples) - 700, 400), 3))
    late = [samples[h : h + rng.randint(60, 600)] for h in holes]
    late_ts = {ts for chunk in late for ts, _ in chunk}
    live = [s for s in samples if s[0] not in late_ts]
    chunks = [live[i : i + 5] for i in range(0, len(live), 5)]
    for chunk in late:
        chunks.insert(rng.randint(len(chunks) // 2, len(chunks)), chunk)
    service = TelematicsService(stores.telematics)
    await _feed(stores, service, chunks)

    moments = build_timeline(samples)
    settings = DetectionSettings()
    assert await stores.telematics.list_trips(VIN, None) == list(
        reversed(detect_trips(VIN, moments, settings))
    )
    assert await stores.telematics.list_sessions(VIN, None) == list(
        reversed(detect_sessions(VIN, moments, settings))
    )
    completed = await stores.events.list_events(0, None, ["trip.completed"])
    assert len(completed) >= 2


async def test_an_unknown_vehicle_derives_nothing(stores: Stores) -> None:
    service = TelematicsService(stores.telematics)
    derived = await service.derive("WVWZZZ1JZXW000002", 0)
    assert derived.trips.created == () and derived.sessions.created == ()


def test_downsample_keeps_ends_and_spreads_evenly() -> None:
    points = [(i * SECOND, Position(48.0 + i / 1000, 11.0)) for i in range(1001)]
    picked = downsample(points, 11)
    assert [p[0] // SECOND for p in picked] == list(range(0, 1001, 100))
    assert downsample(points[:5], 11) == points[:5]


async def test_ingest_running_ahead_of_derive_is_not_read_again_and_late_rows_still_count(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Live, ingest commits the next batch while derive works on the last one: a batch's
    # rows are then already in the kept timeline. Reading the open trip's history again
    # for each batch made a fleet of 50 fall behind (bench/telematics.py).
    script = run(DAY + CHARGE)
    samples = rows(script)
    late = samples[900:1200]  # five minutes of a drive sent after the live data behind it
    live = samples[:900] + samples[1200:]
    chunks = [live[i : i + 5] for i in range(0, len(live), 5)]
    chunks.insert(len(chunks) * 3 // 4, late)
    read: list[int] = []
    history_rows = stores.telematics.history_rows

    async def counted(vin: str, paths: Any, start: int, end: int | None = None) -> Any:
        found = await history_rows(vin, paths, start, end)
        read.append(len(found))
        return found

    monkeypatch.setattr(stores.telematics, "history_rows", counted)
    service = TelematicsService(stores.telematics)
    seq = 0
    for ahead, chunk in zip(chunks, chunks[1:] + [[]], strict=True):
        if seq == 0:
            await stores.telemetry.write_telemetry(_messages(ahead, seq), [])
            seq += len(ahead)
        if chunk:  # the next batch is committed before this one is derived
            await stores.telemetry.write_telemetry(_messages(chunk, seq), [])
            seq += len(chunk)
        await service.derive(VIN, min(ts for ts, _ in ahead))

    moments = build_timeline(samples)
    settings = DetectionSettings()
    assert await stores.telematics.list_trips(VIN, None) == list(
        reversed(detect_trips(VIN, moments, settings))
    )
    assert await stores.telematics.list_sessions(VIN, None) == list(
        reversed(detect_sessions(VIN, moments, settings))
    )
    # Each row read about twice (once new, once to check a batch already held), plus one
    # re-read of the open stretch for the late backlog: not the open trip on every batch.
    assert sum(read) < 4 * len(samples)
