"""TwinStore for PostgreSQL: desired (own and effective, versioned) and reported documents,
fleet configurations, and targeting in SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from carcloud.errors import ConflictError, NotFoundError, PreconditionFailed
from carcloud.registry.models import Vehicle
from carcloud.storage.postgres.engine import Conn, Params, PostgresEngine, Tx
from carcloud.storage.postgres.events import append_events
from carcloud.storage.postgres.vehicles import (
    VEHICLE_COLUMNS,
    VEHICLE_FROM,
    fetch_vehicle,
    target_where,
    vehicle_of,
)
from carcloud.storage.rows import (
    CONFIGURATION_SQL,
    TWIN_COLUMNS,
    TWIN_FROM,
    configuration_of,
    dumps,
    twin_of,
)
from carcloud.timeutil import now_us
from carcloud.twins.models import Configuration, Twin, next_desired_version
from carcloud.twins.store import EmitConfiguration, EmitTwin, Resolve, UpdateReported


async def _twins(conn: Conn, where: str, args: Sequence[Any]) -> list[Twin]:
    rows = await conn.fetch(
        f"SELECT {TWIN_COLUMNS} {TWIN_FROM} WHERE {where} ORDER BY v.vin", *args
    )
    return [twin_of(row) for row in rows]


async def _configurations(
    conn: Conn, where: str = "", args: Sequence[Any] = ()
) -> list[Configuration]:
    rows = await conn.fetch(f"{CONFIGURATION_SQL} {where} ORDER BY priority, name", *args)
    return [configuration_of(row) for row in rows]


async def _store_effective(
    tx: Tx, vehicle_id: int, current: Twin, own: dict[str, Any], effective: dict[str, Any]
) -> bool:
    """Write own and effective, under a new version when effective changed; True if so."""
    version = next_desired_version(current, own, effective)
    if version is None:
        return False
    await tx.conn.execute(
        "INSERT INTO twin_desired (vehicle_id, version, own, effective, updated_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (vehicle_id) DO UPDATE SET "
        "version = excluded.version, own = excluded.own, effective = excluded.effective, "
        "updated_at = excluded.updated_at",
        vehicle_id,
        version,
        dumps(own),
        dumps(effective),
        now_us(),
    )
    return version != current.desired_version


class PostgresTwinStore:
    """TwinStore over the shared PostgreSQL engine."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    async def get_twin(self, vin: str, brand: str | None) -> Twin:
        async def query(conn: Conn) -> Twin:
            vehicle = await fetch_vehicle(conn, vin, brand)
            return (await _twins(conn, "v.id = $1", (vehicle.id,)))[0]

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
            if if_version is not None and if_version != current.desired_version:
                raise PreconditionFailed(
                    f"desired properties of {vin} are at version {current.desired_version}, "
                    f"not {if_version}: read them again and retry"
                )
            effective = resolve(vehicle, own, await _configurations(tx.conn))
            changed = await _store_effective(tx, vehicle.id, current, own, effective)
            twin = (await _twins(tx.conn, "v.id = $1", (vehicle.id,)))[0]
            if changed and emit is not None:
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
                "INSERT INTO twin_reported (vehicle_id, document, desired_version, updated_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (vehicle_id) DO UPDATE SET "
                "document = excluded.document, updated_at = excluded.updated_at, "
                "desired_version = "
                "COALESCE(excluded.desired_version, twin_reported.desired_version)",
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
                        "INSERT INTO configurations (id, name, target, priority, desired, "
                        "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                        "target = excluded.target, priority = excluded.priority, "
                        "desired = excluded.desired, updated_at = excluded.updated_at",
                        configuration.id,
                        configuration.name,
                        dumps(configuration.target),
                        configuration.priority,
                        dumps(configuration.desired),
                        configuration.created_at,
                        configuration.updated_at,
                    )
            except asyncpg.UniqueViolationError as exc:
                raise ConflictError(
                    f"a configuration named {configuration.name!r} already exists"
                ) from exc
            saved = (await _configurations(tx.conn, "WHERE id = $1", (configuration.id,)))[0]
            if emit is not None:
                await append_events(tx, emit(saved))
            return saved

        return await self.engine.write(upsert)

    async def list_configurations(self, name_prefix: str | None = None) -> list[Configuration]:
        if name_prefix is None:
            return await self.engine.read(_configurations)
        return await self.engine.read(
            lambda conn: _configurations(
                conn, "WHERE left(name, $1) = $2", (len(name_prefix), name_prefix)
            )
        )

    async def get_configuration(self, configuration_id: str) -> Configuration:
        found = await self.engine.read(
            lambda conn: _configurations(conn, "WHERE id = $1", (configuration_id,))
        )
        if not found:
            raise NotFoundError(f"configuration {configuration_id} not found")
        return found[0]

    async def find_configuration(self, name: str) -> Configuration | None:
        found = await self.engine.read(
            lambda conn: _configurations(conn, "WHERE name = $1", (name,))
        )
        return found[0] if found else None

    async def delete_configuration(
        self, configuration_id: str, emit: EmitConfiguration | None = None
    ) -> Configuration:
        async def delete(tx: Tx) -> Configuration:
            found = await _configurations(tx.conn, "WHERE id = $1", (configuration_id,))
            if not found:
                raise NotFoundError(f"configuration {configuration_id} not found")
            await tx.conn.execute("DELETE FROM configurations WHERE id = $1", configuration_id)
            if emit is not None:
                await append_events(tx, emit(found[0]))
            return found[0]

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
            changed: list[int] = []
            for vehicle in vehicles:
                twin = current[vehicle.vin]
                effective = resolve(vehicle, twin.desired_own, configurations)
                if await _store_effective(tx, vehicle.id, twin, twin.desired_own, effective):
                    changed.append(vehicle.id)
            if not changed:
                return []
            twins = await _twins(tx.conn, "v.id = ANY($1::bigint[])", (changed,))
            if emit is not None:
                for twin in twins:
                    await append_events(tx, emit(twin))
            return twins

        return await self.engine.write(refresh)

    async def unsynced_twins(self) -> list[Twin]:
        return await self.engine.read(
            lambda conn: _twins(conn, "d.version > COALESCE(r.desired_version, 0)", ())
        )

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
