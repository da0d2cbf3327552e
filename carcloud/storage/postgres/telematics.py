"""TelematicsStore for PostgreSQL: trips, charging sessions and tariffs, and history reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson

from carcloud.catalog import SignalCatalog, default_catalog
from carcloud.errors import NotFoundError
from carcloud.ingest.models import SignalValue
from carcloud.storage.codec import signal_columns
from carcloud.storage.postgres.engine import Conn, PostgresEngine, Tx
from carcloud.storage.postgres.events import append_events
from carcloud.storage.postgres.telemetry import _decode
from carcloud.storage.postgres.vehicles import visible_vehicle_id
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

_TRIP_SELECT = (
    f"SELECT t.id, v.vin, {', '.join('t.' + f for f in TRIP_FIELDS)} FROM trips t "
    "JOIN vehicles v ON v.id = t.vehicle_id "
)
_SESSION_SELECT = (
    f"SELECT s.id, v.vin, {', '.join('s.' + f for f in SESSION_FIELDS)} FROM charging_sessions s "
    "JOIN vehicles v ON v.id = s.vehicle_id "
)
_END = 2**62


def _marks(count: int, first: int = 1) -> str:
    return ", ".join(f"${n}" for n in range(first, first + count))


async def _trips(conn: Conn, where: str, *args: Any) -> list[Trip]:
    rows = await conn.fetch(_TRIP_SELECT + where, *args)
    return [trip_of(row[0], row[1], list(row)[2:]) for row in rows]


async def _sessions(conn: Conn, where: str, *args: Any) -> list[ChargingSession]:
    rows = await conn.fetch(_SESSION_SELECT + where, *args)
    if not rows:
        return []
    segments: dict[str, list[list[Any]]] = {}
    for segment in await conn.fetch(
        f"SELECT session_id, {', '.join(SEGMENT_FIELDS)} FROM charging_segments "
        "WHERE session_id = ANY($1::text[]) ORDER BY session_id, position",
        [row[0] for row in rows],
    ):
        segments.setdefault(segment[0], []).append(list(segment)[1:])
    return [session_of(row[0], row[1], list(row)[2:], segments.get(row[0], [])) for row in rows]


_TRIP_UPSERT = (
    f"INSERT INTO trips (id, vehicle_id, {', '.join(TRIP_FIELDS)}) "
    f"VALUES ({_marks(len(TRIP_FIELDS) + 2)}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{f} = excluded.{f}" for f in TRIP_FIELDS)
)
_SESSION_UPSERT = (
    f"INSERT INTO charging_sessions (id, vehicle_id, {', '.join(SESSION_FIELDS)}) "
    f"VALUES ({_marks(len(SESSION_FIELDS) + 2)}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{f} = excluded.{f}" for f in SESSION_FIELDS)
)
_SEGMENT_INSERT = (
    f"INSERT INTO charging_segments (session_id, position, {', '.join(SEGMENT_FIELDS)}) "
    f"VALUES ({_marks(len(SEGMENT_FIELDS) + 2)})"
)


async def _write_trip(conn: Conn, vehicle_id: int, trip: Trip) -> None:
    await conn.execute(_TRIP_UPSERT, trip.id, vehicle_id, *trip_values(trip))


async def _write_session(conn: Conn, vehicle_id: int, session: ChargingSession) -> None:
    await conn.execute(_SESSION_UPSERT, session.id, vehicle_id, *session_values(session))
    await conn.execute("DELETE FROM charging_segments WHERE session_id = $1", session.id)
    await conn.executemany(
        _SEGMENT_INSERT,
        [(session.id, index, *segment_values(s)) for index, s in enumerate(session.segments)],
    )


async def _apply(
    tx: Tx,
    vehicle_id: int,
    planned: Plan[D],
    table: str,
    write: Callable[[Conn, int, D], Awaitable[None]],
) -> Changes:
    """Write a plan's rows and its events in the caller's transaction."""
    if planned.delete:
        await tx.conn.execute(f"DELETE FROM {table} WHERE id = ANY($1::text[])", planned.delete)
    for item in planned.write:
        await write(tx.conn, vehicle_id, item)
    await append_events(tx, planned.events)
    return planned.changes


class PostgresTelematicsStore:
    """TelematicsStore over the shared PostgreSQL engine."""

    def __init__(self, engine: PostgresEngine, catalog: SignalCatalog | None = None) -> None:
        self.engine = engine
        self._kinds = {
            path: kind for path, (_, kind) in signal_columns(catalog or default_catalog()).items()
        }

    # ---- history -------------------------------------------------------------------------

    async def history_rows(
        self, vin: str, paths: Sequence[str], start: int, end: int | None = None
    ) -> list[HistoryRow]:
        wanted = [path for path in paths if path in self._kinds]

        async def query(conn: Conn) -> list[HistoryRow]:
            rows = await conn.fetch(
                "SELECT ts, (SELECT jsonb_object_agg(key, value) FROM jsonb_each(signals) "
                "WHERE key = ANY($4::text[]))::text FROM telemetry "
                "WHERE vehicle_id = (SELECT id FROM vehicles WHERE vin = $1) "
                "AND ts >= $2 AND ts < $3 AND signals ?| $4::text[] ORDER BY ts",
                vin, start, end if end is not None else _END, wanted,
            )  # fmt: skip
            result: list[HistoryRow] = []
            for ts, raw in rows:
                values = orjson.loads(raw)
                result.append(
                    (
                        ts,
                        {path: _decode(self._kinds[path], value) for path, value in values.items()},
                    )
                )
            return result

        if not wanted:
            return []
        return await self.engine.read(query)

    async def count_rows(
        self, vin: str, paths: Sequence[str], start: int, end: int | None = None
    ) -> int:
        wanted = [path for path in paths if path in self._kinds]

        async def query(conn: Conn) -> int:
            return int(
                await conn.fetchval(
                    "SELECT COUNT(*) FROM telemetry "
                    "WHERE vehicle_id = (SELECT id FROM vehicles WHERE vin = $1) "
                    "AND ts >= $2 AND ts < $3 AND signals ?| $4::text[]",
                    vin,
                    start,
                    end if end is not None else _END,
                    wanted,
                )  # fmt: skip
            )

        if not wanted:
            return 0
        return await self.engine.read(query)

    async def last_values(
        self, vin: str, paths: Sequence[str], before: int, within_us: int
    ) -> dict[str, SignalValue]:
        wanted = [path for path in paths if path in self._kinds]

        async def query(conn: Conn) -> dict[str, SignalValue]:
            vehicle_id = await conn.fetchval("SELECT id FROM vehicles WHERE vin = $1", vin)
            if vehicle_id is None:
                return {}
            found: dict[str, SignalValue] = {}
            for path in wanted:
                raw = await conn.fetchval(
                    "SELECT (signals -> $4)::text FROM telemetry WHERE vehicle_id = $1 "
                    "AND ts < $2 AND ts >= $3 AND signals ? $4 ORDER BY ts DESC LIMIT 1",
                    vehicle_id, before, before - within_us, path,
                )  # fmt: skip
                if raw is not None:
                    found[path] = _decode(self._kinds[path], orjson.loads(raw))
            return found

        return await self.engine.read(query)

    # ---- trips and sessions ----------------------------------------------------------------

    async def trips_since(self, vin: str, since: int) -> list[Trip]:
        return await self.engine.read(
            lambda conn: _trips(
                conn,
                "WHERE v.vin = $1 AND (t.end_ts >= $2 OR t.status = 'driving') ORDER BY t.start_ts",
                vin,
                since,
            )
        )

    async def sessions_since(self, vin: str, since: int) -> list[ChargingSession]:
        return await self.engine.read(
            lambda conn: _sessions(
                conn,
                "WHERE v.vin = $1 AND (s.end_ts >= $2 OR s.status = 'plugged_in') "
                "ORDER BY s.start_ts",
                vin,
                since,
            )
        )

    async def list_trips(
        self, vin: str, brand: str | None, before: int | None = None, limit: int = 50
    ) -> list[Trip]:
        async def query(conn: Conn) -> list[Trip]:
            vehicle_id = await visible_vehicle_id(conn, vin, brand)
            return await _trips(
                conn,
                "WHERE t.vehicle_id = $1 AND t.start_ts < $2 ORDER BY t.start_ts DESC LIMIT $3",
                vehicle_id,
                before if before is not None else _END,
                limit,
            )

        return await self.engine.read(query)

    async def get_trip(self, vin: str, brand: str | None, trip_id: str) -> Trip:
        async def query(conn: Conn) -> Trip:
            vehicle_id = await visible_vehicle_id(conn, vin, brand)
            found = await _trips(conn, "WHERE t.vehicle_id = $1 AND t.id = $2", vehicle_id, trip_id)
            if not found:
                raise NotFoundError(f"trip {trip_id} of vehicle {vin} not found")
            return found[0]

        return await self.engine.read(query)

    async def list_sessions(
        self, vin: str, brand: str | None, before: int | None = None, limit: int = 50
    ) -> list[ChargingSession]:
        async def query(conn: Conn) -> list[ChargingSession]:
            vehicle_id = await visible_vehicle_id(conn, vin, brand)
            return await _sessions(
                conn,
                "WHERE s.vehicle_id = $1 AND s.start_ts < $2 ORDER BY s.start_ts DESC LIMIT $3",
                vehicle_id,
                before if before is not None else _END,
                limit,
            )

        return await self.engine.read(query)

    # ---- derive checkpoints --------------------------------------------------------------

    async def derive_checkpoint(self, vin: str) -> tuple[int, str] | None:
        async def query(conn: Conn) -> tuple[int, str] | None:
            row = await conn.fetchrow(
                "SELECT c.version, c.state FROM derive_checkpoints c "
                "JOIN vehicles v ON v.id = c.vehicle_id WHERE v.vin = $1",
                vin,
            )
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
        async def write(tx: Tx) -> tuple[Changes, Changes] | None:
            # The vehicle's row lock puts the derivations of a vehicle that save one after
            # the other: each then reads the checkpoint version the one before committed.
            vehicle_id = await tx.conn.fetchval(
                "SELECT id FROM vehicles WHERE vin = $1 FOR UPDATE", vin
            )
            if vehicle_id is None:
                raise NotFoundError(f"vehicle {vin} not found")
            saved = await tx.conn.fetchval(
                "SELECT version FROM derive_checkpoints WHERE vehicle_id = $1", vehicle_id
            )
            if (saved if saved is not None else 0) != version:
                return None  # another derivation saved since: this one writes nothing
            trip_changes = session_changes = Changes()
            if trips is not None:
                old = await _trips(tx.conn, "WHERE t.vehicle_id = $1 AND t.start_ts >= $2",
                                   vehicle_id, trips.start)  # fmt: skip
                trip_changes = await _apply(tx, vehicle_id, plan(old, trips), "trips", _write_trip)
            if sessions is not None:
                stored = await _sessions(tx.conn, "WHERE s.vehicle_id = $1 AND s.start_ts >= $2",
                                         vehicle_id, sessions.start)  # fmt: skip
                session_changes = await _apply(
                    tx, vehicle_id, plan(stored, sessions), "charging_sessions", _write_session
                )
            if checkpoint is not None:
                await tx.conn.execute(
                    "INSERT INTO derive_checkpoints (vehicle_id, version, state) "
                    "VALUES ($1, $2, $3) ON CONFLICT (vehicle_id) "
                    "DO UPDATE SET version = excluded.version, state = excluded.state",
                    vehicle_id, version + 1, checkpoint,
                )  # fmt: skip
            return trip_changes, session_changes

        return await self.engine.write(write)

    # ---- tariffs ---------------------------------------------------------------------------

    async def save_tariff(self, tariff: Tariff) -> Tariff:
        updates = ", ".join(f"{f} = excluded.{f}" for f in TARIFF_FIELDS)

        async def write(tx: Tx) -> Tariff:
            brand_id = await tx.conn.fetchval("SELECT id FROM brands WHERE slug = $1", tariff.brand)
            if brand_id is None:
                raise NotFoundError(f"brand {tariff.brand!r} not found")
            await tx.conn.execute(
                f"INSERT INTO tariffs (id, brand_id, {', '.join(TARIFF_FIELDS)}) "
                f"VALUES ({_marks(len(TARIFF_FIELDS) + 2)}) "
                f"ON CONFLICT (id) DO UPDATE SET brand_id = excluded.brand_id, {updates}",
                tariff.id,
                brand_id,
                *tariff_values(tariff),
            )
            return tariff

        return await self.engine.write(write)

    async def get_tariff(self, tariff_id: str, brand: str | None) -> Tariff:
        async def query(conn: Conn) -> Tariff:
            sql, args = TARIFF_SELECT + "WHERE t.id = $1", [tariff_id]
            if brand is not None:
                sql += " AND b.slug = $2"
                args.append(brand)
            row = await conn.fetchrow(sql, *args)
            if row is None:
                raise NotFoundError(f"tariff {tariff_id} not found")
            return tariff_of(row[0], row[1], list(row)[2:])

        return await self.engine.read(query)

    async def list_tariffs(self, brand: str | None) -> list[Tariff]:
        async def query(conn: Conn) -> list[Tariff]:
            sql, args = TARIFF_SELECT, []
            if brand is not None:
                sql += "WHERE b.slug = $1 "
                args.append(brand)
            rows = await conn.fetch(sql + "ORDER BY t.created_at, t.id", *args)
            return [tariff_of(row[0], row[1], list(row)[2:]) for row in rows]

        return await self.engine.read(query)

    async def vehicle_profile(self, vin: str) -> tuple[str, str] | None:
        async def query(conn: Conn) -> tuple[str, str] | None:
            row = await conn.fetchrow(
                "SELECT b.slug, v.model FROM vehicles v JOIN brands b ON b.id = v.brand_id "
                "WHERE v.vin = $1",
                vin,
            )
            return (str(row[0]), str(row[1])) if row is not None else None

        return await self.engine.read(query)
