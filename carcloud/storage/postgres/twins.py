"""TwinStore for PostgreSQL: desired (own and effective, versioned) and reported documents,
fleet configurations, and targeting in SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from carcloud.registry.models import Vehicle
from carcloud.storage import twin_rows as sql
from carcloud.storage.postgres.engine import Conn, Params, PostgresEngine, Tx
from carcloud.storage.postgres.events import append_events
from carcloud.storage.postgres.vehicles import (
    VEHICLE_COLUMNS,
    VEHICLE_FROM,
    fetch_vehicle,
    target_where,
    vehicle_of,
)
from carcloud.storage.rows import dumps, numbered
from carcloud.twins.models import Configuration, Twin
from carcloud.twins.store import EmitConfiguration, EmitTwin, Resolve, UpdateReported


async def _twins(conn: Conn, where: str, args: Sequence[Any]) -> list[Twin]:
    rows = await conn.fetch(
        f"SELECT {sql.TWIN_COLUMNS} {sql.TWIN_FROM} WHERE {where} ORDER BY v.vin", *args
    )
    return [sql.twin_of(row) for row in rows]


async def _configurations(
    conn: Conn, where: str = "", args: Sequence[Any] = ()
) -> list[Configuration]:
    """The configurations WHERE `where` (`?` placeholders)."""
    query = numbered(f"{sql.CONFIGURATION_SQL} {where} ORDER BY priority, name")
    rows = await conn.fetch(query, *args)
    return [sql.configuration_of(row) for row in rows]


async def _store_desired(tx: Tx, write: sql.DesiredWrite) -> None:
    await tx.conn.execute(numbered(sql.STORE_DESIRED), *write.values())


class PostgresTwinStore(sql.TwinReads):
    """TwinStore over the shared PostgreSQL engine."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    async def _read_twins(self, where: str, params: Sequence[Any]) -> list[Twin]:
        return await self.engine.read(lambda conn: _twins(conn, numbered(where), params))

    async def _read_configurations(
        self, where: str = "", params: Sequence[Any] = ()
    ) -> list[Configuration]:
        return await self.engine.read(lambda conn: _configurations(conn, where, params))

    async def get_twin(self, vin: str, brand: str | None) -> Twin:
        async def query(conn: Conn) -> Twin:
            vehicle = await fetch_vehicle(conn, vin, brand)
            return (await _twins(conn, "v.id = $1", (vehicle.id,)))[0]

        return await self.engine.read(query)

    async def own_desired_value(self, vin: str, key: str) -> Any:
        async def query(conn: Conn) -> Any:
            row = await conn.fetchrow(numbered(sql.OWN_DESIRED), vin)
            return sql.own_value(vin, row, key)

        return await self.engine.read(query)

    async def set_desired(
        self,
        vin: str,
        brand: str | None,
        own: dict[str, Any],
        if_version: int | None,
        resolve: Resolve,
        emit: EmitTwin | None = None,
    ) -> Twin:
        async def update(tx: Tx) -> Twin:
            vehicle = await fetch_vehicle(tx.conn, vin, brand)
            await tx.conn.execute("SELECT id FROM vehicles WHERE id = $1 FOR UPDATE", vehicle.id)
            current = (await _twins(tx.conn, "v.id = $1", (vehicle.id,)))[0]
            sql.check_desired_version(vin, current, if_version)
            effective = resolve(vehicle, own, await _configurations(tx.conn))
            write = sql.desired_write(vehicle.id, current, own, effective)
            if write is not None:
                await _store_desired(tx, write)
            twin = (await _twins(tx.conn, "v.id = $1", (vehicle.id,)))[0]
            if write is not None and write.changed and emit is not None:
                await append_events(tx, emit(twin))
            return twin

        return await self.engine.write(update)

    async def set_reported(
        self,
        vin: str,
        update: UpdateReported,
        desired_version: int | None,
        at: int,
        emit: EmitTwin | None = None,
    ) -> Twin | None:
        async def write(tx: Tx) -> Twin | None:
            vehicle_id = await tx.conn.fetchval(
                "SELECT id FROM vehicles WHERE vin = $1 FOR UPDATE", vin
            )
            if vehicle_id is None:
                return None
            current = (await _twins(tx.conn, "v.id = $1", (vehicle_id,)))[0]
            await tx.conn.execute(
                numbered(sql.STORE_REPORTED),
                vehicle_id,
                dumps(update(current)),
                desired_version,
                at,
            )
            twin = (await _twins(tx.conn, "v.id = $1", (vehicle_id,)))[0]
            if emit is not None:
                await append_events(tx, emit(twin))
            return twin

        return await self.engine.write(write)

    # ---- configurations ----------------------------------------------------------------

    async def save_configuration(
        self, configuration: Configuration, emit: EmitConfiguration | None = None
    ) -> Configuration:
        async def upsert(tx: Tx) -> Configuration:
            try:
                async with tx.conn.transaction():
                    await tx.conn.execute(
                        numbered(sql.SAVE_CONFIGURATION), *sql.configuration_values(configuration)
                    )
            except asyncpg.UniqueViolationError as exc:
                raise sql.configuration_taken(configuration) from exc
            saved = (await _configurations(tx.conn, sql.BY_ID, (configuration.id,)))[0]
            if emit is not None:
                await append_events(tx, emit(saved))
            return saved

        return await self.engine.write(upsert)

    async def delete_configuration(
        self, configuration_id: str, emit: EmitConfiguration | None = None
    ) -> Configuration:
        async def delete(tx: Tx) -> Configuration:
            found = await _configurations(tx.conn, sql.BY_ID, (configuration_id,))
            deleted = sql.found_configuration(found, configuration_id)
            await tx.conn.execute(numbered(sql.DELETE_CONFIGURATION), configuration_id)
            if emit is not None:
                await append_events(tx, emit(deleted))
            return deleted

        return await self.engine.write(delete)

    async def refresh_desired(
        self,
        resolve: Resolve,
        vins: Sequence[str] | None = None,
        targets: Sequence[Mapping[str, Any]] | None = None,
        emit: EmitTwin | None = None,
    ) -> list[Twin]:
        async def refresh(tx: Tx) -> list[Twin]:
            configurations = await _configurations(tx.conn)
            vehicles = await _select(tx.conn, vins, targets)
            if not vehicles:
                return []
            ids = [vehicle.id for vehicle in vehicles]
            current = {
                twin.vin: twin for twin in await _twins(tx.conn, "v.id = ANY($1::bigint[])", (ids,))
            }
            writes = sql.refreshed_desired(vehicles, current, configurations, resolve)
            for write in writes:
                await _store_desired(tx, write)
            changed = [write.vehicle_id for write in writes if write.changed]
            if not changed:
                return []
            twins = await _twins(tx.conn, "v.id = ANY($1::bigint[])", (changed,))
            if emit is not None:
                for twin in twins:
                    await append_events(tx, emit(twin))
            return twins

        return await self.engine.write(refresh)

    async def twins_matching(self, target: Mapping[str, Any]) -> list[Twin]:
        params = Params()
        where = target_where(target, params)
        return await self.engine.read(lambda conn: _twins(conn, where, params.values))


async def _select(
    conn: Conn,
    vins: Sequence[str] | None,
    targets: Sequence[Mapping[str, Any]] | None,
) -> list[Vehicle]:
    """The vehicles to refresh, locked for the rest of the transaction."""
    params = Params()
    if vins is not None:
        where = f"v.vin = ANY({params.add(list(vins))}::text[])"
    elif targets is not None:
        if not targets:
            return []
        where = " OR ".join(f"({target_where(target, params)})" for target in targets)
    else:
        where = "TRUE"
    rows = await conn.fetch(
        f"SELECT {VEHICLE_COLUMNS} {VEHICLE_FROM} WHERE {where} ORDER BY v.vin FOR UPDATE OF v",
        *params.values,
    )
    return [vehicle_of(row) for row in rows]
