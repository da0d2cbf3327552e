"""RegistryStore for SQLite: brands, vehicles, presence and API keys."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from carcloud.errors import CarcloudError
from carcloud.events.models import NewEvent
from carcloud.registry.models import ApiKeyRecord, Brand, NewVehicle, Vehicle
from carcloud.registry.store import EmitVehicle
from carcloud.storage import registry_rows as sql
from carcloud.storage.rows import sort_batch
from carcloud.storage.sqlite.engine import SqliteStore
from carcloud.storage.sqlite.events import append_events
from carcloud.storage.sqlite.vehicles import (
    VEHICLE_COLUMNS,
    VEHICLE_FROM,
    fetch_vehicle,
    vehicle_rows,
)
from carcloud.timeutil import now_us


def _brand_id(conn: sqlite3.Connection, slug: str) -> list[int]:
    """The id of a brand as a list of none or one (for a comprehension)."""
    row = conn.execute(sql.BRAND_ID, (slug,)).fetchone()
    return [] if row is None else [int(row[0])]


def _registered(conn: sqlite3.Connection, vins: Sequence[str]) -> set[str]:
    """Which of `vins` are registered already (looked up in chunks)."""
    found: set[str] = set()
    for start in range(0, len(vins), 500):
        chunk = list(vins[start : start + 500])
        marks = ",".join("?" * len(chunk))
        found.update(
            row[0]
            for row in conn.execute(f"SELECT vin FROM vehicles WHERE vin IN ({marks})", chunk)
        )
    return found


def _vehicles_by_vin(conn: sqlite3.Connection, vins: Sequence[str]) -> dict[str, Vehicle]:
    """Vehicles with their tags by VIN, read in chunks."""
    found: dict[str, Vehicle] = {}
    for start in range(0, len(vins), 500):
        chunk = list(vins[start : start + 500])
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT {VEHICLE_COLUMNS} {VEHICLE_FROM} WHERE v.vin IN ({marks})", chunk
        )
        found.update((vehicle.vin, vehicle) for vehicle in vehicle_rows(conn, rows))
    return found


class SqliteRegistryStore(SqliteStore, sql.RegistryReads):
    """RegistryStore over the shared SQLite engine."""

    def _emit(self, conn: sqlite3.Connection, emit: EmitVehicle | None, vehicle: Vehicle) -> None:
        if emit is not None:
            append_events(self.engine, conn, emit(vehicle))

    # ---- brands ------------------------------------------------------------------------

    async def create_brand(self, slug: str, name: str, emit: Sequence[NewEvent] = ()) -> Brand:
        def insert(conn: sqlite3.Connection) -> Brand:
            created = now_us()
            try:
                cur = conn.execute(sql.INSERT_BRAND, (slug, name, created))
            except sqlite3.IntegrityError as exc:
                raise sql.brand_taken(slug) from exc
            append_events(self.engine, conn, emit)
            return Brand(int(cur.lastrowid or 0), slug, name, created)

        return await self.engine.write(insert)

    # ---- vehicles ----------------------------------------------------------------------

    async def create_vehicle(
        self,
        vin: str,
        brand: str,
        model: str,
        model_year: int | None,
        tags: Sequence[str],
        secret_hash: str,
        emit: EmitVehicle | None = None,
    ) -> Vehicle:
        def insert(conn: sqlite3.Connection) -> Vehicle:
            brand_row = conn.execute(sql.BRAND_ID, (brand,)).fetchone()
            if brand_row is None:
                raise sql.brand_missing(brand)
            try:
                cur = conn.execute(
                    sql.INSERT_VEHICLE,
                    (vin, brand_row[0], model, model_year, secret_hash, now_us()),
                )
            except sqlite3.IntegrityError as exc:
                raise sql.vehicle_taken(vin) from exc
            conn.executemany(
                "INSERT OR IGNORE INTO vehicle_tags (vehicle_id, tag) VALUES (?, ?)",
                [(cur.lastrowid, tag) for tag in tags],
            )
            vehicle = fetch_vehicle(conn, vin, None)
            self._emit(conn, emit, vehicle)
            return vehicle

        return await self.engine.write(insert)

    async def create_vehicles(
        self, vehicles: Sequence[NewVehicle], emit: EmitVehicle | None = None
    ) -> list[Vehicle | CarcloudError]:
        def insert(conn: sqlite3.Connection) -> list[Vehicle | CarcloudError]:
            brand_ids = {
                slug: brand_id
                for slug in {new.brand for new in vehicles}
                for brand_id in _brand_id(conn, slug)
            }
            registered = _registered(conn, [new.vin for new in vehicles])
            created_at = now_us()
            outcome, inserted = sort_batch(vehicles, registered, set(brand_ids))
            for index in inserted.values():
                new = vehicles[index]
                cur = conn.execute(
                    sql.INSERT_VEHICLE,
                    (new.vin, brand_ids[new.brand], new.model, new.model_year,
                     new.secret_hash, created_at),
                )  # fmt: skip
                conn.executemany(
                    "INSERT OR IGNORE INTO vehicle_tags (vehicle_id, tag) VALUES (?, ?)",
                    [(cur.lastrowid, tag) for tag in new.tags],
                )
            stored = _vehicles_by_vin(conn, list(inserted))
            for vin, index in inserted.items():
                outcome[index] = stored[vin]
                self._emit(conn, emit, stored[vin])
            return [entry for entry in outcome if entry is not None]

        return await self.engine.write(insert)

    async def get_vehicle(self, vin: str, brand: str | None = None) -> Vehicle:
        return await self.engine.read(lambda conn: fetch_vehicle(conn, vin, brand))

    async def list_vehicles(
        self,
        brand: str | None = None,
        tag: str | None = None,
        online: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Vehicle]:
        query = f"SELECT {VEHICLE_COLUMNS} {VEHICLE_FROM}"
        where: list[str] = []
        params: list[Any] = []
        if brand is not None:
            where.append("b.slug = ?")
            params.append(brand)
        if tag is not None:
            where.append("v.id IN (SELECT vehicle_id FROM vehicle_tags WHERE tag = ?)")
            params.append(tag)
        if online is not None:
            where.append("v.online = ?")
            params.append(int(online))
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY v.vin LIMIT ? OFFSET ?"
        params += [limit, offset]
        return await self.engine.read(lambda conn: vehicle_rows(conn, conn.execute(query, params)))

    async def count_vehicles(self, brand: str | None = None) -> tuple[int, int]:
        def query(conn: sqlite3.Connection) -> tuple[int, int]:
            count = f"SELECT COUNT(*), COALESCE(SUM(v.online), 0) {VEHICLE_FROM}"
            row = (
                conn.execute(count + " WHERE b.slug = ?", (brand,)).fetchone()
                if brand is not None
                else conn.execute(count).fetchone()
            )
            return int(row[0]), int(row[1])

        return await self.engine.read(query)

    async def update_vehicle(
        self,
        vin: str,
        brand: str | None,
        tags: Sequence[str] | None = None,
        model: str | None = None,
        model_year: int | None = None,
        emit: EmitVehicle | None = None,
    ) -> Vehicle:
        def update(conn: sqlite3.Connection) -> Vehicle:
            vehicle = fetch_vehicle(conn, vin, brand)
            if model is not None:
                conn.execute(sql.SET_MODEL, (model, vehicle.id))
            if model_year is not None:
                conn.execute(sql.SET_MODEL_YEAR, (model_year, vehicle.id))
            if tags is not None:
                conn.execute("DELETE FROM vehicle_tags WHERE vehicle_id = ?", (vehicle.id,))
                conn.executemany(
                    "INSERT OR IGNORE INTO vehicle_tags (vehicle_id, tag) VALUES (?, ?)",
                    [(vehicle.id, tag) for tag in tags],
                )
            updated = fetch_vehicle(conn, vin, None)
            self._emit(conn, emit, updated)
            return updated

        return await self.engine.write(update)

    async def delete_vehicle(
        self, vin: str, brand: str | None, emit: EmitVehicle | None = None
    ) -> Vehicle:
        def delete(conn: sqlite3.Connection) -> Vehicle:
            vehicle = fetch_vehicle(conn, vin, brand)
            self._emit(conn, emit, vehicle)  # before the row goes: the event names its brand
            for table in ("telemetry", "latest_state", "telemetry_messages"):
                conn.execute(f"DELETE FROM {table} WHERE vehicle_id = ?", (vehicle.id,))
            conn.execute("DELETE FROM vehicles WHERE id = ?", (vehicle.id,))
            self.engine.vehicle_ids.pop(vin, None)
            return vehicle

        return await self.engine.write(delete)

    async def set_vehicle_secret(
        self, vin: str, brand: str | None, secret_hash: str, emit: EmitVehicle | None = None
    ) -> Vehicle:
        def update(conn: sqlite3.Connection) -> Vehicle:
            vehicle = fetch_vehicle(conn, vin, brand)
            conn.execute(sql.SET_SECRET, (secret_hash, vehicle.id))
            updated = fetch_vehicle(conn, vin, None)
            self._emit(conn, emit, updated)
            return updated

        return await self.engine.write(update)

    async def upgrade_secret_hash(self, vin: str, old_hash: str, new_hash: str) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(sql.UPGRADE_SECRET, (new_hash, vin, old_hash))
            return cur.rowcount > 0

        return await self.engine.write(update)

    async def revoke_vehicle(
        self, vin: str, brand: str | None, emit: EmitVehicle | None = None
    ) -> Vehicle:
        def update(conn: sqlite3.Connection) -> Vehicle:
            vehicle = fetch_vehicle(conn, vin, brand)
            conn.execute(sql.REVOKE, (now_us(), vehicle.id))
            updated = fetch_vehicle(conn, vin, None)
            self._emit(conn, emit, updated)
            return updated

        return await self.engine.write(update)

    # ---- presence ----------------------------------------------------------------------

    async def set_presence(
        self, vin: str, online: bool, at: int, emit: EmitVehicle | None = None
    ) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            if online:
                cur = conn.execute(
                    "UPDATE vehicles SET online = 1, connected_at = ?, last_seen_at = "
                    "MAX(COALESCE(last_seen_at, 0), ?), presence_at = ? "
                    "WHERE vin = ? AND (COALESCE(presence_at, 0) < ? OR "
                    "(presence_at = ? AND online = 0))",
                    (at, at, at, vin, at, at),
                )
            else:
                cur = conn.execute(
                    "UPDATE vehicles SET online = 0, last_seen_at = "
                    "MAX(COALESCE(last_seen_at, 0), ?), presence_at = ? "
                    "WHERE vin = ? AND (COALESCE(presence_at, 0) < ? OR "
                    "(presence_at = ? AND online = 1))",
                    (at, at, vin, at, at),
                )
            if cur.rowcount:
                self._emit(conn, emit, fetch_vehicle(conn, vin, None))
                return True
            return conn.execute(sql.VEHICLE_EXISTS, (vin,)).fetchone() is not None

        return await self.engine.write(update)

    async def reconcile_presence(
        self, connected: set[str], at: int, emit: EmitVehicle | None = None
    ) -> list[Vehicle]:
        def update(conn: sqlite3.Connection) -> list[Vehicle]:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS connected_now (vin TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM connected_now")
            conn.executemany(
                "INSERT OR IGNORE INTO connected_now (vin) VALUES (?)", [(v,) for v in connected]
            )
            # A car marked online that the server does not hold any more, and the reverse.
            # A connect or disconnect event newer than the snapshot wins over it.
            changed_ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM vehicles WHERE COALESCE(presence_at, 0) <= ? AND ("
                    "(online = 1 AND vin NOT IN (SELECT vin FROM connected_now)) OR "
                    "(online = 0 AND vin IN (SELECT vin FROM connected_now)))",
                    (at,),
                )
            ]
            changed: list[Vehicle] = []
            for start in range(0, len(changed_ids), 500):
                chunk = changed_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                conn.execute(
                    "UPDATE vehicles SET "
                    "online = CASE WHEN vin IN (SELECT vin FROM connected_now) THEN 1 ELSE 0 END, "
                    "connected_at = CASE WHEN vin IN (SELECT vin FROM connected_now) "
                    "THEN ? ELSE connected_at END, "
                    "last_seen_at = MAX(COALESCE(last_seen_at, 0), ?), presence_at = ? "
                    f"WHERE id IN ({marks})",
                    (at, at, at, *chunk),
                )
                rows = conn.execute(
                    f"SELECT {VEHICLE_COLUMNS} {VEHICLE_FROM} WHERE v.id IN ({marks}) "
                    "ORDER BY v.vin",
                    chunk,
                )
                changed += vehicle_rows(conn, rows)
            conn.execute("DELETE FROM connected_now")
            for vehicle in changed:
                self._emit(conn, emit, vehicle)
            return changed

        return await self.engine.write(update)

    # ---- api keys ----------------------------------------------------------------------

    async def create_api_key(
        self, key_id: str, name: str, brand: str | None, key_hash: str
    ) -> ApiKeyRecord:
        def insert(conn: sqlite3.Connection) -> ApiKeyRecord:
            brand_id = None
            if brand is not None:
                row = conn.execute(sql.BRAND_ID, (brand,)).fetchone()
                if row is None:
                    raise sql.brand_missing(brand)
                brand_id = row[0]
            created = now_us()
            conn.execute(sql.INSERT_API_KEY, (key_id, name, brand_id, key_hash, created))
            return ApiKeyRecord(key_id, name, brand, key_hash, created, None)

        return await self.engine.write(insert)
