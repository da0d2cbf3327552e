"""The storage interface for remote control: commands, twins, configurations."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from carcloud.storage.models import CommandRecord, Configuration, Twin


class ControlStore(abc.ABC):
    """Durable state of what the cloud asks of cars; every backend implements it."""

    # commands
    @abc.abstractmethod
    async def create_command(
        self,
        command_id: str,
        vin: str,
        brand: str | None,
        kind: str,
        params: dict[str, object],
        expires_at: int,
        idempotency_key: str | None,
    ) -> tuple[CommandRecord, bool]:
        """Queue a command; with a known idempotency key, the earlier one and False."""

    @abc.abstractmethod
    async def get_command(self, vin: str, command_id: str, brand: str | None) -> CommandRecord:
        """One command of one vehicle, with its transitions; NotFoundError otherwise."""

    @abc.abstractmethod
    async def list_commands(
        self, vin: str, brand: str | None, status: str | None, limit: int
    ) -> list[CommandRecord]:
        """A vehicle's commands, newest first."""

    @abc.abstractmethod
    async def transition_command(
        self,
        command_id: str,
        status: str,
        at: int,
        reason: str | None = None,
        vin: str | None = None,
    ) -> CommandRecord | None:
        """Move a command on (only if it is `vin`'s, when given); None if not allowed."""

    @abc.abstractmethod
    async def open_commands(self, vin: str | None = None) -> list[CommandRecord]:
        """Queued or delivered commands (of one vehicle or all), oldest first."""

    @abc.abstractmethod
    async def expire_commands(self, now: int) -> list[CommandRecord]:
        """Mark open commands past their time to live expired; returns them."""

    # twins
    @abc.abstractmethod
    async def get_twin(self, vin: str, brand: str | None) -> Twin:
        """A vehicle's twin (empty documents if nothing was set yet)."""

    @abc.abstractmethod
    async def set_desired(
        self, vin: str, brand: str | None, own: dict[str, object], if_version: int | None
    ) -> Twin:
        """Replace the vehicle's own desired properties; PreconditionFailed on a stale version."""

    @abc.abstractmethod
    async def set_reported(
        self, vin: str, patch: dict[str, object], desired_version: int | None, at: int
    ) -> Twin | None:
        """Merge what the car reported; None for an unknown VIN."""

    # configurations
    @abc.abstractmethod
    async def save_configuration(self, configuration: Configuration) -> Configuration:
        """Create or replace a configuration (by id)."""

    @abc.abstractmethod
    async def list_configurations(self) -> list[Configuration]:
        """All configurations, by priority then name."""

    @abc.abstractmethod
    async def get_configuration(self, configuration_id: str) -> Configuration:
        """One configuration; NotFoundError otherwise."""

    @abc.abstractmethod
    async def delete_configuration(self, configuration_id: str) -> None:
        """Remove a configuration (its properties leave the vehicles' desired documents)."""

    @abc.abstractmethod
    async def refresh_desired(self, vins: Sequence[str] | None = None) -> list[Twin]:
        """Recompute effective desired documents (all vehicles, or these); returns changed twins."""

    @abc.abstractmethod
    async def unsynced_twins(self) -> list[Twin]:
        """Twins whose car has not reported applying the current desired version."""

    @abc.abstractmethod
    async def twins_for(self, vins: Sequence[str]) -> list[Twin]:
        """Twins of several vehicles at once (configuration status)."""
