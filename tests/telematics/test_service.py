"""Re-derivation over a real store: whatever order committed data arrives in, the stored
trips and sessions end equal to deriving the whole history at once."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from carcloud.ingest.models import TelemetryMessage
from carcloud.storage import Stores
from carcloud.storage.sqlite import sqlite_stores
from carcloud.telematics.charging import detect_sessions
from carcloud.telematics.models import DetectionSettings, Trip
from carcloud.telematics.service import CHECKPOINT_ROWS, TelematicsService, downsample
from carcloud.telematics.store import Replacement
from carcloud.telematics.timeline import POWER_STATE, SPEED, Position, build_timeline
from carcloud.telematics.trips import detect_trips
from tests.telematics.drive import CHARGE, DAY, SECOND, Leg, rows, run

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


async def _feed(
    stores: Stores, service: TelematicsService, chunks: list[list[Any]], seq: int = 0
) -> None:
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


async def test_a_trip_left_open_by_a_long_offline_stop_is_completed_not_dropped(
    stores: Stores,
) -> None:
    # The car stops mid-drive and goes offline for 10 minutes (no data, it stood still),
    # then reports again parked: the open trip ends where the car came to rest. The first
    # data after the gap is past the lookback, and the trip must still be stored.
    script = run([Leg("park", 30), Leg("drive", 300, speed_kmh=50), Leg("stand", 30)])
    samples = rows(script)
    last = samples[-1][0]
    after = [(last + (600 + n) * SECOND, {**samples[-1][1], POWER_STATE: "OFF", SPEED: 0.0})
             for n in range(0, 60, 5)]  # fmt: skip
    chunks = [samples[i : i + 5] for i in range(0, len(samples), 5)] + [after]
    await _feed(stores, TelematicsService(stores.telematics), chunks)

    [trip] = await stores.telematics.list_trips(VIN, None)
    assert trip.completed and trip.distance_km > 3.5
    assert [trip] == detect_trips(VIN, build_timeline(samples + after), DetectionSettings())


class _CountedReads:
    """A view of the store that counts the history rows each read brings."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.read: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def history_rows(self, vin: str, paths: Any, start: int, end: int | None = None) -> Any:
        found = await self.store.history_rows(vin, paths, start, end)
        self.read.append(len(found))
        return found


async def test_a_derivation_during_a_long_open_trip_reads_only_the_new_rows(
    stores: Stores,
) -> None:
    samples = rows(run(DAY))
    middle = next(i for i, (ts, _) in enumerate(samples) if ts > samples[0][0] + 1500 * SECOND)
    await _feed(stores, TelematicsService(stores.telematics), [samples[:middle]])
    open_trip = (await stores.telematics.list_trips(VIN, None))[0]
    assert open_trip.status == "driving" and open_trip.positions > 300

    # Another derive process goes on from the checkpoint the first one saved.
    counted = _CountedReads(stores.telematics)
    service = TelematicsService(counted)
    for first in range(middle, middle + 50, 5):
        await _feed(stores, service, [samples[first : first + 5]], seq=first)
    assert sum(counted.read) == 50  # each row once, never the open trip again
    assert await stores.telematics.list_trips(VIN, None) == list(
        reversed(detect_trips(VIN, build_timeline(samples[: middle + 50]), DetectionSettings()))
    )


