"""The stores of every slice, opened together over one backend.

Each slice declares the narrow store protocol it needs (`carcloud.<slice>.store`);
a backend implements each of them over one shared engine, so that a change in one
store and the events it produces commit in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from carcloud.alerts.store import AlertStore
from carcloud.calendars.store import CalendarStore
from carcloud.calls.store import CallStore
from carcloud.commands.store import CommandStore
from carcloud.drivers.store import DriverStore
from carcloud.events.store import EventStore
from carcloud.geofences.store import GeofenceStore
from carcloud.ingest.store import TelemetryStore
from carcloud.productivity.store import ProductivityStore
from carcloud.registry.store import RegistryStore
from carcloud.telematics.store import TelematicsStore
from carcloud.twins.store import TwinStore
from carcloud.webhooks.store import WebhookStore


class Engine(Protocol):
    """The backend's shared engine: its lifecycle and schema."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""
        ...

    async def close(self) -> None:
        """Finish pending writes and release connections."""
        ...

    async def schema_version(self) -> int:
        """The number of the newest applied migration."""
        ...


@dataclass
class Stores:
    """One backend's implementation of every store protocol."""

    engine: Engine
    registry: RegistryStore
    telemetry: TelemetryStore
    commands: CommandStore
    twins: TwinStore
    events: EventStore
    telematics: TelematicsStore
    drivers: DriverStore
    calendars: CalendarStore
    webhooks: WebhookStore
    geofences: GeofenceStore
    alerts: AlertStore
    productivity: ProductivityStore
    calls: CallStore

    async def open(self) -> None:
        """Connect and migrate."""
        await self.engine.open()

    async def close(self) -> None:
        """Release everything."""
        await self.engine.close()

    def __repr__(self) -> str:
        return f"Stores({self.engine!r})"
