"""The registry's rules: brands, vehicles and their credentials, presence, API keys.

Every change is written with its event (`vehicle.registered`, `vehicle.revoked`,
`vehicle.online`, …). A vehicle that is revoked, rotated or deleted loses its
live connection; one that is registered or changed gets the fleet
configurations that now match it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from carcloud.events.models import NewEvent
from carcloud.registry.models import ApiKeyRecord, Brand, Vehicle, VehicleCredentials
from carcloud.registry.secrets import (
    NewApiKey,
    hash_secret,
    new_api_key,
    new_vehicle_secret,
)
from carcloud.registry.store import EmitVehicle, RegistryStore
from carcloud.timeutil import format_us

log = logging.getLogger(__name__)


def vehicle_json(vehicle: Vehicle) -> dict[str, object]:
    """A vehicle in event payloads (never its secret)."""
    return {
        "vin": vehicle.vin,
        "brand": vehicle.brand,
        "model": vehicle.model,
        "model_year": vehicle.model_year,
        "tags": list(vehicle.tags),
        "revoked": vehicle.revoked_at is not None,
        "online": vehicle.online,
        "last_seen_at": format_us(vehicle.last_seen_at),
    }


def vehicle_event(event_type: str) -> EmitVehicle:
    """An emitter of one event of `event_type` for the vehicle as it now is."""

    def emit(vehicle: Vehicle) -> Sequence[NewEvent]:
        return (
            NewEvent(event_type, vin=vehicle.vin, brand=vehicle.brand, data=vehicle_json(vehicle)),
        )

    return emit


class ConnectionControl(Protocol):
    """Drops live MQTT connections (when a vehicle is revoked or deleted)."""

    async def disconnect_vehicle(self, vin: str) -> int:
        """Close every live connection of `vin`; returns how many were closed."""
        ...


class VehicleChanges(Protocol):
    """Who must hear that a vehicle was registered or changed (the twins slice)."""

    async def refresh_vehicle(self, vin: str) -> None:
        """Recompute what the vehicle should get."""
        ...


class RegistryService:
    """Brands, vehicles, presence and API keys."""

    def __init__(
        self,
        store: RegistryStore,
        connections: ConnectionControl | None = None,
        vehicle_changes: VehicleChanges | None = None,
    ) -> None:
        self.store = store
        self.connections = connections
        self.vehicle_changes = vehicle_changes

    # ---- brands ------------------------------------------------------------------------

    async def create_brand(self, slug: str, name: str) -> Brand:
        """A new brand (operators only; the API checks)."""
        created = NewEvent("brand.created", brand=slug, data={"slug": slug, "name": name})
        brand = await self.store.create_brand(slug, name, emit=[created])
        log.info("brand %s created", brand.slug)
        return brand

    async def list_brands(self, brand: str | None) -> list[Brand]:
        """Brands the caller can see (a brand key sees its own)."""
        return [b for b in await self.store.list_brands() if brand in (None, b.slug)]

    async def get_brand(self, slug: str) -> Brand:
        """One brand."""
        return await self.store.get_brand(slug)

    # ---- vehicles ----------------------------------------------------------------------

    async def register_vehicle(
        self, vin: str, brand: str, model: str, model_year: int | None, tags: Sequence[str]
    ) -> tuple[Vehicle, str]:
        """Register a vehicle; returns it with its MQTT secret (shown only this once)."""
        secret = new_vehicle_secret()
        secret_hash = await asyncio.to_thread(hash_secret, secret)  # slow on purpose: off the loop
        vehicle = await self.store.create_vehicle(
            vin, brand, model, model_year, tags, secret_hash,
            emit=vehicle_event("vehicle.registered"),
        )  # fmt: skip
        log.info("vehicle %s registered for brand %s", vehicle.vin, vehicle.brand)
        await self._changed(vehicle.vin)
        return vehicle, secret

    async def _changed(self, vin: str) -> None:
        if self.vehicle_changes is not None:
            await self.vehicle_changes.refresh_vehicle(vin)

    async def get_vehicle(self, vin: str, brand: str | None = None) -> Vehicle:
        """One vehicle the caller may see."""
        return await self.store.get_vehicle(vin, brand)

    async def list_vehicles(
        self,
        brand: str | None = None,
        tag: str | None = None,
        online: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Vehicle]:
        """Vehicles matching every filter, by VIN."""
        return await self.store.list_vehicles(brand, tag, online, limit, offset)

    async def count_vehicles(self, brand: str | None) -> tuple[int, int]:
        """(registered, online)."""
        return await self.store.count_vehicles(brand)

    async def update_vehicle(
        self,
        vin: str,
        brand: str | None,
        tags: Sequence[str] | None = None,
        model: str | None = None,
        model_year: int | None = None,
    ) -> Vehicle:
        """Change tags, model or model year; configurations may match it now, or no longer."""
        vehicle = await self.store.update_vehicle(
            vin, brand, tags, model, model_year, emit=vehicle_event("vehicle.updated")
        )
        await self._changed(vehicle.vin)
        return vehicle

    async def delete_vehicle(self, vin: str, brand: str | None) -> None:
        """Delete a vehicle and its data; drop its live connection."""
        await self.store.delete_vehicle(vin, brand, emit=vehicle_event("vehicle.deleted"))
        await self._disconnect(vin)
        log.info("vehicle %s deleted", vin)

    async def rotate_secret(self, vin: str, brand: str | None) -> tuple[Vehicle, str]:
        """A new MQTT secret; the old one stops working at the next connect."""
        secret = new_vehicle_secret()
        secret_hash = await asyncio.to_thread(hash_secret, secret)
        vehicle = await self.store.set_vehicle_secret(
            vin, brand, secret_hash, emit=vehicle_event("vehicle.secret_rotated")
        )
        log.info("vehicle %s secret rotated", vehicle.vin)
        return vehicle, secret

    async def revoke(self, vin: str, brand: str | None) -> Vehicle:
        """Revoke the vehicle's credentials and drop its live connection."""
        vehicle = await self.store.revoke_vehicle(vin, brand, emit=vehicle_event("vehicle.revoked"))
        dropped = await self._disconnect(vehicle.vin)
        log.info("vehicle %s revoked, %d live connection(s) dropped", vehicle.vin, dropped)
        return await self.store.get_vehicle(vehicle.vin)

    async def _disconnect(self, vin: str) -> int:
        if self.connections is None:
            return 0
        return await self.connections.disconnect_vehicle(vin)

    async def credentials(self, vin: str) -> VehicleCredentials | None:
        """What the auth callout checks a connecting car against."""
        return await self.store.get_credentials(vin)

    # ---- presence ----------------------------------------------------------------------

    async def record_presence(self, vin: str, online: bool, at: int) -> bool:
        """A connect or disconnect seen by the server; False for an unknown VIN."""
        event_type = "vehicle.online" if online else "vehicle.offline"
        return await self.store.set_presence(vin, online, at, emit=vehicle_event(event_type))

    async def reconcile_presence(self, connected: set[str], at: int) -> list[Vehicle]:
        """Online exactly the connected VINs (after a restart); the vehicles that changed."""

        def emit(vehicle: Vehicle) -> Sequence[NewEvent]:
            event_type = "vehicle.online" if vehicle.online else "vehicle.offline"
            return vehicle_event(event_type)(vehicle)

        return await self.store.reconcile_presence(connected, at, emit=emit)

    # ---- api keys ----------------------------------------------------------------------

    async def create_api_key(self, name: str, brand: str | None) -> tuple[ApiKeyRecord, NewApiKey]:
        """A new key, operator-wide or for one brand; the token is shown once."""
        made = new_api_key()
        record = await self.store.create_api_key(made.key_id, name, brand, made.key_hash)
        return record, made

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        """All keys, newest first (hashes only)."""
        return await self.store.list_api_keys()

    async def find_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """A key by its public id."""
        return await self.store.get_api_key(key_id)
