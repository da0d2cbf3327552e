"""The SQLite engine itself: migrations, WAL, the history index, group commit."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from carcloud.errors import ConflictError, StorageError
from carcloud.events.models import NewEvent
from carcloud.ingest.models import Sample, TelemetryMessage
from carcloud.storage import Stores
from carcloud.storage.sqlite import SqliteEngine, sqlite_stores
from carcloud.storage.sqlite.engine import use_wal
from carcloud.storage.sqlite.events import append_events
from tests.storage.conftest import SECOND, VIN


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Stores]:
    stores = sqlite_stores(tmp_path / "carcloud.db")
    await stores.open()
    await stores.registry.create_brand("volta", "Volta")
    await stores.registry.create_vehicle(VIN, "volta", "E1", 2025, ["fleet:a"], "scrypt$hash")
    yield stores
    await stores.close()


def engine(stores: Stores) -> SqliteEngine:
    assert isinstance(stores.engine, SqliteEngine)
    return stores.engine


def message(seq: int, ts: int, speed: float) -> TelemetryMessage:
    return TelemetryMessage(VIN, seq, ts, ts + 5, (Sample("Vehicle.Speed", ts, speed),))


async def test_migrations_apply_once_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    first = sqlite_stores(path)
    await first.open()
    await first.registry.create_brand("a", "A")
    version = await first.engine.schema_version()
    await first.close()
    second = sqlite_stores(path)
    await second.open()
    assert await second.engine.schema_version() == version >= 3
    assert [b.slug for b in await second.registry.list_brands()] == ["a"]
    await second.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_history_query_uses_the_index_not_a_scan(storage: Stores) -> None:
    await storage.telemetry.write_telemetry(
        [message(i, i * SECOND, float(i)) for i in range(50)], []
    )
    conn = sqlite3.connect(engine(storage).path)
    plan = " ".join(
        str(row[3])
        for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT ts, s_vehicle_speed FROM telemetry "
            "WHERE vehicle_id = 1 AND ts >= 0 AND ts < 100 AND s_vehicle_speed IS NOT NULL "
            "ORDER BY ts"
        )
    )
    conn.close()
    assert "SEARCH" in plan and "PRIMARY KEY" in plan, plan
    assert "SCAN" not in plan, plan


async def test_writes_waiting_together_commit_together_and_fail_alone(
    storage: Stores,
) -> None:
    """Group commit: concurrent writes share transactions; a failing one is rolled back alone."""
    vins = [f"WVWZZZ1JZXW1{index:05d}" for index in range(40)]
    before = engine(storage)._writer.transactions
    outcomes = await asyncio.gather(
        *(
            storage.registry.create_vehicle(vin, "volta", "E1", 2025, [], "scrypt$hash")
            for vin in vins
        ),
        storage.registry.create_vehicle(
            VIN, "volta", "E1", 2025, [], "scrypt$hash"
        ),  # already there
        return_exceptions=True,
    )
    assert isinstance(outcomes[-1], ConflictError)
    assert all(not isinstance(outcome, Exception) for outcome in outcomes[:-1])
    listed = {vehicle.vin for vehicle in await storage.registry.list_vehicles(limit=1000)}
    assert set(vins) <= listed
    # 41 writes, far fewer transactions: they waited together.
    assert engine(storage)._writer.transactions - before < 20


async def test_a_write_that_fails_leaves_the_writer_working(storage: Stores) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO brands (slug, name, created_at) VALUES ('half', 'Half', 0)")
        raise RuntimeError("bug in a write")

    with pytest.raises(RuntimeError, match="bug in a write"):
        await engine(storage).write(broken)
    with pytest.raises(StorageError, match="no such table"):
        await engine(storage).write(lambda conn: conn.execute("SELECT * FROM nowhere"))
    # Rolled back, and the next writes go through.
    assert "half" not in {brand.slug for brand in await storage.registry.list_brands()}
    await storage.registry.create_brand("after", "After")
    assert "after" in {brand.slug for brand in await storage.registry.list_brands()}


async def test_events_of_a_write_that_fails_never_reach_the_relay(storage: Stores) -> None:
    """Writes share a transaction: the events staged by one that rolls back are dropped."""

    def broken(conn: sqlite3.Connection) -> None:
        append_events(engine(storage), conn, [NewEvent("brand.created", brand="ghost")])
        raise RuntimeError("bug after staging an event")

    storage.events.take_committed()
    outcomes = await asyncio.gather(
        engine(storage).write(broken),
        storage.events.append([NewEvent("brand.created", brand="real")]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], RuntimeError)
    assert [event.brand for event in storage.events.take_committed()] == ["real"]
    assert [e.brand for e in await storage.events.list_events(0, None)] == ["real"]


async def test_a_small_write_goes_before_the_bulk_writes_queued_ahead_of_it(
    storage: Stores,
) -> None:
    """While a bulk write runs (a telemetry batch), another bulk write and then a small one
    (a derived trip, a command) wait: the small one commits next, the queued bulk write
    after it, so a small write never waits for more than the bulk write that is running."""
    running = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first_bulk(conn: sqlite3.Connection) -> None:
        running.set()
        release.wait(10)
        order.append("bulk 1")

    def second_bulk(conn: sqlite3.Connection) -> None:
        order.append("bulk 2")

    def small(conn: sqlite3.Connection) -> None:
        order.append("small")

    sqlite = engine(storage)
    first = asyncio.create_task(sqlite.write(first_bulk, bulk=True))
    await asyncio.to_thread(running.wait, 10)
    second = asyncio.create_task(sqlite.write(second_bulk, bulk=True))
    await asyncio.sleep(0.05)  # queued first
    third = asyncio.create_task(sqlite.write(small))
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(first, second, third)
    assert order == ["bulk 1", "small", "bulk 2"]


async def test_small_writes_that_keep_coming_never_starve_a_bulk_write(storage: Stores) -> None:
    """Small writes arriving while small ones commit take turns with a waiting bulk write:
    the bulk write runs after one group of small writes, not after all of them."""
    running = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def note(name: str, wait: bool = False) -> Callable[[sqlite3.Connection], None]:
        def write(conn: sqlite3.Connection) -> None:
            if wait:
                running.set()
                release.wait(10)
            order.append(name)

        return write

    sqlite = engine(storage)
    first = asyncio.create_task(sqlite.write(note("small 1", wait=True)))
    await asyncio.to_thread(running.wait, 10)
    bulk = asyncio.create_task(sqlite.write(note("bulk"), bulk=True))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(sqlite.write(note("small 2")))
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(first, bulk, second)
    assert order == ["small 1", "bulk", "small 2"]


def test_connections_opening_a_fresh_file_at_once_all_get_wal(tmp_path: Path) -> None:
    """Workers started together on a new SQLite file: each connection's switch to WAL
    succeeds (SQLite refused all but one at once, without its busy timeout)."""
    failures: list[str] = []
    modes: list[str] = []
    for attempt in range(30):
        path = tmp_path / f"fresh{attempt}.db"
        together = threading.Barrier(6)

        def open_at_once(path: Path = path, together: threading.Barrier = together) -> None:
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            try:
                together.wait()
                use_wal(conn, path)
                modes.append(conn.execute("PRAGMA journal_mode").fetchone()[0])
            except StorageError as exc:
                failures.append(str(exc))
            finally:
                conn.close()

        threads = [threading.Thread(target=open_at_once) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert modes == ["wal"] * 180
