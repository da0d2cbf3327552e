"""The one storage interface; SQLite and PostgreSQL implement it."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from carcloud.storage.control import ControlStore
from carcloud.storage.models import (
    ApiKeyRecord,
    Brand,
    DeadLetter,
    HistoryPoint,
    IngestResult,
    LatestState,
    TelemetryMessage,
    Vehicle,
    VehicleCredentials,
)


class Storage(ControlStore):
    """Everything carcloud keeps. Methods raise carcloud.errors, never driver errors."""

    # lifecycle
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The number of the newest applied migration."""

    # brands
    @abc.abstractmethod
    async def create_brand(self, slug: str, name: str) -> Brand:
        """Create a brand; ConflictError if the slug exists."""

    @abc.abstractmethod
    async def list_brands(self) -> list[Brand]:
        """All brands, by slug."""

    @abc.abstractmethod
    async def get_brand(self, slug: str) -> Brand:
        """One brand; NotFoundError if missing."""

    # vehicles
    @abc.abstractmethod
    async def create_vehicle(
        self,
        vin: str,
        brand: str,
        model: str,
        model_year: int | None,
        tags: Sequence[str],
        secret_hash: str,
    ) -> Vehicle:
        """Register a vehicle; ConflictError if the VIN exists, NotFoundError for the brand."""

    @abc.abstractmethod
    async def get_vehicle(self, vin: str, brand: str | None = None) -> Vehicle:
        """One vehicle, optionally only if it belongs to `brand`; NotFoundError otherwise."""

    @abc.abstractmethod
    async def list_vehicles(
        self,
        brand: str | None = None,
        tag: str | None = None,
        online: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Vehicle]:
        """Vehicles matching every given filter, by VIN."""

    @abc.abstractmethod
    async def count_vehicles(self, brand: str | None = None) -> tuple[int, int]:
        """(registered, online) vehicles, optionally for one brand."""

    @abc.abstractmethod
    async def update_vehicle(
        self,
        vin: str,
        brand: str | None,
        tags: Sequence[str] | None = None,
        model: str | None = None,
        model_year: int | None = None,
    ) -> Vehicle:
        """Change tags, model or model year."""

    @abc.abstractmethod
    async def delete_vehicle(self, vin: str, brand: str | None) -> None:
        """Delete a vehicle and everything stored about it."""

    @abc.abstractmethod
    async def set_vehicle_secret(self, vin: str, brand: str | None, secret_hash: str) -> Vehicle:
        """Replace the vehicle's secret hash and lift any revocation."""

    @abc.abstractmethod
    async def revoke_vehicle(self, vin: str, brand: str | None) -> Vehicle:
        """Mark the vehicle's credentials revoked."""

    @abc.abstractmethod
    async def get_credentials(self, vin: str) -> VehicleCredentials | None:
        """The credentials of a VIN, or None if it is not registered."""

    @abc.abstractmethod
    async def set_presence(self, vin: str, online: bool, at: int) -> bool:
        """Record a connect or disconnect; False if the VIN is unknown. Older events lose."""

    # api keys
    @abc.abstractmethod
    async def create_api_key(
        self, key_id: str, name: str, brand: str | None, key_hash: str
    ) -> ApiKeyRecord:
        """Store a new API key hash."""

    @abc.abstractmethod
    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """Find a key by its public id."""

    @abc.abstractmethod
    async def list_api_keys(self) -> list[ApiKeyRecord]:
        """All keys, newest first."""

    # telemetry
    @abc.abstractmethod
    async def write_telemetry(
        self, messages: Sequence[TelemetryMessage], dead_letters: Sequence[DeadLetter]
    ) -> IngestResult:
        """Store messages (deduplicated by vin and seq) and dead letters in one transaction."""

    @abc.abstractmethod
    async def latest_state(self, vin: str) -> LatestState:
        """The newest value of every signal the vehicle has reported."""

    @abc.abstractmethod
    async def fleet_overview(
        self, brand: str | None, paths: Sequence[str], limit: int = 1000, offset: int = 0
    ) -> list[tuple[Vehicle, LatestState]]:
        """Vehicles with the newest value of a few signals each, in one query (dashboards)."""

    @abc.abstractmethod
    async def history(
        self,
        vin: str,
        path: str,
        start: int | None,
        end: int | None,
        limit: int,
        bucket_us: int | None = None,
    ) -> list[HistoryPoint]:
        """Values of one signal in [start, end), oldest first, optionally averaged per bucket."""

    @abc.abstractmethod
    async def count_samples(self, vin: str | None = None) -> int:
        """How many history rows (vehicle, time) are stored, for one vehicle or all."""

    @abc.abstractmethod
    async def list_dead_letters(
        self, vin: str | None, brand: str | None, limit: int, before_id: int | None = None
    ) -> list[DeadLetter]:
        """Dead letters, newest first."""
