"""What a running role needs, gathered in one place and handed to the API and workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from nats.aio.client import Client as NatsClient

from carcloud.catalog import SignalCatalog
from carcloud.commands.events import CommandWatch
from carcloud.storage.base import Storage


class ConnectionControl(Protocol):
    """Drops live MQTT connections (used when a vehicle is revoked or rotated)."""

    async def disconnect_vehicle(self, vin: str) -> int:
        """Close every live connection of `vin`; returns how many were closed."""
        ...


@dataclass
class Services:
    """Shared handles of one process: storage, NATS, the catalog and connection control.

    `commands` follows command announcements for API requests that wait.
    """

    storage: Storage
    catalog: SignalCatalog
    nats: NatsClient | None = None
    connections: ConnectionControl | None = None
    commands: CommandWatch | None = None
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    info: dict[str, str] = field(default_factory=dict)
