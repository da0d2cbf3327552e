"""A parked car's unchanged data costs the alerts deriver no write a derivation (issue 12):
an evaluation that only moves the rules' cursors saves them every CHECKPOINT_ROWS rows
or CHECKPOINT_SPAN_US of the car's time. What a user sees stays the same: a `for`
timer fires once, at its time, also after a restart mid-way and with two derive
processes; a timer started, an alert raised or cleared is saved at once. Over real
SQLite and PostgreSQL stores."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from carcloud.alerts.evaluation import CURSOR
from carcloud.alerts.models import Alert, AlertRule, RuleState
from carcloud.alerts.service import AlertService
from carcloud.alerts.store import AlertStore, EmitAlert
from carcloud.ingest.models import TelemetryMessage
from carcloud.storage import Stores
from carcloud.storage.postgres import postgres_stores
from carcloud.storage.sqlite import sqlite_stores
from carcloud.telematics.service import CHECKPOINT_ROWS, CHECKPOINT_SPAN_US
from tests.pg import postgres_database

SECOND = 1_000_000
VIN = "WVWZZZ1JZXW000001"
T0 = 1_780_000_000 * SECOND
VOLTAGE = "Vehicle.LowVoltageBattery.CurrentVoltage"
SPEED = "Vehicle.Speed"


@pytest.fixture(params=["sqlite", "postgresql"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    """Every store of one backend with brand `volta` and one car."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            opened = sqlite_stores(tmp_path / "carcloud.db")
        else:
            opened = postgres_stores(await stack.enter_async_context(postgres_database()))
        await opened.open()
        stack.push_async_callback(opened.close)
        await opened.registry.create_brand("volta", "Volta")
        await opened.registry.create_vehicle(VIN, "volta", "E1", 2025, [], "scrypt$h")
        yield opened


class Counted:
    """The real alert store, counting the evaluations saved (write transactions)."""

    def __init__(self, store: AlertStore) -> None:
        self.store, self.saves = store, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def save_evaluation(
        self,
        vin: str,
        states: Sequence[RuleState],
        dropped: Sequence[tuple[str, str]],
        raised: Sequence[Alert],
        cleared: Sequence[tuple[str, int]],
        emit: EmitAlert | None = None,
        expected: Mapping[str, int | None] | None = None,
    ) -> list[Alert]:
        self.saves += 1
        return await self.store.save_evaluation(
            vin, states, dropped, raised, cleared, emit, expected
        )


class CountedReads:
    """The real history, counting the rows each evaluation reads."""

    def __init__(self, history: Any) -> None:
        self.history = history
        self.read: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.history, name)

    async def history_rows(
        self, vin: str, paths: Sequence[str], start: int, end: int | None = None
    ) -> Any:
        rows = await self.history.history_rows(vin, paths, start, end)
        self.read.append(len(rows))
        return rows


def service(stores: Stores, alerts: Any = None, history: Any = None) -> AlertService:
    """An alert service as one derive process has it (its own caches)."""
    return AlertService(alerts or stores.alerts, history or stores.telematics, stores.registry)


async def write_row(stores: Stores, second: int, values: Mapping[str, float]) -> int:
    """One row of the car at T0 + `second`; its time."""
    ts = T0 + second * SECOND
    samples = tuple((path, ts, value) for path, value in values.items())
    await stores.telemetry.write_telemetry([TelemetryMessage(VIN, second + 1, ts, ts, samples)], [])
    return ts


async def raised_events(stores: Stores) -> list[str]:
    events = await stores.events.list_events(0, "volta", ["alert"])
    return [e.type for e in events]


def low_voltage() -> AlertRule:
    return AlertRule("new", "volta", "12 V low", condition=f"{VOLTAGE} < 11.8", for_s=30.0)


async def cursor_of(stores: Stores, rule: AlertRule) -> RuleState:
    [cursor] = [s for s in await stores.alerts.load_states(VIN, rule.id) if s.key == CURSOR]
    return cursor


