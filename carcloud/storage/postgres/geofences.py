"""GeofenceStore for PostgreSQL: fences per brand and the visits of each vehicle."""

from __future__ import annotations

from collections.abc import Sequence

from carcloud.errors import NotFoundError
from carcloud.geofences.models import Geofence, Visit
from carcloud.geofences.store import EmitVisit, VisitChanges
from carcloud.storage.geofence_rows import (
    FENCE_SELECT,
    GEOFENCE_FIELDS,
    VISIT_FIELDS,
    VISIT_SELECT,
    diff_visits,
    geofence_of,
    geofence_values,
    visit_of,
    visit_values,
)
from carcloud.storage.postgres.engine import Conn, Params, PostgresEngine, Tx
from carcloud.storage.postgres.events import append_events

_END = 2**62


async def _fences(conn: Conn, where: str, params: Params) -> list[Geofence]:
    rows = await conn.fetch(FENCE_SELECT + where, *params.values)
    return [geofence_of(row[0], row[1], list(row)[2:]) for row in rows]


async def _visits(conn: Conn, where: str, params: Params) -> list[Visit]:
    rows = await conn.fetch(VISIT_SELECT + where, *params.values)
    return [visit_of(row[0], row[1], row[2], list(row)[3:]) for row in rows]


def _one_fence(geofence_id: str, brand: str | None) -> tuple[str, Params]:
    params = Params()
    where = f"WHERE g.id = {params.add(geofence_id)}"
    if brand is not None:
        where += f" AND b.slug = {params.add(brand)}"
    return where, params


class PostgresGeofenceStore:
    """GeofenceStore over the shared PostgreSQL engine."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    async def save_geofence(self, fence: Geofence) -> Geofence:
        updates = ", ".join(f"{f} = excluded.{f}" for f in GEOFENCE_FIELDS)
        marks = ", ".join(f"${n}" for n in range(1, len(GEOFENCE_FIELDS) + 3))

        async def write(tx: Tx) -> Geofence:
            brand_id = await tx.conn.fetchval("SELECT id FROM brands WHERE slug = $1", fence.brand)
            if brand_id is None:
                raise NotFoundError(f"brand {fence.brand!r} not found")
            await tx.conn.execute(
                f"INSERT INTO geofences (id, brand_id, {', '.join(GEOFENCE_FIELDS)}) "
                f"VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {updates}",
                fence.id,
                brand_id,
                *geofence_values(fence),
            )
            return fence

        return await self.engine.write(write)

    async def get_geofence(self, geofence_id: str, brand: str | None) -> Geofence:
        async def query(conn: Conn) -> Geofence:
            found = await _fences(conn, *_one_fence(geofence_id, brand))
            if not found:
                raise NotFoundError(f"geofence {geofence_id} not found")
            return found[0]

        return await self.engine.read(query)

    async def list_geofences(self, brand: str | None) -> list[Geofence]:
        async def query(conn: Conn) -> list[Geofence]:
            params = Params()
            where = f"WHERE b.slug = {params.add(brand)} " if brand is not None else ""
            return await _fences(conn, where + "ORDER BY g.created_at, g.id", params)

        return await self.engine.read(query)

    async def delete_geofence(self, geofence_id: str, brand: str | None) -> Geofence:
        async def delete(tx: Tx) -> Geofence:
            found = await _fences(tx.conn, *_one_fence(geofence_id, brand))
            if not found:
                raise NotFoundError(f"geofence {geofence_id} not found")
            await tx.conn.execute("DELETE FROM geofences WHERE id = $1", geofence_id)
            return found[0]

        return await self.engine.write(delete)

    async def vehicle_brand(self, vin: str) -> str | None:
        async def query(conn: Conn) -> str | None:
            found = await conn.fetchval(
                "SELECT b.slug FROM vehicles v JOIN brands b ON b.id = v.brand_id WHERE v.vin = $1",
                vin,
            )
            return str(found) if found is not None else None

        return await self.engine.read(query)

    async def visits_since(self, vin: str, since: int) -> list[Visit]:
        async def query(conn: Conn) -> list[Visit]:
            params = Params()
            where = (
                f"WHERE v.vin = {params.add(vin)} AND (s.exit_ts IS NULL OR "
                f"s.exit_ts >= {params.add(since)}) ORDER BY s.enter_ts, s.id"
            )
            return await _visits(conn, where, params)

        return await self.engine.read(query)

    async def replace_visits(
        self, vin: str, start: int, visits: Sequence[Visit], emit: EmitVisit | None = None
    ) -> VisitChanges:
        async def replace(tx: Tx) -> VisitChanges:
            # One re-derivation of a vehicle at a time.
            vehicle_id = await tx.conn.fetchval(
                "SELECT id FROM vehicles WHERE vin = $1 FOR UPDATE", vin
            )
            if vehicle_id is None:
                raise NotFoundError(f"vehicle {vin} not found")
            params = Params()
            where = (
                f"WHERE s.vehicle_id = {params.add(vehicle_id)} AND "
                f"(s.enter_ts >= {params.add(start)} OR s.exit_ts IS NULL "
                f"OR s.id = ANY({params.add([visit.id for visit in visits])}::text[]))"
            )
            old = await _visits(tx.conn, where, params)
            removed, written, changes, events = diff_visits(old, visits, emit)
            await tx.conn.execute("DELETE FROM geofence_visits WHERE id = ANY($1::text[])", removed)
            await tx.conn.executemany(
                "INSERT INTO geofence_visits "
                f"(id, geofence_id, vehicle_id, {', '.join(VISIT_FIELDS)}) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET "
                + ", ".join(f"{f} = excluded.{f}" for f in VISIT_FIELDS),
                [(v.id, v.geofence_id, vehicle_id, *visit_values(v)) for v in written],
            )
            await append_events(tx, events)
            return changes

        return await self.engine.write(replace)

    async def list_visits(
        self,
        brand: str | None,
        geofence_id: str | None = None,
        vin: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[Visit]:
        async def query(conn: Conn) -> list[Visit]:
            params = Params()
            where = (
                "JOIN geofences g ON g.id = s.geofence_id JOIN brands b ON b.id = g.brand_id "
                f"WHERE s.enter_ts < {params.add(before if before is not None else _END)}"
            )
            if geofence_id is not None:
                where += f" AND s.geofence_id = {params.add(geofence_id)}"
            if vin is not None:
                where += f" AND v.vin = {params.add(vin)}"
            if brand is not None:
                where += f" AND b.slug = {params.add(brand)}"
            where += f" ORDER BY s.enter_ts DESC, s.id LIMIT {params.add(limit)}"
            return await _visits(conn, where, params)

        return await self.engine.read(query)
