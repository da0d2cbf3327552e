"""Rows of the twin and configuration tables, shared by both backends: one SQL, one decoding,
the checks and what a change of desired properties writes.

The statements are written with `?` placeholders; PostgreSQL runs them through
`numbered` ($1, $2, …).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from carcloud.errors import ConflictError, NotFoundError, PreconditionFailed
from carcloud.registry.models import Vehicle
from carcloud.storage.rows import Row, dumps
from carcloud.timeutil import now_us
from carcloud.twins.models import Configuration, Twin, next_desired_version
from carcloud.twins.store import Resolve

TWIN_COLUMNS = (
    "v.vin, d.version, d.own, d.effective, d.updated_at, r.document, r.desired_version, "
    "r.updated_at"
)
TWIN_FROM = (
    "FROM vehicles v JOIN brands b ON b.id = v.brand_id "
    "LEFT JOIN twin_desired d ON d.vehicle_id = v.id "
    "LEFT JOIN twin_reported r ON r.vehicle_id = v.id"
)
STORE_DESIRED = (
    "INSERT INTO twin_desired (vehicle_id, version, own, effective, updated_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (vehicle_id) DO UPDATE SET "
    "version = excluded.version, own = excluded.own, effective = excluded.effective, "
    "updated_at = excluded.updated_at"
)
STORE_REPORTED = (
    "INSERT INTO twin_reported (vehicle_id, document, desired_version, updated_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (vehicle_id) DO UPDATE SET "
    "document = excluded.document, updated_at = excluded.updated_at, "
    "desired_version = COALESCE(excluded.desired_version, twin_reported.desired_version)"
)
# A vehicle's own desired document alone (NULL when nothing was set; no row: no vehicle).
OWN_DESIRED = (
    "SELECT d.own FROM vehicles v LEFT JOIN twin_desired d ON d.vehicle_id = v.id WHERE v.vin = ?"
)

CONFIGURATION_SQL = (
    "SELECT id, name, target, priority, desired, created_at, updated_at FROM configurations"
)
SAVE_CONFIGURATION = (
    "INSERT INTO configurations (id, name, target, priority, desired, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, target = excluded.target, "
    "priority = excluded.priority, desired = excluded.desired, updated_at = excluded.updated_at"
)
DELETE_CONFIGURATION = "DELETE FROM configurations WHERE id = ?"
BY_ID = "WHERE id = ?"


def twin_of(row: Row) -> Twin:
    """A twin from a row of TWIN_COLUMNS (empty documents where nothing is stored)."""
    return Twin(
        vin=row[0],
        desired_version=row[1] or 0,
        desired_own=json.loads(row[2]) if row[2] else {},
        desired=json.loads(row[3]) if row[3] else {},
        desired_updated_at=row[4],
        reported=json.loads(row[5]) if row[5] else {},
        reported_desired_version=row[6],
        reported_updated_at=row[7],
    )


def own_value(vin: str, row: Row | None, key: str) -> Any:
    """One property of the own desired document in a row of OWN_DESIRED (None if unset);
    NotFoundError when there was no row (no such vehicle)."""
    if row is None:
        raise NotFoundError(f"vehicle {vin} not found")
    return json.loads(row[0]).get(key) if row[0] else None


def configuration_of(row: Row) -> Configuration:
    """A configuration from a row of CONFIGURATION_SQL."""
    return Configuration(
        row[0], row[1], json.loads(row[2]), row[3], json.loads(row[4]), row[5], row[6]
    )


def configuration_values(configuration: Configuration) -> tuple[Any, ...]:
    """The parameters of SAVE_CONFIGURATION."""
    return (
        configuration.id,
        configuration.name,
        dumps(configuration.target),
        configuration.priority,
        dumps(configuration.desired),
        configuration.created_at,
        configuration.updated_at,
    )


def configuration_taken(configuration: Configuration) -> ConflictError:
    """The error for a configuration whose name another one has."""
    return ConflictError(f"a configuration named {configuration.name!r} already exists")


def found_configuration(found: Sequence[Configuration], configuration_id: str) -> Configuration:
    """The configuration a lookup by id found, NotFoundError if none."""
    if not found:
        raise NotFoundError(f"configuration {configuration_id} not found")
    return found[0]


def check_desired_version(vin: str, current: Twin, if_version: int | None) -> None:
    """PreconditionFailed unless the desired properties are at `if_version` (None: any)."""
    if if_version is not None and if_version != current.desired_version:
        raise PreconditionFailed(
            f"desired properties of {vin} are at version {current.desired_version}, "
            f"not {if_version}: read them again and retry"
        )


class DesiredWrite(NamedTuple):
    """Own and effective desired properties to store for a vehicle, under `version`."""

    vehicle_id: int
    version: int
    own: dict[str, Any]
    effective: dict[str, Any]
    changed: bool  # a new version: the car gets other properties

    def values(self) -> tuple[Any, ...]:
        """The parameters of STORE_DESIRED (updated now)."""
        return self.vehicle_id, self.version, dumps(self.own), dumps(self.effective), now_us()


def desired_write(
    vehicle_id: int, current: Twin, own: dict[str, Any], effective: dict[str, Any]
) -> DesiredWrite | None:
    """What storing own and effective over `current` writes, None when nothing changed."""
    version = next_desired_version(current, own, effective)
    if version is None:
        return None
    return DesiredWrite(vehicle_id, version, own, effective, version != current.desired_version)


def refreshed_desired(
    vehicles: Sequence[Vehicle],
    current: Mapping[str, Twin],
    configurations: Sequence[Configuration],
    resolve: Resolve,
) -> list[DesiredWrite]:
    """The writes that resolving each vehicle's own properties again makes (by vin in `current`)."""
    writes: list[DesiredWrite] = []
    for vehicle in vehicles:
        twin = current[vehicle.vin]
        effective = resolve(vehicle, twin.desired_own, configurations)
        write = desired_write(vehicle.id, twin, twin.desired_own, effective)
        if write is not None:
            writes.append(write)
    return writes


class TwinReads(ABC):
    """The reads of a TwinStore that are the same SQL on both backends, over the backend's
    query of twins (a condition on TWIN_FROM) and of configurations (a WHERE clause), both
    written with `?` placeholders."""

    @abstractmethod
    async def _read_twins(self, where: str, params: Sequence[Any]) -> list[Twin]: ...

    @abstractmethod
    async def _read_configurations(
        self, where: str = "", params: Sequence[Any] = ()
    ) -> list[Configuration]: ...

    async def list_configurations(self, name_prefix: str | None = None) -> list[Configuration]:
        if name_prefix is None:
            return await self._read_configurations()
        # Names are case-sensitive (SQLite's LIKE is not): compare the leading characters.
        return await self._read_configurations(
            "WHERE substr(name, 1, ?) = ?", (len(name_prefix), name_prefix)
        )

    async def get_configuration(self, configuration_id: str) -> Configuration:
        found = await self._read_configurations(BY_ID, (configuration_id,))
        return found_configuration(found, configuration_id)

    async def find_configuration(self, name: str) -> Configuration | None:
        found = await self._read_configurations("WHERE name = ?", (name,))
        return found[0] if found else None

    async def unsynced_twins(self) -> list[Twin]:
        return await self._read_twins("d.version > COALESCE(r.desired_version, 0)", ())