async def test_a_parked_car_saves_rarely_and_its_for_timer_fires_once_across_a_restart(
    stores: Stores,
) -> None:
    # A row a second, each derived: 12.4 V for 20 s, then 11.5 V for 100 s. The 30 s
    # timer starts at 20 s and is saved at once; the process restarts at 35 s (a new
    # service, nothing kept in memory); the alert is raised at 50 s, once.
    counted = Counted(stores.alerts)
    reads = CountedReads(stores.telematics)
    first = service(stores, counted, reads)
    rule = await first.create_rule(low_voltage())
    derive = first.derive
    for second in range(120):
        if second == 35:
            derive = service(stores, counted, reads).derive
        ts = await write_row(stores, second, {VOLTAGE: 12.4 if second < 20 else 11.5})
        await derive(VIN, ts)
        cursor = await cursor_of(stores, rule)
        if second == 20:  # the timer started: saved at once, with the cursor
            assert (cursor.pending_since, cursor.evaluated_ts) == (ts, ts)
        if second == 34:  # not saved since (only the cursor moved)
            assert (cursor.pending_since, cursor.evaluated_ts) == (T0 + 20 * SECOND,) * 2
        if second == 50:  # raised: saved at once
            assert cursor.alert_id is not None and cursor.evaluated_ts == ts
        assert ts - cursor.evaluated_ts < CHECKPOINT_ROWS * SECOND  # the lag is bounded

    [alert] = await first.list_alerts("volta")
    assert (alert.raised_ts, alert.pending_since) == (T0 + 50 * SECOND, T0 + 20 * SECOND)
    assert alert.status == "active"
    assert await raised_events(stores) == ["alert.raised"]
    # 120 derivations: the first cursor, the timer, the raise, and a cursor save every
    # CHECKPOINT_ROWS rows of the 69 after the raise (before: 120 saves).
    assert counted.saves <= 3 + 69 // CHECKPOINT_ROWS
    # The process goes on from the cursors it did not save: each derivation reads its new
    # row, but the first after the restart, which reads again from the stored cursor (20).
    assert [n for n in reads.read if n != 1] == [15]


async def test_a_car_with_sparse_rows_saves_its_cursor_every_span_of_its_time(
    stores: Stores,
) -> None:
    # A row a minute (fewer than CHECKPOINT_ROWS in the span): the cursor is saved once
    # it is CHECKPOINT_SPAN_US on, so what is read again stays within that span.
    counted = Counted(stores.alerts)
    alerts = service(stores, counted)
    rule = await alerts.create_rule(low_voltage())
    minutes = 60
    for minute in range(minutes):
        ts = await write_row(stores, minute * 60, {VOLTAGE: 12.4})
        await alerts.derive(VIN, ts)
        cursor = await cursor_of(stores, rule)
        assert ts - cursor.evaluated_ts < CHECKPOINT_SPAN_US
    span_rows = CHECKPOINT_SPAN_US // (60 * SECOND)
    assert counted.saves == 1 + (minutes - 1) // span_rows
    assert await alerts.list_alerts("volta") == []


async def test_state_changes_are_saved_at_once_and_a_clear_follows_once(stores: Stores) -> None:
    # Speeding with no timer: raised at the first fast row and cleared at the first slow
    # one, each saved by the derivation that saw it; rows in between only move cursors.
    counted = Counted(stores.alerts)
    alerts = service(stores, counted)
    rule = await alerts.create_rule(
        AlertRule("new", "volta", "fast", condition=f"{SPEED} > 130", for_s=0.0)
    )
    pattern = [100.0] * 5 + [140.0] * 10 + [90.0] * 10
    for second, speed in enumerate(pattern):
        ts = await write_row(stores, second, {SPEED: speed})
        await alerts.derive(VIN, ts)
        cursor = await cursor_of(stores, rule)
        if second in (5, 15):
            assert cursor.evaluated_ts == ts
            assert (cursor.alert_id is None) == (second == 15)
    [alert] = await alerts.list_alerts("volta")
    assert (alert.raised_ts, alert.cleared_ts) == (T0 + 5 * SECOND, T0 + 15 * SECOND)
    assert await raised_events(stores) == ["alert.raised", "alert.cleared"]
    assert counted.saves == 3  # the first cursor, the raise, the clear