class _Interleaved(_CountedReads):
    """One derive process's view of the store: while its derivation reads the new rows,
    `meanwhile` runs (another process commits a backlog and derives it)."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.meanwhile: Callable[[], Awaitable[None]] | None = None
        self.refused = 0
        self.refused_trips: Replacement[Trip] | None = None  # what the refused one replaced
        self.stored_when_refused: list[Trip] | None = None

    async def history_rows(self, vin: str, paths: Any, start: int, end: int | None = None) -> Any:
        found = await super().history_rows(vin, paths, start, end)
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
        return found

    async def save_derivation(self, vin: str, version: int, *written: Any) -> Any:
        changes = await self.store.save_derivation(vin, version, *written)
        if changes is None:
            self.refused += 1
            self.refused_trips = written[0]
            self.stored_when_refused = await self.store.list_trips(vin, None)
        return changes


async def _race_over_a_backlog(
    stores: Stores,
) -> tuple[_Interleaved, TelematicsService, list[Trip], list[tuple[int, dict[str, Any]]]]:
    """Process A derives live data; a backlog inside the open trip is committed and derived
    by process B while A's derivation of the next live rows is under way, from rows read
    before the backlog. The view of A's store, A, the trips of what is committed when A's
    derivation ends, and the live rows still to come."""
    samples = rows(run(DAY))
    drive = next(i for i, (ts, _) in enumerate(samples) if ts > samples[0][0] + 1300 * SECOND)
    backlog = samples[drive : drive + 60]
    live = samples[:drive] + samples[drive + 60 :]
    split = drive + 400
    view = _Interleaved(stores.telematics)
    process_a, process_b = TelematicsService(view), TelematicsService(stores.telematics)
    await _feed(stores, process_a, [live[i : i + 5] for i in range(0, split, 5)])

    async def backlog_in_process_b() -> None:
        await stores.telemetry.write_telemetry(_messages(backlog, 100_000), [])
        await process_b.derive(VIN, backlog[0][0])

    view.meanwhile = backlog_in_process_b
    await stores.telemetry.write_telemetry(_messages(live[split : split + 5], 200_000), [])
    await process_a.derive(VIN, live[split][0])
    committed = sorted(live[: split + 5] + backlog, key=lambda row: row[0])
    trips = list(reversed(detect_trips(VIN, build_timeline(committed), DetectionSettings())))
    return view, process_a, trips, live[split + 5 :]


async def test_two_derive_processes_racing_over_a_backlog_end_with_the_whole_history(
    stores: Stores,
) -> None:
    # A's checkpoint must not win over B's: A derives again, and what is stored is the
    # trips of the whole history.
    samples = rows(run(DAY))
    view, process_a, trips, rest = await _race_over_a_backlog(stores)
    assert view.refused == 1
    assert await stores.telematics.list_trips(VIN, None) == trips
    await _feed(stores, process_a, [rest[i : i + 5] for i in range(0, len(rest), 5)], 300_000)

    assert await stores.telematics.list_trips(VIN, None) == list(
        reversed(detect_trips(VIN, build_timeline(samples), DetectionSettings()))
    )


async def test_a_derivation_that_loses_the_race_writes_none_of_its_trips(
    stores: Stores,
) -> None:
    # A's derivation lacks the backlog (its open trip is shorter than B's): when A learns
    # that B saved first, the store still holds B's trips, not A's, and A's next try
    # derives the whole history. A reader never sees A's trips without A's checkpoint.
    view, _, trips, _ = await _race_over_a_backlog(stores)
    assert view.refused == 1 and view.refused_trips is not None
    losing = view.refused_trips
    assert sorted(losing.items, key=lambda t: t.start_ts) != [
        t for t in reversed(trips) if t.start_ts >= losing.start
    ]  # A would have written other trips
    assert view.stored_when_refused == trips
    assert await stores.telematics.list_trips(VIN, None) == trips


class _CountedSaves(_CountedReads):
    """A view of the store that counts a derivation's write transactions and the
    checkpoints they save."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.transactions = 0
        self.saves = 0

    async def save_derivation(
        self, vin: str, version: int, trips: Any, sessions: Any, checkpoint: str | None
    ) -> Any:
        self.transactions += 1
        self.saves += checkpoint is not None
        return await self.store.save_derivation(vin, version, trips, sessions, checkpoint)


async def test_a_parked_car_saves_a_checkpoint_only_every_so_many_rows(stores: Stores) -> None:
    # An hour parked (a row a second), one row per derivation: a derivation that writes
    # nothing saves its checkpoint only once it is CHECKPOINT_ROWS rows on; the one after
    # it then reads fewer than that many rows again. The drive after it is detected as
    # from the whole history.
    samples = rows(run([Leg("park", 3600), *DAY]))
    parked = next(i for i, (ts, _) in enumerate(samples) if ts >= samples[0][0] + 3500 * SECOND)
    counted = _CountedSaves(stores.telematics)
    service = TelematicsService(counted)
    await _feed(stores, service, [[row] for row in samples[:parked]])
    assert await stores.telematics.list_trips(VIN, None) == []
    assert counted.saves <= parked // CHECKPOINT_ROWS + 2  # not one a derivation
    assert counted.transactions == counted.saves  # one that saves nothing writes nothing
    assert max(counted.read[1:]) <= CHECKPOINT_ROWS + 1
    rest = samples[parked:]
    await _feed(stores, service, [rest[i : i + 5] for i in range(0, len(rest), 5)], seq=parked)
    assert await stores.telematics.list_trips(VIN, None) == list(
        reversed(detect_trips(VIN, build_timeline(samples), DetectionSettings()))
    )


async def test_a_batch_ingest_committed_long_before_derive_got_to_it_is_not_derived_again(
    stores: Stores,
) -> None:
    # Ingest ran far ahead: one derivation read 600 rows of an open trip at once; derive is
    # then told about a batch among them, older than the row times the checkpoint keeps.
    # Counting the stored rows shows nothing was added: it goes on from the checkpoint
    # instead of reading the trip's history again. A row that really came late is seen.
    samples = rows(run(DAY))
    drive = next(i for i, (ts, values) in enumerate(samples) if values.get(SPEED, 0) > 0)
    ahead = samples[drive : drive + 600]
    everything_else = samples[:drive] + samples[drive + 600 :]
    counted = _CountedReads(stores.telematics)
    service = TelematicsService(counted)
    await _feed(stores, service, [samples[:drive]])
    late = ahead.pop(300)  # committed later, a backlog
    await _feed(stores, service, [ahead], seq=drive)
    counted.read.clear()
    await service.derive(VIN, ahead[10][0])  # a batch already read, 590 rows back
    assert sum(counted.read) == 0
    await _feed(stores, service, [[late]], seq=50_000)  # a real late row: from history
    assert sum(counted.read) > 300
    rest = everything_else[drive:]
    await _feed(stores, service, [rest[i : i + 5] for i in range(0, len(rest), 5)], seq=60_000)
    assert await stores.telematics.list_trips(VIN, None) == list(
        reversed(detect_trips(VIN, build_timeline(samples), DetectionSettings()))
    )
