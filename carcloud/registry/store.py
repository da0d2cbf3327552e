"""What the registry needs persisted: brands, vehicles and their presence, API keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from carcloud.errors import CarcloudError
from carcloud.events.models import NewEvent
from carcloud.registry.models import (
    ApiKeyRecord,
    Brand,
    NewVehicle,
    Vehicle,
    VehicleCredentials,
)

# Given the changed record, the events to write in the same transaction.
EmitVehicle = Callable[[Vehicle], Sequence[NewEvent]]


class RegistryStore(Protocol):
    """Brands, vehicles, presence and API keys. Raises carcloud.errors, never driver errors."""

    async def create_brand(self, slug: str, name: str, emit: Sequence[NewEvent] = ()) -> Brand:
        """Create a brand; ConflictError if the slug exists."""
        ...

    async def list_brands(self) -> list[Brand]:
        """All brands, by slug."""
        ...

    async def get_brand(self, slug: str) -> Brand:
        """One brand; NotFoundError if missing."""
        ...

    async def create_vehicle(
        self,
        vin: str,
        brand: str,
        model: str,
        model_year: int | None,
        tags: Sequence[str],
        secret_hash: str,
        emit: EmitVehicle | None = None,
    ) -> Vehicle:
        """Register a vehicle; ConflictError if the VIN exists, NotFoundError for the brand."""
        ...

    async def create_vehicles(
        self, vehicles: Sequence[NewVehicle], emit: EmitVehicle | None = None
    ) -> list[Vehicle | CarcloudError]:
        """Register many vehicles in one transaction, each with its events.

        One entry per input, in order: the stored vehicle, or the error that kept
        that row out (ConflictError for a VIN already registered or repeated in the
        batch, NotFoundError for an unknown brand); the other rows are stored.
        """
        ...

    async def get_vehicle(self, vin: str, brand: str | None = None) -> Vehicle:
        """One vehicle, optionally only if it belongs to `brand`; NotFoundError otherwise."""
        ...

    async def list_vehicles(
        self,
        brand: str | None = None,
        tag: str | None = None,
        online: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Vehicle]:
        """Vehicles matching every given filter, by VIN."""
        ...

    async def count_vehicles(self, brand: str | None = None) -> tuple[int, int]:
        """(registered, online) vehicles, optionally for one brand."""
        ...

    async def update_vehicle(
        self,
        vin: str,
        brand: str | None,
        tags: Sequence[str] | None = None,
        model: str | None = None,
        model_year: int | None = None,
        emit: EmitVehicle | None = None,
    ) -> Vehicle:
        """Change tags, model or model year."""
        ...

    async def delete_vehicle(
        self, vin: str, brand: str | None, emit: EmitVehicle | None = None
    ) -> Vehicle:
        """Delete a vehicle and everything stored about it; returns it as it was."""
        ...

    async def set_vehicle_secret(
        self, vin: str, brand: str | None, secret_hash: str, emit: EmitVehicle | None = None
    ) -> Vehicle:
        """Replace the vehicle's secret hash and lift any revocation."""
        ...

    async def upgrade_secret_hash(self, vin: str, old_hash: str, new_hash: str) -> bool:
        """Replace the secret hash by another form of the same secret, if it is still `old_hash`.

        False when the hash changed meanwhile (a rotation wins). No event: the
        vehicle's credentials stay the same, only their stored form changes.
        """
        ...

    async def revoke_vehicle(
        self, vin: str, brand: str | None, emit: EmitVehicle | None = None
    ) -> Vehicle:
        """Mark the vehicle's credentials revoked."""
        ...

    async def get_credentials(self, vin: str) -> VehicleCredentials | None:
        """The credentials of a VIN, or None if it is not registered."""
        ...

    async def set_presence(
        self, vin: str, online: bool, at: int, emit: EmitVehicle | None = None
    ) -> bool:
        """Record a connect or disconnect; False if the VIN is unknown. Older events lose.

        `emit` runs only when the record changed (an older event changes nothing).
        """
        ...

    async def reconcile_presence(
        self, connected: set[str], at: int, emit: EmitVehicle | None = None
    ) -> list[Vehicle]:
        """Make `online` true for exactly the `connected` VINs; the vehicles that changed."""
        ...

    async def create_api_key(
        self, key_id: str, name: str, brand: str | None, key_hash: str
    ) -> ApiKeyRecord:
        """Store a new API key hash."""
        ...

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """Find a key by its public id."""
        ...

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        """All keys, newest first."""
        ...
