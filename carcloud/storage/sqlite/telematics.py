"""TelematicsStore for SQLite: trips, charging sessions and tariffs, and history reads."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from carcloud.catalog import SignalCatalog, default_catalog
from carcloud.errors import NotFoundError
from carcloud.ingest.models import SignalValue
from carcloud.storage.codec import decode, signal_columns
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.storage.sqlite.events import append_events
from carcloud.storage.sqlite.vehicles import visible_vehicle_id
from carcloud.storage.telematics_rows import (
    SEGMENT_FIELDS,
    SESSION_FIELDS,
    TARIFF_FIELDS,
    TARIFF_SELECT,
    TRIP_FIELDS,
    Plan,
    plan,
    segment_values,
    session_of,
    session_values,
    tariff_of,
    tariff_values,
    trip_of,
    trip_values,
)
from carcloud.telematics.models import Changes, ChargingSession, Trip
from carcloud.telematics.store import Replacement
from carcloud.telematics.tariffs import Tariff
from carcloud.telematics.timeline import HistoryRow

D = TypeVar("D", Trip, ChargingSession)

_TRIP_SELECT = f"SELECT t.id, v.vin, {', '.join('t.' + f for f in TRIP_FIELDS)} FROM trips t "
_SESSION_SELECT = (
    f"SELECT s.id, v.vin, {', '.join('s.' + f for f in SESSION_FIELDS)} FROM charging_sessions s "
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


_TRIP_INSERT = (
    f"INSERT OR REPLACE INTO trips (id, vehicle_id, {', '.join(TRIP_FIELDS)}) "
    f"VALUES ({', '.join('?' * (len(TRIP_FIELDS) + 2))})"
)
_SESSION_INSERT = (
    f"INSERT OR REPLACE INTO charging_sessions (id, vehicle_id, {', '.join(SESSION_FIELDS)}) "
    f"VALUES ({', '.join('?' * (len(SESSION_FIELDS) + 2))})"
)
_SEGMENT_INSERT = (
    f"INSERT INTO charging_segments (session_id, position, {', '.join(SEGMENT_FIELDS)}) "
    f"VALUES ({', '.join('?' * (len(SEGMENT_FIELDS) + 2))})"
)


def _write_trip(conn: sqlite3.Connection, vehicle_id: int, trip: Trip) -> None:
    conn.execute(_TRIP_INSERT, (trip.id, vehicle_id, *trip_values(trip)))


def _write_session(conn: sqlite3.Connection, vehicle_id: int, session: ChargingSession) -> None:
    conn.execute("DELETE FROM charging_segments WHERE session_id = ?", (session.id,))
    conn.execute(_SESSION_INSERT, (session.id, vehicle_id, *session_values(session)))
    conn.executemany(
        _SEGMENT_INSERT,
        [(session.id, index, *segment_values(s)) for index, s in enumerate(session.segments)],
    )


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

    async def save_derivation(
        self,
        vin: str,
        version: int,
        trips: Replacement[Trip] | None,
        sessions: Replacement[ChargingSession] | None,
        checkpoint: str | None,
    ) -> tuple[Changes, Changes] | None:
        def write(conn: sqlite3.Connection) -> tuple[Changes, Changes] | None:
            ids = self.engine.vehicle_id(conn, vin)
            if ids is None:
                raise NotFoundError(f"vehicle {vin} not found")
            vehicle_id = ids[0]
            row = conn.execute(
                "SELECT version FROM derive_checkpoints WHERE vehicle_id = ?", (vehicle_id,)
            ).fetchone()
            if (row[0] if row is not None else 0) != version:
                return None  # another derivation saved since: this one writes nothing
            trip_changes = session_changes = Changes()
            if trips is not None:
                old = _trips(conn, "WHERE t.vehicle_id = ? AND t.start_ts >= ?",
                             (vehicle_id, trips.start))  # fmt: skip
                trip_changes = self._apply(conn, vehicle_id, plan(old, trips), "trips", _write_trip)
            if sessions is not None:
                stored = _sessions(conn, "WHERE s.vehicle_id = ? AND s.start_ts >= ?",
                                   (vehicle_id, sessions.start))  # fmt: skip
                session_changes = self._apply(
                    conn, vehicle_id, plan(stored, sessions), "charging_sessions", _write_session
                )
            if checkpoint is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO derive_checkpoints (vehicle_id, version, state) "
                    "VALUES (?, ?, ?)",
                    (vehicle_id, version + 1, checkpoint),
                )
            return trip_changes, session_changes

        return await self.engine.write(write)

    def _apply(
        self,
        conn: sqlite3.Connection,
        vehicle_id: int,
        planned: Plan[D],
        table: str,
        write: Callable[[sqlite3.Connection, int, D], None],
    ) -> Changes:
        """Write a plan's rows and its events in the caller's transaction."""
        conn.executemany(f"DELETE FROM {table} WHERE id = ?", [(i,) for i in planned.delete])
        for item in planned.write:
            write(conn, vehicle_id, item)
        append_events(self.engine, conn, planned.events)
        return planned.changes

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
            sql, params = TARIFF_SELECT + "WHERE t.id = ?", [tariff_id]
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
            sql, params = TARIFF_SELECT, []
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
