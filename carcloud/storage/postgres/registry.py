"""RegistryStore for PostgreSQL: brands, vehicles, presence and API keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from carcloud.errors import CarcloudError
from carcloud.events.models import NewEvent
from carcloud.registry.models import ApiKeyRecord, Brand, NewVehicle, Vehicle
from carcloud.registry.store import EmitVehicle
from carcloud.storage import registry_rows as sql
from carcloud.storage.postgres.engine import Conn, Params, PostgresStore, Tx
from carcloud.storage.postgres.events import append_events
from carcloud.storage.postgres.vehicles import (
    VEHICLE_COLUMNS,
    VEHICLE_FROM,
    fetch_vehicle,
    vehicle_of,
)
from carcloud.storage.rows import numbered, sort_batch
from carcloud.timeutil import now_us


async def _emit(tx: Tx, emit: EmitVehicle | None, vehicle: Vehicle) -> None:
    if emit is not None:
        await append_events(tx, emit(vehicle))


async def _replace_tags(tx: Tx, vehicle_id: int, tags: Sequence[str]) -> None:
    await tx.conn.execute("DELETE FROM vehicle_tags WHERE vehicle_id = $1", vehicle_id)
    await tx.conn.executemany(
        "INSERT INTO vehicle_tags (vehicle_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        [(vehicle_id, tag) for tag in tags],
    )


class PostgresRegistryStore(PostgresStore, sql.RegistryReads):
    """RegistryStore over the shared PostgreSQL engine."""

    # ---- brands ------------------------------------------------------------------------

    async def create_brand(self, slug: str, name: str, emit: Sequence[NewEvent] = ()) -> Brand:
        async def insert(tx: Tx) -> Brand:
            created = now_us()
            try:
                async with tx.conn.transaction():
                    brand_id = await tx.conn.fetchval(
                        numbered(sql.INSERT_BRAND + " RETURNING id"), slug, name, created
                    )
            except asyncpg.UniqueViolationError as exc:
                raise sql.brand_taken(slug) from exc
            await append_events(tx, emit)
            return Brand(int(brand_id), slug, name, created)

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
        async def insert(tx: Tx) -> Vehicle:
            brand_id = await tx.conn.fetchval(numbered(sql.BRAND_ID), brand)
            if brand_id is None:
                raise sql.brand_missing(brand)
            try:
                async with tx.conn.transaction():
                    vehicle_id = await tx.conn.fetchval(
                        numbered(sql.INSERT_VEHICLE + " RETURNING id"),
                        vin,
                        brand_id,
                        model,
                        model_year,
                        secret_hash,
                        now_us(),
                    )
            except asyncpg.UniqueViolationError as exc:
                raise sql.vehicle_taken(vin) from exc
            await _replace_tags(tx, vehicle_id, tags)
            vehicle = await fetch_vehicle(tx.conn, vin, None)
            await _emit(tx, emit, vehicle)
            return vehicle

        return await self.engine.write(insert)

    async def create_vehicles(
        self, vehicles: Sequence[NewVehicle], emit: EmitVehicle | None = None
    ) -> list[Vehicle | CarcloudError]:
        async def insert(tx: Tx) -> list[Vehicle | CarcloudError]:
            conn = tx.conn
            brand_ids = {
                row[0]: row[1]
                for row in await conn.fetch(
                    "SELECT slug, id FROM brands WHERE slug = ANY($1::text[])",
                    sorted({new.brand for new in vehicles}),
                )
            }
            registered = {
                row[0]
                for row in await conn.fetch(
                    "SELECT vin FROM vehicles WHERE vin = ANY($1::text[])",
                    [new.vin for new in vehicles],
                )
            }
            outcome, inserted = sort_batch(vehicles, registered, set(brand_ids))
            rows = [vehicles[index] for index in inserted.values()]
            if rows:
                created_at = now_us()
                ids = await conn.fetch(
                    "INSERT INTO vehicles (vin, brand_id, model, model_year, secret_hash, "
                    "created_at) SELECT v, b, m, y, h, $6 FROM unnest($1::text[], $2::bigint[], "
                    "$3::text[], $4::int[], $5::text[]) AS t(v, b, m, y, h) RETURNING id, vin",
                    [new.vin for new in rows],
                    [brand_ids[new.brand] for new in rows],
                    [new.model for new in rows],
                    [new.model_year for new in rows],
                    [new.secret_hash for new in rows],
                    created_at,
                )
                by_vin = {row[1]: row[0] for row in ids}
                await conn.executemany(
                    "INSERT INTO vehicle_tags (vehicle_id, tag) VALUES ($1, $2) "
                    "ON CONFLICT DO NOTHING",
                    [(by_vin[new.vin], tag) for new in rows for tag in new.tags],
                )
                stored = await conn.fetch(
                    f"SELECT {VEHICLE_COLUMNS} {VEHICLE_FROM} WHERE v.vin = ANY($1::text[])",
                    list(inserted),
                )
                for row in stored:
                    vehicle = vehicle_of(row)
                    outcome[inserted[vehicle.vin]] = vehicle
                    await _emit(tx, emit, vehicle)
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
        params = Params()
        where = ["TRUE"]
        if brand is not None:
            where.append(f"b.slug = {params.add(brand)}")
        if tag is not None:
            where.append(
                f"v.id IN (SELECT vehicle_id FROM vehicle_tags WHERE tag = {params.add(tag)})"
            )
        if online is not None:
            where.append(f"v.online = {params.add(online)}")
        select = (
            f"SELECT {VEHICLE_COLUMNS} {VEHICLE_FROM} WHERE {' AND '.join(where)} "
            f"ORDER BY v.vin LIMIT {params.add(limit)} OFFSET {params.add(offset)}"
        )

        async def query(conn: Conn) -> list[Vehicle]:
            return [vehicle_of(row) for row in await conn.fetch(select, *params.values)]

        return await self.engine.read(query)

    async def count_vehicles(self, brand: str | None = None) -> tuple[int, int]:
        async def query(conn: Conn) -> tuple[int, int]:
            count = f"SELECT COUNT(*), COUNT(*) FILTER (WHERE v.online) {VEHICLE_FROM}"
            row = (
                await conn.fetchrow(count + " WHERE b.slug = $1", brand)
                if brand is not None
                else await conn.fetchrow(count)
            )
            assert row is not None  # an aggregate always answers one row
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
        async def update(tx: Tx) -> Vehicle:
            vehicle = await fetch_vehicle(tx.conn, vin, brand)
            if model is not None:
                await tx.conn.execute(numbered(sql.SET_MODEL), model, vehicle.id)
            if model_year is not None:
                await tx.conn.execute(numbered(sql.SET_MODEL_YEAR), model_year, vehicle.id)
            if tags is not None:
                await _replace_tags(tx, vehicle.id, tags)
            updated = await fetch_vehicle(tx.conn, vin, None)
            await _emit(tx, emit, updated)
            return updated

        return await self.engine.write(update)

    async def delete_vehicle(
        self, vin: str, brand: str | None, emit: EmitVehicle | None = None
    ) -> Vehicle:
        async def delete(tx: Tx) -> Vehicle:
            vehicle = await fetch_vehicle(tx.conn, vin, brand)
            await _emit(tx, emit, vehicle)  # before the row goes: the event names its brand
            for table in (
                "telemetry",
                "telemetry_minutes",
                "vehicle_latest",
                "telemetry_messages",
            ):
                await tx.conn.execute(f"DELETE FROM {table} WHERE vehicle_id = $1", vehicle.id)
            await tx.conn.execute("DELETE FROM vehicles WHERE id = $1", vehicle.id)
            return vehicle

        return await self.engine.write(delete)

    async def _set(
        self, vin: str, brand: str | None, update_sql: str, value: Any, emit: EmitVehicle | None
    ) -> Vehicle:
        """Run `update_sql` (`?` placeholders: the value, then the vehicle's id)."""

        async def update(tx: Tx) -> Vehicle:
            vehicle = await fetch_vehicle(tx.conn, vin, brand)
            await tx.conn.execute(numbered(update_sql), value, vehicle.id)
            updated = await fetch_vehicle(tx.conn, vin, None)
            await _emit(tx, emit, updated)
            return updated

        return await self.engine.write(update)

    async def set_vehicle_secret(
        self, vin: str, brand: str | None, secret_hash: str, emit: EmitVehicle | None = None
    ) -> Vehicle:
        return await self._set(vin, brand, sql.SET_SECRET, secret_hash, emit)

    async def upgrade_secret_hash(self, vin: str, old_hash: str, new_hash: str) -> bool:
        async def update(tx: Tx) -> bool:
            status = await tx.conn.execute(numbered(sql.UPGRADE_SECRET), new_hash, vin, old_hash)
            return status != "UPDATE 0"

        return await self.engine.write(update)

    async def revoke_vehicle(
        self, vin: str, brand: str | None, emit: EmitVehicle | None = None
    ) -> Vehicle:
        return await self._set(vin, brand, sql.REVOKE, now_us(), emit)

    # ---- presence ----------------------------------------------------------------------

    async def set_presence(
        self, vin: str, online: bool, at: int, emit: EmitVehicle | None = None
    ) -> bool:
        async def update(tx: Tx) -> bool:
            # A newer event wins; at the same time only a change of state counts.
            changed = await tx.conn.fetchval(
                "UPDATE vehicles SET online = $1, "
                "connected_at = CASE WHEN $1 THEN $2 ELSE connected_at END, "
                "last_seen_at = GREATEST(COALESCE(last_seen_at, 0), $2), presence_at = $2 "
                "WHERE vin = $3 AND (COALESCE(presence_at, 0) < $2 OR "
                "(presence_at = $2 AND online <> $1)) RETURNING id",
                online,
                at,
                vin,
            )
            if changed is not None:
                await _emit(tx, emit, await fetch_vehicle(tx.conn, vin, None))
                return True
            return await tx.conn.fetchval(numbered(sql.VEHICLE_EXISTS), vin) is not None

        return await self.engine.write(update)

    async def reconcile_presence(
        self, connected: set[str], at: int, emit: EmitVehicle | None = None
    ) -> list[Vehicle]:
        async def update(tx: Tx) -> list[Vehicle]:
            # A connect or disconnect event newer than the snapshot wins over it.
            ids = [
                row[0]
                for row in await tx.conn.fetch(
                    "UPDATE vehicles SET online = (vin = ANY($1::text[])), "
                    "connected_at = CASE WHEN vin = ANY($1::text[]) THEN $2 "
                    "ELSE connected_at END, "
                    "last_seen_at = GREATEST(COALESCE(last_seen_at, 0), $2), presence_at = $2 "
                    "WHERE COALESCE(presence_at, 0) <= $2 AND online <> (vin = ANY($1::text[])) "
                    "RETURNING id",
                    sorted(connected),
                    at,
                )
            ]
            rows = await tx.conn.fetch(
                f"SELECT {VEHICLE_COLUMNS} {VEHICLE_FROM} WHERE v.id = ANY($1::bigint[]) "
                "ORDER BY v.vin",
                ids,
            )
            changed = [vehicle_of(row) for row in rows]
            for vehicle in changed:
                await _emit(tx, emit, vehicle)
            return changed

        return await self.engine.write(update)

    # ---- api keys ----------------------------------------------------------------------

    async def create_api_key(
        self, key_id: str, name: str, brand: str | None, key_hash: str
    ) -> ApiKeyRecord:
        async def insert(tx: Tx) -> ApiKeyRecord:
            brand_id = None
            if brand is not None:
                brand_id = await tx.conn.fetchval(numbered(sql.BRAND_ID), brand)
                if brand_id is None:
                    raise sql.brand_missing(brand)
            created = now_us()
            await tx.conn.execute(
                numbered(sql.INSERT_API_KEY), key_id, name, brand_id, key_hash, created
            )
            return ApiKeyRecord(key_id, name, brand, key_hash, created, None)

        return await self.engine.write(insert)
