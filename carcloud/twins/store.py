"""What the twins slice needs persisted: desired and reported documents, configurations."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from carcloud.events.models import NewEvent
from carcloud.registry.models import Vehicle
from carcloud.twins.models import Configuration, Twin

# The effective desired document of a vehicle from its own properties and every
# configuration (the service's merge rule; the store only calls it).
Resolve = Callable[[Vehicle, dict[str, Any], Sequence[Configuration]], dict[str, Any]]
# The new reported document from the twin as it is.
UpdateReported = Callable[[Twin], dict[str, Any]]
EmitTwin = Callable[[Twin], Sequence[NewEvent]]
EmitConfiguration = Callable[[Configuration], Sequence[NewEvent]]


class TwinStore(Protocol):
    """Twins and fleet configurations. Fleet targeting runs in the database."""

    async def get_twin(self, vin: str, brand: str | None) -> Twin:
        """A vehicle's twin (empty documents if nothing was set yet)."""
        ...

    async def own_desired_value(self, vin: str, key: str) -> Any:
        """One top-level property of the vehicle's own desired document (None when it is not
        set), read without the rest of the twin; NotFoundError for an unknown vehicle."""
        ...

    async def set_desired(
        self,
        vin: str,
        brand: str | None,
        own: dict[str, Any],
        if_version: int | None,
        resolve: Resolve,
        emit: EmitTwin | None = None,
    ) -> Twin:
        """Replace the vehicle's own desired properties; PreconditionFailed on a stale
        version. The effective document gets a new version only when it changed (then
        `emit` runs)."""
        ...

    async def set_reported(
        self,
        vin: str,
        update: UpdateReported,
        desired_version: int | None,
        at: int,
        emit: EmitTwin | None = None,
    ) -> Twin | None:
        """Store what the car reported; None for an unknown VIN."""
        ...

    async def save_configuration(
        self, configuration: Configuration, emit: EmitConfiguration | None = None
    ) -> Configuration:
        """Create or replace a configuration (by id); ConflictError for a name in use."""
        ...

    async def list_configurations(self, name_prefix: str | None = None) -> list[Configuration]:
        """Configurations (optionally only names starting with a prefix), by priority, name."""
        ...

    async def get_configuration(self, configuration_id: str) -> Configuration:
        """One configuration; NotFoundError otherwise."""
        ...

    async def find_configuration(self, name: str) -> Configuration | None:
        """The configuration with this name, if any."""
        ...

    async def delete_configuration(
        self, configuration_id: str, emit: EmitConfiguration | None = None
    ) -> Configuration:
        """Remove a configuration; returns it as it was."""
        ...

    async def refresh_desired(
        self,
        resolve: Resolve,
        vins: Sequence[str] | None = None,
        targets: Sequence[Mapping[str, Any]] | None = None,
        emit: EmitTwin | None = None,
    ) -> list[Twin]:
        """Recompute effective desired documents of these VINs, or of the vehicles any of
        `targets` matches (all vehicles when both are None); returns the twins that
        changed."""
        ...

    async def unsynced_twins(self) -> list[Twin]:
        """Twins whose car has not reported applying the current desired version."""
        ...

    async def twins_matching(self, target: Mapping[str, Any]) -> list[Twin]:
        """Twins of the vehicles a target matches now (the target evaluated in SQL)."""
        ...
