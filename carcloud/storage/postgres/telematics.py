"""TelematicsStore for PostgreSQL: trips, charging sessions and tariffs, and history reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson

from carcloud.catalog import SignalCatalog, default_catalog
from carcloud.errors import NotFoundError
from carcloud.events.models import NewEvent
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

_TRIP_SELECT = (
    f"SELECT t.id, v.vin, {', '.join('t.' + f for f in TRIP_FIELDS)} FROM trips t "
    "JOIN vehicles v ON v.id = t.vehicle_id "
)
_SESSION_SELECT = (
    f"SELECT s.id, v.vin, {', '.join('s.' + f for f in SESSION_FIELDS)} FROM charging_sessions s "
    "JOIN vehicles v ON v.id = s.vehicle_id "
)
_TARIFF_SELECT = (
    f"SELECT t.id, b.slug, {', '.join('t.' + f for f in TARIFF_FIELDS)} "
    "FROM tariffs t JOIN brands b ON b.id = t.brand_id "
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

    async def _replace(
        self,
        tx: Tx,
        vin: str,
        new: Sequence[D],
        old: Sequence[D],
        table: str,
        write: Callable[[Conn, int, D], Awaitable[None]],
        emit: Callable[[D | None, D | None], Sequence[NewEvent]] | None,
    ) -> Changes:
        vehicle_id = await tx.conn.fetchval("SELECT id FROM vehicles WHERE vin = $1", vin)
        if vehicle_id is None:
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
                await tx.conn.execute(f"DELETE FROM {table} WHERE id = $1", item_id)
                removed.append(item_id)
                if emit is not None:
                    events += emit(item, None)
        for item_id, item in after.items():
            was = before.get(item_id)
            if was == item:
                continue
            await write(tx.conn, int(vehicle_id), item)
            (created if was is None else updated).append(item_id)
            if item.completed and (was is None or not was.completed):
                completed.append(item_id)
            if emit is not None:
                events += emit(was, item)
        await append_events(tx, events)
        return Changes(tuple(created), tuple(updated), tuple(removed), tuple(completed))

    async def replace_trips(
        self, vin: str, start: int, trips: Sequence[Trip], emit: EmitTrip | None = None
    ) -> Changes:
        updates = ", ".join(f"{f} = excluded.{f}" for f in TRIP_FIELDS)

        async def write_trip(conn: Conn, vehicle_id: int, trip: Trip) -> None:
            await conn.execute(
                f"INSERT INTO trips (id, vehicle_id, {', '.join(TRIP_FIELDS)}) "
                f"VALUES ({_marks(len(TRIP_FIELDS) + 2)}) ON CONFLICT (id) DO UPDATE SET {updates}",
                trip.id,
                vehicle_id,
                *trip_values(trip),
            )

        async def replace(tx: Tx) -> Changes:
            await tx.conn.execute(
                "SELECT 1 FROM vehicles WHERE vin = $1 FOR UPDATE", vin
            )  # one re-derivation of a vehicle at a time
            old = await _trips(tx.conn, "WHERE v.vin = $1 AND t.start_ts >= $2", vin, start)
            return await self._replace(tx, vin, trips, old, "trips", write_trip, emit)

        return await self.engine.write(replace)

    async def replace_sessions(
        self,
        vin: str,
        start: int,
        sessions: Sequence[ChargingSession],
        emit: EmitSession | None = None,
    ) -> Changes:
        updates = ", ".join(f"{f} = excluded.{f}" for f in SESSION_FIELDS)

        async def write_session(conn: Conn, vehicle_id: int, session: ChargingSession) -> None:
            await conn.execute(
                f"INSERT INTO charging_sessions (id, vehicle_id, {', '.join(SESSION_FIELDS)}) "
                f"VALUES ({_marks(len(SESSION_FIELDS) + 2)}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                session.id,
                vehicle_id,
                *session_values(session),
            )
            await conn.execute("DELETE FROM charging_segments WHERE session_id = $1", session.id)
            await conn.executemany(
                f"INSERT INTO charging_segments (session_id, position, {', '.join(SEGMENT_FIELDS)})"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    (session.id, index, *segment_values(segment))
                    for index, segment in enumerate(session.segments)
                ],
            )

        async def replace(tx: Tx) -> Changes:
            await tx.conn.execute("SELECT 1 FROM vehicles WHERE vin = $1 FOR UPDATE", vin)
            old = await _sessions(tx.conn, "WHERE v.vin = $1 AND s.start_ts >= $2", vin, start)
            return await self._replace(
                tx, vin, sessions, old, "charging_sessions", write_session, emit
            )

        return await self.engine.write(replace)

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

    async def save_derive_checkpoint(self, vin: str, version: int, state: str) -> bool:
        async def write(tx: Tx) -> bool:
            vehicle_id = await tx.conn.fetchval("SELECT id FROM vehicles WHERE vin = $1", vin)
            if vehicle_id is None:
                raise NotFoundError(f"vehicle {vin} not found")
            if version == 0:
                saved = await tx.conn.fetchval(
                    "INSERT INTO derive_checkpoints (vehicle_id, version, state) "
                    "VALUES ($1, 1, $2) ON CONFLICT (vehicle_id) DO NOTHING RETURNING version",
                    vehicle_id, state,
                )  # fmt: skip
            else:
                saved = await tx.conn.fetchval(
                    "UPDATE derive_checkpoints SET version = $2 + 1, state = $3 "
                    "WHERE vehicle_id = $1 AND version = $2 RETURNING version",
                    vehicle_id, version, state,
                )  # fmt: skip
            return saved is not None

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
            sql, args = _TARIFF_SELECT + "WHERE t.id = $1", [tariff_id]
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
            sql, args = _TARIFF_SELECT, []
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
