"""TelematicsStore for SQLite: trips, charging sessions and tariffs, and history reads."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from carcloud.catalog import SignalCatalog, default_catalog
from carcloud.errors import NotFoundError
from carcloud.events.models import NewEvent
from carcloud.ingest.models import SignalValue
from carcloud.storage.codec import decode, signal_columns
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.storage.sqlite.events import append_events
from carcloud.storage.sqlite.vehicles import visible_vehicle_id
from carcloud.storage.telematics_rows import (
    SEGMENT_FIELDS,
    SESSION_FIELDS,
    TARIFF_FIELDS,
    TRIP_FIELDS,
    segment_values,
    session_of,
    session_values,
    tariff_of,
    tariff_values,
    trip_of,
    trip_values,
)
from carcloud.telematics.models import Changes, ChargingSession, Trip
from carcloud.telematics.store import EmitSession, EmitTrip
from carcloud.telematics.tariffs import Tariff
from carcloud.telematics.timeline import HistoryRow

D = TypeVar("D", Trip, ChargingSession)

_TRIP_SELECT = f"SELECT t.id, v.vin, {', '.join('t.' + f for f in TRIP_FIELDS)} FROM trips t "
_SESSION_SELECT = (
    f"SELECT s.id, v.vin, {', '.join('s.' + f for f in SESSION_FIELDS)} FROM charging_sessions s "
)
_TARIFF_SELECT = (
    f"SELECT t.id, b.slug, {', '.join('t.' + f for f in TARIFF_FIELDS)} "
    "FROM tariffs t JOIN brands b ON b.id = t.brand_id "
)


def _trips(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[Trip]:
    rows = conn.execute(_TRIP_SELECT + "JOIN vehicles v ON v.id = t.vehicle_id " + where, params)
    return [trip_of(row[0], row[1], row[2:]) for row in rows]


def _sessions(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[ChargingSession]:
    rows = conn.execute(
        _SESSION_SELECT + "JOIN vehicles v ON v.id = s.vehicle_id " + where, params
    ).fetchall()
    found = []
    for row in rows:
        segments = conn.execute(
            f"SELECT {', '.join(SEGMENT_FIELDS)} FROM charging_segments WHERE session_id = ? "
            "ORDER BY position",
            (row[0],),
        ).fetchall()
        found.append(session_of(row[0], row[1], row[2:], segments))
    return found


class SqliteTelematicsStore:
    """TelematicsStore over the shared SQLite engine."""

    def __init__(self, engine: SqliteEngine, catalog: SignalCatalog | None = None) -> None:
        self.engine = engine
        self._columns = signal_columns(catalog or default_catalog())

    # ---- history -------------------------------------------------------------------------

    async def history_rows(
        self, vin: str, paths: Sequence[str], start: int, end: int | None = None
    ) -> list[HistoryRow]:
        wanted = [(path, *self._columns[path]) for path in paths if path in self._columns]
        if not wanted:
            return []
        names = ", ".join(column for _, column, _ in wanted)
        any_set = " OR ".join(f"{column} IS NOT NULL" for _, column, _ in wanted)

        def query(conn: sqlite3.Connection) -> list[HistoryRow]:
            ids = conn.execute("SELECT id FROM vehicles WHERE vin = ?", (vin,)).fetchone()
            if ids is None:
                return []
            rows = conn.execute(
                f"SELECT ts, {names} FROM telemetry WHERE vehicle_id = ? AND ts >= ? AND ts < ? "
                f"AND ({any_set}) ORDER BY ts",
                (ids[0], start, end if end is not None else 2**62),
            )
            result: list[HistoryRow] = []
            for row in rows:
                values = {
                    path: decode(kind, raw)
                    for (path, _, kind), raw in zip(wanted, row[1:], strict=True)
                    if raw is not None
                }
                result.append((row[0], values))
            return result

        return await self.engine.read(query)

    async def count_rows(
        self, vin: str, paths: Sequence[str], start: int, end: int | None = None
    ) -> int:
        columns = [self._columns[path][0] for path in paths if path in self._columns]
        if not columns:
            return 0
        any_set = " OR ".join(f"{column} IS NOT NULL" for column in columns)

        def query(conn: sqlite3.Connection) -> int:
            ids = conn.execute("SELECT id FROM vehicles WHERE vin = ?", (vin,)).fetchone()
            if ids is None:
                return 0
            found = conn.execute(
                f"SELECT COUNT(*) FROM telemetry WHERE vehicle_id = ? AND ts >= ? AND ts < ? "
                f"AND ({any_set})",
                (ids[0], start, end if end is not None else 2**62),
            ).fetchone()
            return int(found[0])

        return await self.engine.read(query)

    async def last_values(
        self, vin: str, paths: Sequence[str], before: int, within_us: int
    ) -> dict[str, SignalValue]:
        wanted = [(path, *self._columns[path]) for path in paths if path in self._columns]

        def query(conn: sqlite3.Connection) -> dict[str, SignalValue]:
            ids = conn.execute("SELECT id FROM vehicles WHERE vin = ?", (vin,)).fetchone()
            if ids is None:
                return {}
            found: dict[str, SignalValue] = {}
            for path, column, kind in wanted:
                row = conn.execute(
                    f"SELECT {column} FROM telemetry WHERE vehicle_id = ? AND ts < ? AND ts >= ? "
                    f"AND {column} IS NOT NULL ORDER BY ts DESC LIMIT 1",
                    (ids[0], before, before - within_us),
                ).fetchone()
                if row is not None:
                    found[path] = decode(kind, row[0])
            return found

        return await self.engine.read(query)

    # ---- trips and sessions ----------------------------------------------------------------

    async def trips_since(self, vin: str, since: int) -> list[Trip]:
        return await self.engine.read(
            lambda conn: _trips(
                conn,
                "WHERE v.vin = ? AND (t.end_ts >= ? OR t.status = 'driving') ORDER BY t.start_ts",
                (vin, since),
            )
        )

    async def sessions_since(self, vin: str, since: int) -> list[ChargingSession]:
        return await self.engine.read(
            lambda conn: _sessions(
                conn,
                "WHERE v.vin = ? AND (s.end_ts >= ? OR s.status = 'plugged_in') "
                "ORDER BY s.start_ts",
                (vin, since),
            )
        )

    def _replace(
        self,
        conn: sqlite3.Connection,
        vin: str,
        new: Sequence[D],
        old: Sequence[D],
        table: str,
        write: Callable[[sqlite3.Connection, int, D], None],
        emit: Callable[[D | None, D | None], Sequence[NewEvent]] | None,
    ) -> Changes:
        ids = self.engine.vehicle_id(conn, vin)
        if ids is None:
            raise NotFoundError(f"vehicle {vin} not found")
        before = {item.id: item for item in old}
        after = {item.id: item for item in new}
        created: list[str] = []
        updated: list[str] = []
        removed: list[str] = []
        completed: list[str] = []
        events: list[NewEvent] = []
        for item_id, item in before.items():
            if item_id not in after:
                conn.execute(f"DELETE FROM {table} WHERE id = ?", (item_id,))
                removed.append(item_id)
                if emit is not None:
                    events += emit(item, None)
        for item_id, item in after.items():
            was = before.get(item_id)
            if was == item:
                continue
            write(conn, ids[0], item)
            (created if was is None else updated).append(item_id)
            if item.completed and (was is None or not was.completed):
                completed.append(item_id)
            if emit is not None:
                events += emit(was, item)
        append_events(self.engine, conn, events)
        return Changes(tuple(created), tuple(updated), tuple(removed), tuple(completed))

    async def replace_trips(
        self, vin: str, start: int, trips: Sequence[Trip], emit: EmitTrip | None = None
    ) -> Changes:
        marks = ", ".join("?" * (len(TRIP_FIELDS) + 2))

        def write_trip(conn: sqlite3.Connection, vehicle_id: int, trip: Trip) -> None:
            conn.execute(
                f"INSERT OR REPLACE INTO trips (id, vehicle_id, {', '.join(TRIP_FIELDS)}) "
                f"VALUES ({marks})",
                (trip.id, vehicle_id, *trip_values(trip)),
            )

        def replace(conn: sqlite3.Connection) -> Changes:
            old = _trips(conn, "WHERE v.vin = ? AND t.start_ts >= ?", (vin, start))
            return self._replace(conn, vin, trips, old, "trips", write_trip, emit)

        return await self.engine.write(replace)

    async def replace_sessions(
        self,
        vin: str,
        start: int,
        sessions: Sequence[ChargingSession],
        emit: EmitSession | None = None,
    ) -> Changes:
        marks = ", ".join("?" * (len(SESSION_FIELDS) + 2))

        def write_session(
            conn: sqlite3.Connection, vehicle_id: int, session: ChargingSession
        ) -> None:
            conn.execute("DELETE FROM charging_segments WHERE session_id = ?", (session.id,))
            conn.execute(
                "INSERT OR REPLACE INTO charging_sessions "
                f"(id, vehicle_id, {', '.join(SESSION_FIELDS)}) VALUES ({marks})",
                (session.id, vehicle_id, *session_values(session)),
            )
            conn.executemany(
                f"INSERT INTO charging_segments (session_id, position, {', '.join(SEGMENT_FIELDS)})"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (session.id, index, *segment_values(segment))
                    for index, segment in enumerate(session.segments)
                ],
            )

        def replace(conn: sqlite3.Connection) -> Changes:
            old = _sessions(conn, "WHERE v.vin = ? AND s.start_ts >= ?", (vin, start))
            return self._replace(conn, vin, sessions, old, "charging_sessions", write_session, emit)

        return await self.engine.write(replace)

    async def list_trips(
        self, vin: str, brand: str | None, before: int | None = None, limit: int = 50
    ) -> list[Trip]:
        def query(conn: sqlite3.Connection) -> list[Trip]:
            vehicle_id = visible_vehicle_id(conn, vin, brand)
            return _trips(
                conn,
                "WHERE t.vehicle_id = ? AND t.start_ts < ? ORDER BY t.start_ts DESC LIMIT ?",
                (vehicle_id, before if before is not None else 2**62, limit),
            )

        return await self.engine.read(query)

    async def get_trip(self, vin: str, brand: str | None, trip_id: str) -> Trip:
        def query(conn: sqlite3.Connection) -> Trip:
            vehicle_id = visible_vehicle_id(conn, vin, brand)
            found = _trips(conn, "WHERE t.vehicle_id = ? AND t.id = ?", (vehicle_id, trip_id))
            if not found:
                raise NotFoundError(f"trip {trip_id} of vehicle {vin} not found")
            return found[0]

        return await self.engine.read(query)

    async def list_sessions(
        self, vin: str, brand: str | None, before: int | None = None, limit: int = 50
    ) -> list[ChargingSession]:
        def query(conn: sqlite3.Connection) -> list[ChargingSession]:
            vehicle_id = visible_vehicle_id(conn, vin, brand)
            return _sessions(
                conn,
                "WHERE s.vehicle_id = ? AND s.start_ts < ? ORDER BY s.start_ts DESC LIMIT ?",
                (vehicle_id, before if before is not None else 2**62, limit),
            )

        return await self.engine.read(query)

    # ---- derive checkpoints --------------------------------------------------------------

    async def derive_checkpoint(self, vin: str) -> tuple[int, str] | None:
        def query(conn: sqlite3.Connection) -> tuple[int, str] | None:
            row = conn.execute(
                "SELECT c.version, c.state FROM derive_checkpoints c "
                "JOIN vehicles v ON v.id = c.vehicle_id WHERE v.vin = ?",
                (vin,),
            ).fetchone()
            return (int(row[0]), str(row[1])) if row is not None else None

        return await self.engine.read(query)

    async def save_derive_checkpoint(self, vin: str, version: int, state: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            ids = self.engine.vehicle_id(conn, vin)
            if ids is None:
                raise NotFoundError(f"vehicle {vin} not found")
            row = conn.execute(
                "SELECT version FROM derive_checkpoints WHERE vehicle_id = ?", (ids[0],)
            ).fetchone()
            if (row[0] if row is not None else 0) != version:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO derive_checkpoints (vehicle_id, version, state) "
                "VALUES (?, ?, ?)",
                (ids[0], version + 1, state),
            )
            return True

        return await self.engine.write(write)

    # ---- tariffs ---------------------------------------------------------------------------

    async def save_tariff(self, tariff: Tariff) -> Tariff:
        marks = ", ".join("?" * (len(TARIFF_FIELDS) + 2))

        def write(conn: sqlite3.Connection) -> Tariff:
            row = conn.execute("SELECT id FROM brands WHERE slug = ?", (tariff.brand,)).fetchone()
            if row is None:
                raise NotFoundError(f"brand {tariff.brand!r} not found")
            conn.execute(
                f"INSERT OR REPLACE INTO tariffs (id, brand_id, {', '.join(TARIFF_FIELDS)}) "
                f"VALUES ({marks})",
                (tariff.id, row[0], *tariff_values(tariff)),
            )
            return tariff

        return await self.engine.write(write)

    async def get_tariff(self, tariff_id: str, brand: str | None) -> Tariff:
        def query(conn: sqlite3.Connection) -> Tariff:
            sql, params = _TARIFF_SELECT + "WHERE t.id = ?", [tariff_id]
            if brand is not None:
                sql += " AND b.slug = ?"
                params.append(brand)
            row = conn.execute(sql, params).fetchone()
            if row is None:
                raise NotFoundError(f"tariff {tariff_id} not found")
            return tariff_of(row[0], row[1], row[2:])

        return await self.engine.read(query)

    async def list_tariffs(self, brand: str | None) -> list[Tariff]:
        def query(conn: sqlite3.Connection) -> list[Tariff]:
            sql, params = _TARIFF_SELECT, []
            if brand is not None:
                sql += "WHERE b.slug = ? "
                params.append(brand)
            rows = conn.execute(sql + "ORDER BY t.created_at, t.id", params)
            return [tariff_of(row[0], row[1], row[2:]) for row in rows]

        return await self.engine.read(query)

    async def vehicle_profile(self, vin: str) -> tuple[str, str] | None:
        def query(conn: sqlite3.Connection) -> tuple[str, str] | None:
            row = conn.execute(
                "SELECT b.slug, v.model FROM vehicles v JOIN brands b ON b.id = v.brand_id "
                "WHERE v.vin = ?",
                (vin,),
            ).fetchone()
            return (str(row[0]), str(row[1])) if row is not None else None

        return await self.engine.read(query)