async def test_two_derive_processes_over_unsaved_cursors_raise_the_alert_once(
    stores: Stores,
) -> None:
    # Two processes derive the car at the same time after each row; neither saves the
    # moved cursors, both start again from the stored ones: the timer runs from where it
    # started and the alert is raised once, at its time.
    one, two = service(stores), service(stores)
    rule = await one.create_rule(low_voltage())
    for second in range(90):
        ts = await write_row(stores, second, {VOLTAGE: 12.4 if second < 10 else 11.5})
        await asyncio.gather(one.derive(VIN, ts), two.derive(VIN, ts))
    [alert] = await one.list_alerts("volta")
    assert (alert.raised_ts, alert.pending_since) == (T0 + 40 * SECOND, T0 + 10 * SECOND)
    assert await raised_events(stores) == ["alert.raised"]
    cursor = await cursor_of(stores, rule)
    assert cursor.alert_id == alert.id and cursor.pending_since is None


async def test_late_data_behind_the_cursors_and_a_restart(stores: Stores) -> None:
    # 100 km/h for 10 s, each derived: the stored cursor stays at the first row, the
    # process goes on from the cursor it evaluated (10 s). A late row at 4.5 s (140 km/h)
    # is behind that: not evaluated, as before. After a restart, the evaluation goes on
    # from the stored cursor: the late row, newer than it, is evaluated in its place
    # (raised, and cleared at the next row, 5 s). One older than the stored cursor never is.
    alerts = service(stores)
    rule = await alerts.create_rule(
        AlertRule("new", "volta", "fast", condition=f"{SPEED} > 130", for_s=0.0)
    )
    for second in range(1, 11):
        await alerts.derive(VIN, await write_row(stores, second, {SPEED: 100.0}))
    assert (await cursor_of(stores, rule)).evaluated_ts == T0 + SECOND
    for seq, at in ((100, T0 + SECOND // 2), (101, T0 + 4 * SECOND + SECOND // 2)):
        late = TelemetryMessage(VIN, seq, at, at, ((SPEED, at, 140.0),))
        await stores.telemetry.write_telemetry([late], [])
        await alerts.derive(VIN, at)
    assert await alerts.list_alerts("volta") == []
    restarted = service(stores)
    await restarted.derive(VIN, await write_row(stores, 11, {SPEED: 100.0}))
    [alert] = await restarted.list_alerts("volta")
    assert (alert.raised_ts, alert.cleared_ts) == (T0 + 4 * SECOND + SECOND // 2, T0 + 5 * SECOND)
    assert await raised_events(stores) == ["alert.raised", "alert.cleared"]


async def test_with_a_new_process_each_derivation_rows_read_again_are_bounded(
    stores: Stores,
) -> None:
    # No cursor kept in memory (a new service, as after a restart, for every row): each
    # evaluation goes on from the stored cursors, reads at most CHECKPOINT_ROWS rows
    # again, and the timer still fires once, at its time.
    counted = Counted(stores.alerts)
    reads = CountedReads(stores.telematics)
    rule = await service(stores).create_rule(low_voltage())
    for second in range(120):
        ts = await write_row(stores, second, {VOLTAGE: 12.4 if second < 20 else 11.5})
        await service(stores, counted, reads).derive(VIN, ts)
    [alert] = await service(stores).list_alerts("volta")
    assert (alert.raised_ts, alert.pending_since) == (T0 + 50 * SECOND, T0 + 20 * SECOND)
    assert await raised_events(stores) == ["alert.raised"]
    assert counted.saves <= 3 + 69 // CHECKPOINT_ROWS
    assert max(reads.read) <= CHECKPOINT_ROWS
    assert (await cursor_of(stores, rule)).alert_id == alert.id
