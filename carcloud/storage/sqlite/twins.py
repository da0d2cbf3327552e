"""TwinStore for SQLite: desired (own and effective, versioned) and reported documents,
fleet configurations, and targeting in SQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from carcloud.registry.models import Vehicle
from carcloud.storage import twin_rows as sql
from carcloud.storage.rows import dumps
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.storage.sqlite.events import append_events
from carcloud.storage.sqlite.vehicles import (
    VEHICLE_COLUMNS,
    VEHICLE_FROM,
    fetch_vehicle,
    target_where,
    vehicle_rows,
)
from carcloud.twins.models import Configuration, Twin
from carcloud.twins.store import EmitConfiguration, EmitTwin, Resolve, UpdateReported


def _twins(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[Twin]:
    rows = conn.execute(
        f"SELECT {sql.TWIN_COLUMNS} {sql.TWIN_FROM} WHERE {where} ORDER BY v.vin", params
    )
    return [sql.twin_of(row) for row in rows]


def _configurations(conn: sqlite3.Connection, where: str = "", params: Sequence[Any] = ()) -> list[
    Configuration
]:  # fmt: skip
    rows = conn.execute(f"{sql.CONFIGURATION_SQL} {where} ORDER BY priority, name", params)
    return [sql.configuration_of(row) for row in rows]


class SqliteTwinStore(sql.TwinReads):
    """TwinStore over the shared SQLite engine."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    async def _read_twins(self, where: str, params: Sequence[Any]) -> list[Twin]:
        return await self.engine.read(lambda conn: _twins(conn, where, params))

    async def _read_configurations(
        self, where: str = "", params: Sequence[Any] = ()
    ) -> list[Configuration]:
        return await self.engine.read(lambda conn: _configurations(conn, where, params))

    def _emit_twin(self, conn: sqlite3.Connection, emit: EmitTwin | None, twin: Twin) -> None:
        if emit is not None:
            append_events(self.engine, conn, emit(twin))

    async def get_twin(self, vin: str, brand: str | None) -> Twin:
        def query(conn: sqlite3.Connection) -> Twin:
            vehicle = fetch_vehicle(conn, vin, brand)
            return _twins(conn, "v.id = ?", (vehicle.id,))[0]

        return await self.engine.read(query)

    async def own_desired_value(self, vin: str, key: str) -> Any:
        def query(conn: sqlite3.Connection) -> Any:
            row = conn.execute(sql.OWN_DESIRED, (vin,)).fetchone()
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
        def update(conn: sqlite3.Connection) -> Twin:
            vehicle = fetch_vehicle(conn, vin, brand)
            current = _twins(conn, "v.id = ?", (vehicle.id,))[0]
            sql.check_desired_version(vin, current, if_version)
            effective = resolve(vehicle, own, _configurations(conn))
            write = sql.desired_write(vehicle.id, current, own, effective)
            if write is not None:
                conn.execute(sql.STORE_DESIRED, write.values())
            twin = _twins(conn, "v.id = ?", (vehicle.id,))[0]
            if write is not None and write.changed:
                self._emit_twin(conn, emit, twin)
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
        def write(conn: sqlite3.Connection) -> Twin | None:
            ids = self.engine.vehicle_id(conn, vin)
            if ids is None:
                return None
            current = _twins(conn, "v.id = ?", (ids[0],))[0]
            conn.execute(sql.STORE_REPORTED, (ids[0], dumps(update(current)), desired_version, at))
            twin = _twins(conn, "v.id = ?", (ids[0],))[0]
            self._emit_twin(conn, emit, twin)
            return twin

        return await self.engine.write(write)

    # ---- configurations ----------------------------------------------------------------

    async def save_configuration(
        self, configuration: Configuration, emit: EmitConfiguration | None = None
    ) -> Configuration:
        def upsert(conn: sqlite3.Connection) -> Configuration:
            try:
                conn.execute(sql.SAVE_CONFIGURATION, sql.configuration_values(configuration))
            except sqlite3.IntegrityError as exc:
                raise sql.configuration_taken(configuration) from exc
            saved = _configurations(conn, sql.BY_ID, (configuration.id,))[0]
            if emit is not None:
                append_events(self.engine, conn, emit(saved))
            return saved

        return await self.engine.write(upsert)

    async def delete_configuration(
        self, configuration_id: str, emit: EmitConfiguration | None = None
    ) -> Configuration:
        def delete(conn: sqlite3.Connection) -> Configuration:
            found = _configurations(conn, sql.BY_ID, (configuration_id,))
            deleted = sql.found_configuration(found, configuration_id)
            conn.execute(sql.DELETE_CONFIGURATION, (configuration_id,))
            if emit is not None:
                append_events(self.engine, conn, emit(deleted))
            return deleted

        return await self.engine.write(delete)

    async def refresh_desired(
        self,
        resolve: Resolve,
        vins: Sequence[str] | None = None,
        targets: Sequence[Mapping[str, Any]] | None = None,
        emit: EmitTwin | None = None,
    ) -> list[Twin]:
        def refresh(conn: sqlite3.Connection) -> list[Twin]:
            configurations = _configurations(conn)
            vehicles = self._select(conn, vins, targets)
            if not vehicles:
                return []
            current = {
                twin.vin: twin for twin in _twins_of(conn, [vehicle.id for vehicle in vehicles])
            }
            writes = sql.refreshed_desired(vehicles, current, configurations, resolve)
            for write in writes:
                conn.execute(sql.STORE_DESIRED, write.values())
            changed = [write.vehicle_id for write in writes if write.changed]
            if not changed:
                return []
            twins = _twins_of(conn, changed)
            for twin in twins:
                self._emit_twin(conn, emit, twin)
            return twins

        return await self.engine.write(refresh)

    @staticmethod
    def _select(
        conn: sqlite3.Connection,
        vins: Sequence[str] | None,
        targets: Sequence[Mapping[str, Any]] | None,
    ) -> list[Vehicle]:
        if vins is not None:
            found: list[Vehicle] = []
            for start in range(0, len(vins), 500):
                chunk = list(vins[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT {VEHICLE_COLUMNS} {VEHICLE_FROM} WHERE v.vin IN ({marks})", chunk
                )
                found += vehicle_rows(conn, rows)
            return found
        sql = f"SELECT {VEHICLE_COLUMNS} {VEHICLE_FROM}"
        params: list[Any] = []
        if targets is not None:
            if not targets:
                return []
            clauses = []
            for target in targets:
                where, values = target_where(target)
                clauses.append(f"({where})")
                params += values
            sql += " WHERE " + " OR ".join(clauses)
        return vehicle_rows(conn, conn.execute(sql + " ORDER BY v.vin", params))

    async def twins_matching(self, target: Mapping[str, Any]) -> list[Twin]:
        return await self._read_twins(*target_where(target))


def _twins_of(conn: sqlite3.Connection, vehicle_ids: Sequence[int]) -> list[Twin]:
    twins: list[Twin] = []
    for start in range(0, len(vehicle_ids), 500):
        chunk = list(vehicle_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        twins += _twins(conn, f"v.id IN ({marks})", chunk)
    return twins
