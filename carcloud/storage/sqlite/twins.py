"""TwinStore for SQLite: desired (own and effective, versioned) and reported documents,
fleet configurations, and targeting in SQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from carcloud.errors import ConflictError, NotFoundError, PreconditionFailed
from carcloud.registry.models import Vehicle
from carcloud.storage.rows import (
    CONFIGURATION_SQL,
    TWIN_COLUMNS,
    TWIN_FROM,
    configuration_of,
    dumps,
    twin_of,
)
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.storage.sqlite.events import append_events
from carcloud.storage.sqlite.vehicles import (
    VEHICLE_COLUMNS,
    VEHICLE_FROM,
    fetch_vehicle,
    target_where,
    vehicle_rows,
)
from carcloud.timeutil import now_us
from carcloud.twins.models import Configuration, Twin, next_desired_version
from carcloud.twins.store import EmitConfiguration, EmitTwin, Resolve, UpdateReported


def _twins(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[Twin]:
    rows = conn.execute(f"SELECT {TWIN_COLUMNS} {TWIN_FROM} WHERE {where} ORDER BY v.vin", params)
    return [twin_of(row) for row in rows]


def _configurations(conn: sqlite3.Connection, where: str = "", params: Sequence[Any] = ()) -> list[
    Configuration
]:  # fmt: skip
    rows = conn.execute(f"{CONFIGURATION_SQL} {where} ORDER BY priority, name", params)
    return [configuration_of(row) for row in rows]


class SqliteTwinStore:
    """TwinStore over the shared SQLite engine."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    def _emit_twin(self, conn: sqlite3.Connection, emit: EmitTwin | None, twin: Twin) -> None:
        if emit is not None:
            append_events(self.engine, conn, emit(twin))

    def _store_effective(
        self,
        conn: sqlite3.Connection,
        vehicle_id: int,
        current: Twin,
        own: dict[str, Any],
        effective: dict[str, Any],
    ) -> bool:
        """Write own and effective, under a new version when effective changed; True if so."""
        version = next_desired_version(current, own, effective)
        if version is None:
            return False
        conn.execute(
            "INSERT INTO twin_desired (vehicle_id, version, own, effective, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (vehicle_id) DO UPDATE SET "
            "version = excluded.version, own = excluded.own, effective = excluded.effective, "
            "updated_at = excluded.updated_at",
            (vehicle_id, version, dumps(own), dumps(effective), now_us()),
        )
        return version != current.desired_version

    async def get_twin(self, vin: str, brand: str | None) -> Twin:
        def query(conn: sqlite3.Connection) -> Twin:
            vehicle = fetch_vehicle(conn, vin, brand)
            return _twins(conn, "v.id = ?", (vehicle.id,))[0]

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
            if if_version is not None and if_version != current.desired_version:
                raise PreconditionFailed(
                    f"desired properties of {vin} are at version {current.desired_version}, "
                    f"not {if_version}: read them again and retry"
                )
            effective = resolve(vehicle, own, _configurations(conn))
            changed = self._store_effective(conn, vehicle.id, current, own, effective)
            twin = _twins(conn, "v.id = ?", (vehicle.id,))[0]
            if changed:
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
            conn.execute(
                "INSERT INTO twin_reported (vehicle_id, document, desired_version, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (vehicle_id) DO UPDATE SET "
                "document = excluded.document, updated_at = excluded.updated_at, "
                "desired_version = "
                "COALESCE(excluded.desired_version, twin_reported.desired_version)",
                (ids[0], dumps(update(current)), desired_version, at),
            )
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
                conn.execute(
                    "INSERT INTO configurations (id, name, target, priority, desired, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                    "target = excluded.target, priority = excluded.priority, "
                    "desired = excluded.desired, updated_at = excluded.updated_at",
                    (
                        configuration.id,
                        configuration.name,
                        dumps(configuration.target),
                        configuration.priority,
                        dumps(configuration.desired),
                        configuration.created_at,
                        configuration.updated_at,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise ConflictError(
                    f"a configuration named {configuration.name!r} already exists"
                ) from exc
            saved = _configurations(conn, "WHERE id = ?", (configuration.id,))[0]
            if emit is not None:
                append_events(self.engine, conn, emit(saved))
            return saved

        return await self.engine.write(upsert)

    async def list_configurations(self, name_prefix: str | None = None) -> list[Configuration]:
        if name_prefix is None:
            return await self.engine.read(_configurations)
        # Names are case-sensitive (SQLite's LIKE is not): compare the leading characters.
        return await self.engine.read(
            lambda conn: _configurations(
                conn, "WHERE substr(name, 1, ?) = ?", (len(name_prefix), name_prefix)
            )
        )

    async def get_configuration(self, configuration_id: str) -> Configuration:
        found = await self.engine.read(
            lambda conn: _configurations(conn, "WHERE id = ?", (configuration_id,))
        )
        if not found:
            raise NotFoundError(f"configuration {configuration_id} not found")
        return found[0]

    async def find_configuration(self, name: str) -> Configuration | None:
        found = await self.engine.read(
            lambda conn: _configurations(conn, "WHERE name = ?", (name,))
        )
        return found[0] if found else None

    async def delete_configuration(
        self, configuration_id: str, emit: EmitConfiguration | None = None
    ) -> Configuration:
        def delete(conn: sqlite3.Connection) -> Configuration:
            found = _configurations(conn, "WHERE id = ?", (configuration_id,))
            if not found:
                raise NotFoundError(f"configuration {configuration_id} not found")
            conn.execute("DELETE FROM configurations WHERE id = ?", (configuration_id,))
            if emit is not None:
                append_events(self.engine, conn, emit(found[0]))
            return found[0]

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
            changed: list[int] = []
            for vehicle in vehicles:
                twin = current[vehicle.vin]
                effective = resolve(vehicle, twin.desired_own, configurations)
                if self._store_effective(conn, vehicle.id, twin, twin.desired_own, effective):
                    changed.append(vehicle.id)
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

    async def unsynced_twins(self) -> list[Twin]:
        return await self.engine.read(
            lambda conn: _twins(conn, "d.version > COALESCE(r.desired_version, 0)", ())
        )

    async def twins_matching(self, target: Mapping[str, Any]) -> list[Twin]:
        where, params = target_where(target)
        return await self.engine.read(lambda conn: _twins(conn, where, params))


def _twins_of(conn: sqlite3.Connection, vehicle_ids: Sequence[int]) -> list[Twin]:
    twins: list[Twin] = []
    for start in range(0, len(vehicle_ids), 500):
        chunk = list(vehicle_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        twins += _twins(conn, f"v.id IN ({marks})", chunk)
    return twins
