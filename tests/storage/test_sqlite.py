"""The SQLite backend: migrations, idempotent writes, latest state, indexed history."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carcloud.errors import ConflictError, NotFoundError, StorageError
from carcloud.storage.models import DeadLetter, Sample, TelemetryMessage
from carcloud.storage.sqlite import SqliteStorage

VIN = "WVWZZZ1JZXW000001"
SECOND = 1_000_000


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    store = SqliteStorage(tmp_path / "carcloud.db")
    await store.open()
    await store.create_brand("volta", "Volta")
    await store.create_vehicle(VIN, "volta", "E1", 2025, ["fleet:a"], "scrypt$hash")
    yield store
    await store.close()


def message(seq: int, ts: int, speed: float, **more: object) -> TelemetryMessage:
    samples = [Sample("Vehicle.Speed", ts, speed)]
    samples += [Sample(path.replace("_", "."), ts, value) for path, value in more.items()]  # type: ignore[arg-type]
    return TelemetryMessage(VIN, seq, ts, ts + 5, tuple(samples))


async def test_migrations_apply_once_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    first = SqliteStorage(path)
    await first.open()
    await first.create_brand("a", "A")
    version = await first.schema_version()
    await first.close()
    second = SqliteStorage(path)
    await second.open()
    assert await second.schema_version() == version >= 1
    assert [b.slug for b in await second.list_brands()] == ["a"]
    await second.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_redelivered_message_creates_no_duplicate(storage: SqliteStorage) -> None:
    batch = [message(1, 10 * SECOND, 50.0), message(2, 11 * SECOND, 52.0)]
    first = await storage.write_telemetry(batch, [])
    again = await storage.write_telemetry(batch, [])
    assert (first.messages_stored, first.samples_stored) == (2, 2)
    assert (again.messages_stored, again.duplicates, again.samples_stored) == (0, 2, 0)
    assert await storage.count_samples(VIN) == 2


async def test_latest_state_keeps_the_newest_vehicle_time(storage: SqliteStorage) -> None:
    await storage.write_telemetry([message(5, 20 * SECOND, 80.0)], [])
    await storage.write_telemetry([message(4, 19 * SECOND, 70.0)], [])  # late arrival, older
    latest = {v.path: v for v in (await storage.latest_state(VIN)).values}
    assert latest["Vehicle.Speed"].value == 80.0 and latest["Vehicle.Speed"].ts == 20 * SECOND
    history = await storage.history(VIN, "Vehicle.Speed", None, None, 10)
    assert [p.value for p in history] == [70.0, 80.0]


async def test_values_keep_their_types(storage: SqliteStorage) -> None:
    msg = TelemetryMessage(
        VIN,
        1,
        SECOND,
        SECOND,
        (
            Sample("Vehicle.IsMoving", SECOND, True),
            Sample("Vehicle.Powertrain.Transmission.CurrentGear", SECOND, 3),
            Sample("Vehicle.LowVoltageSystemState", SECOND, "ON"),
            Sample("Vehicle.Diagnostics.DTCList", SECOND, ["P0A80", "U0100"]),
        ),
    )
    await storage.write_telemetry([msg], [])
    latest = {v.path: v.value for v in (await storage.latest_state(VIN)).values}
    assert latest == {
        "Vehicle.IsMoving": True,
        "Vehicle.Powertrain.Transmission.CurrentGear": 3,
        "Vehicle.LowVoltageSystemState": "ON",
        "Vehicle.Diagnostics.DTCList": ["P0A80", "U0100"],
    }


async def test_history_range_limit_and_downsampling(storage: SqliteStorage) -> None:
    await storage.write_telemetry([message(i, i * SECOND, float(i)) for i in range(120)], [])
    window = await storage.history(VIN, "Vehicle.Speed", 10 * SECOND, 20 * SECOND, 1000)
    assert [p.value for p in window] == [float(i) for i in range(10, 20)]
    assert len(await storage.history(VIN, "Vehicle.Speed", None, None, 5)) == 5
    minutes = await storage.history(VIN, "Vehicle.Speed", None, None, 100, bucket_us=60 * SECOND)
    assert [(p.value, p.count) for p in minutes] == [(29.5, 60), (89.5, 60)]


async def test_history_query_uses_the_index_not_a_scan(storage: SqliteStorage) -> None:
    await storage.write_telemetry([message(i, i * SECOND, float(i)) for i in range(50)], [])
    conn = sqlite3.connect(storage.path)
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


async def test_samples_of_one_instant_in_two_messages_merge(storage: SqliteStorage) -> None:
    await storage.write_telemetry([message(1, SECOND, 10.0)], [])
    other = TelemetryMessage(VIN, 2, SECOND, SECOND, (Sample("Vehicle.IsMoving", SECOND, True),))
    await storage.write_telemetry([other], [])
    assert await storage.count_samples(VIN) == 1
    assert [p.value for p in await storage.history(VIN, "Vehicle.Speed", None, None, 9)] == [10.0]
    assert [p.value for p in await storage.history(VIN, "Vehicle.IsMoving", None, None, 9)] == [
        True
    ]


async def test_unknown_vin_and_dead_letters_are_kept_with_reasons(storage: SqliteStorage) -> None:
    stranger = TelemetryMessage(
        "ZZZZZZZZZZZZ99999", 1, SECOND, SECOND, (Sample("Vehicle.Speed", SECOND, 1.0),)
    )
    letter = DeadLetter(SECOND, f"vehicles.{VIN}.telemetry", VIN, "malformed JSON: x", b"{oops")
    result = await storage.write_telemetry([stranger, message(1, SECOND, 3.0)], [letter])
    assert result.messages_stored == 1 and result.unknown_vins == ("ZZZZZZZZZZZZ99999",)
    letters = await storage.list_dead_letters(None, None, 10)
    assert {d.reason.split(":")[0] for d in letters} == {
        "malformed JSON",
        "unknown VIN ZZZZZZZZZZZZ99999",
    }
    assert [d.payload for d in await storage.list_dead_letters(VIN, "volta", 10)] == [b"{oops"]


async def test_registry_rules(storage: SqliteStorage) -> None:
    with pytest.raises(ConflictError):
        await storage.create_vehicle(VIN, "volta", "E1", 2025, [], "h")
    with pytest.raises(NotFoundError):
        await storage.create_vehicle("WVWZZZ1JZXW000009", "nobrand", "E1", 2025, [], "h")
    with pytest.raises(NotFoundError):
        await storage.get_vehicle(VIN, brand="otherbrand")
    updated = await storage.update_vehicle(VIN, None, tags=["b", "a"])
    assert updated.tags == ("a", "b")
    assert [v.vin for v in await storage.list_vehicles(tag="a")] == [VIN]
    assert await storage.list_vehicles(tag="fleet:a") == []


async def test_presence_ignores_older_events(storage: SqliteStorage) -> None:
    assert await storage.set_presence(VIN, True, 10 * SECOND)
    assert await storage.set_presence(VIN, False, 5 * SECOND)  # an event that arrives late
    vehicle = await storage.get_vehicle(VIN)
    assert vehicle.online and vehicle.last_seen_at == 10 * SECOND
    assert not await storage.set_presence("ZZZZZZZZZZZZ99999", True, SECOND)


async def test_delete_vehicle_removes_its_data(storage: SqliteStorage) -> None:
    await storage.write_telemetry([message(1, SECOND, 3.0)], [])
    await storage.delete_vehicle(VIN, "volta")
    assert await storage.count_samples() == 0
    with pytest.raises(NotFoundError):
        await storage.get_vehicle(VIN)


async def test_writes_waiting_together_commit_together_and_fail_alone(
    storage: SqliteStorage,
) -> None:
    """Group commit: concurrent writes share transactions; a failing one is rolled back alone."""
    vins = [f"WVWZZZ1JZXW1{index:05d}" for index in range(40)]
    before = storage._writer.transactions
    outcomes = await asyncio.gather(
        *(storage.create_vehicle(vin, "volta", "E1", 2025, [], "scrypt$hash") for vin in vins),
        storage.create_vehicle(VIN, "volta", "E1", 2025, [], "scrypt$hash"),  # already there
        return_exceptions=True,
    )
    assert isinstance(outcomes[-1], ConflictError)
    assert all(not isinstance(outcome, Exception) for outcome in outcomes[:-1])
    listed = {vehicle.vin for vehicle in await storage.list_vehicles(limit=1000)}
    assert set(vins) <= listed
    # 41 writes, far fewer transactions: they waited together.
    assert storage._writer.transactions - before < 20


async def test_a_write_that_fails_leaves_the_writer_working(storage: SqliteStorage) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO brands (slug, name, created_at) VALUES ('half', 'Half', 0)")
        raise RuntimeError("bug in a write")

    with pytest.raises(RuntimeError, match="bug in a write"):
        await storage._write(broken)
    with pytest.raises(StorageError, match="no such table"):
        await storage._write(lambda conn: conn.execute("SELECT * FROM nowhere"))
    # Rolled back, and the next writes go through.
    assert "half" not in {brand.slug for brand in await storage.list_brands()}
    await storage.create_brand("after", "After")
    assert "after" in {brand.slug for brand in await storage.list_brands()}
