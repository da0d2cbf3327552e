"""GeofenceStore for SQLite: fences per brand and the visits of each vehicle."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

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
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.storage.sqlite.events import append_events


def _fences(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[Geofence]:
    rows = conn.execute(FENCE_SELECT + where, params)
    return [geofence_of(row[0], row[1], row[2:]) for row in rows]


def _visits(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[Visit]:
    rows = conn.execute(VISIT_SELECT + where, params)
    return [visit_of(row[0], row[1], row[2], row[3:]) for row in rows]


def _brand_clause(brand: str | None, params: list[Any]) -> str:
    if brand is None:
        return ""
    params.append(brand)
    return " AND b.slug = ?"


class SqliteGeofenceStore:
    """GeofenceStore over the shared SQLite engine."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    async def save_geofence(self, fence: Geofence) -> Geofence:
        marks = ", ".join("?" * (len(GEOFENCE_FIELDS) + 2))

        def write(conn: sqlite3.Connection) -> Geofence:
            row = conn.execute("SELECT id FROM brands WHERE slug = ?", (fence.brand,)).fetchone()
            if row is None:
                raise NotFoundError(f"brand {fence.brand!r} not found")
            conn.execute(
                f"INSERT INTO geofences (id, brand_id, {', '.join(GEOFENCE_FIELDS)}) "
                f"VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET "
                + ", ".join(f"{f} = excluded.{f}" for f in GEOFENCE_FIELDS),
                (fence.id, row[0], *geofence_values(fence)),
            )
            return fence

        return await self.engine.write(write)

    async def get_geofence(self, geofence_id: str, brand: str | None) -> Geofence:
        def query(conn: sqlite3.Connection) -> Geofence:
            params: list[Any] = [geofence_id]
            found = _fences(conn, "WHERE g.id = ?" + _brand_clause(brand, params), params)
            if not found:
                raise NotFoundError(f"geofence {geofence_id} not found")
            return found[0]

        return await self.engine.read(query)

    async def list_geofences(self, brand: str | None) -> list[Geofence]:
        def query(conn: sqlite3.Connection) -> list[Geofence]:
            params: list[Any] = []
            where = "WHERE 1 = 1" + _brand_clause(brand, params)
            return _fences(conn, where + " ORDER BY g.created_at, g.id", params)

        return await self.engine.read(query)

    async def delete_geofence(self, geofence_id: str, brand: str | None) -> Geofence:
        def delete(conn: sqlite3.Connection) -> Geofence:
            params: list[Any] = [geofence_id]
            found = _fences(conn, "WHERE g.id = ?" + _brand_clause(brand, params), params)
            if not found:
                raise NotFoundError(f"geofence {geofence_id} not found")
            conn.execute("DELETE FROM geofences WHERE id = ?", (geofence_id,))
            return found[0]

        return await self.engine.write(delete)

    async def vehicle_brand(self, vin: str) -> str | None:
        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT b.slug FROM vehicles v JOIN brands b ON b.id = v.brand_id WHERE v.vin = ?",
                (vin,),
            ).fetchone()
            return str(row[0]) if row is not None else None

        return await self.engine.read(query)

    async def visits_since(self, vin: str, since: int) -> list[Visit]:
        return await self.engine.read(
            lambda conn: _visits(
                conn,
                "WHERE v.vin = ? AND (s.exit_ts IS NULL OR s.exit_ts >= ?) "
                "ORDER BY s.enter_ts, s.id",
                (vin, since),
            )
        )

    async def replace_visits(
        self, vin: str, start: int, visits: Sequence[Visit], emit: EmitVisit | None = None
    ) -> VisitChanges:
        def replace(conn: sqlite3.Connection) -> VisitChanges:
            ids = self.engine.vehicle_id(conn, vin)
            if ids is None:
                raise NotFoundError(f"vehicle {vin} not found")
            given = [visit.id for visit in visits]
            old = _visits(
                conn,
                "WHERE s.vehicle_id = ? AND (s.enter_ts >= ? OR s.exit_ts IS NULL "
                f"OR s.id IN ({', '.join('?' * len(given))}))",
                (ids[0], start, *given),
            )
            removed, written, changes, events = diff_visits(old, visits, emit)
            conn.executemany("DELETE FROM geofence_visits WHERE id = ?", [(i,) for i in removed])
            conn.executemany(
                "INSERT OR REPLACE INTO geofence_visits "
                f"(id, geofence_id, vehicle_id, {', '.join(VISIT_FIELDS)}) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(v.id, v.geofence_id, ids[0], *visit_values(v)) for v in written],
            )
            append_events(self.engine, conn, events)
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
        def query(conn: sqlite3.Connection) -> list[Visit]:
            where = "JOIN geofences g ON g.id = s.geofence_id JOIN brands b ON b.id = g.brand_id "
            where += "WHERE s.enter_ts < ?"
            params: list[Any] = [before if before is not None else 2**62]
            if geofence_id is not None:
                where += " AND s.geofence_id = ?"
                params.append(geofence_id)
            if vin is not None:
                where += " AND v.vin = ?"
                params.append(vin)
            where += _brand_clause(brand, params) + " ORDER BY s.enter_ts DESC, s.id LIMIT ?"
            return _visits(conn, where, [*params, limit])

        return await self.engine.read(query)
