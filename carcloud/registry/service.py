"""The registry's rules: brands, vehicles and their credentials, presence, API keys.

Every change is written with its event (`vehicle.registered`, `vehicle.revoked`,
`vehicle.online`, …). A vehicle that is revoked, rotated or deleted loses its
live connection; one that is registered or changed gets the fleet
configurations that now match it. Vehicle secrets are stored as keyed hashes
(`carcloud.registry.secrets.SecretHasher`); a hash of the older scrypt form is
replaced by the keyed form when its car next connects successfully.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from carcloud.errors import (
    CarcloudError,
    ConflictError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from carcloud.events.models import NewEvent
from carcloud.registry.models import (
    MAX_TAGS,
    MODEL_YEARS,
    SLUG_RE,
    TAG_RE,
    ApiKeyRecord,
    Brand,
    NewVehicle,
    RegistrationResult,
    Vehicle,
    VehicleCredentials,
    VehicleRegistration,
)
from carcloud.registry.secrets import (
    NewApiKey,
    SecretHasher,
    new_api_key,
    new_vehicle_secret,
    verify_scrypt,
)
from carcloud.registry.store import EmitVehicle, RegistryStore
from carcloud.timeutil import format_us
from carcloud.vin import describe_invalid_vin, is_valid_vin

log = logging.getLogger(__name__)

# Rows per batch registration: one transaction, and one answer a client can hold.
MAX_BATCH = 1000


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

    async def refresh_vehicles(self, vins: Sequence[str]) -> None:
        """The same for many vehicles at once (a batch registration)."""
        ...


class RegistryService:
    """Brands, vehicles, presence and API keys."""

    def __init__(
        self,
        store: RegistryStore,
        connections: ConnectionControl | None = None,
        vehicle_changes: VehicleChanges | None = None,
        *,
        hasher: SecretHasher,
    ) -> None:
        self.store = store
        self.connections = connections
        self.vehicle_changes = vehicle_changes
        self.hasher = hasher
        self._warned_foreign_key = False

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
        secret_hash = self.hasher.hash(vin, secret)
        vehicle = await self.store.create_vehicle(
            vin, brand, model, model_year, tags, secret_hash,
            emit=vehicle_event("vehicle.registered"),
        )  # fmt: skip
        log.info("vehicle %s registered for brand %s", vehicle.vin, vehicle.brand)
        await self._changed(vehicle.vin)
        return vehicle, secret

    async def register_vehicles(
        self, rows: Sequence[VehicleRegistration], brand_scope: str | None
    ) -> list[RegistrationResult]:
        """Register up to MAX_BATCH vehicles in one transaction; one result per row, in order.

        A bad row (invalid VIN or field, a brand the caller cannot see, a VIN twice
        in the batch or already registered) is reported and the others are stored,
        each with its `vehicle.registered` event. A brand-scoped caller
        (`brand_scope`) can register only its own brand's vehicles.
        """
        if len(rows) > MAX_BATCH:
            raise ValidationError(f"a batch holds at most {MAX_BATCH} vehicles, got {len(rows)}")
        results: list[RegistrationResult | None] = [None] * len(rows)
        pending: list[tuple[int, NewVehicle, str]] = []
        first_row: dict[str, int] = {}
        for index, row in enumerate(rows):
            problem = _check_row(row, brand_scope)
            if problem is None and row.vin in first_row:
                problem = ("duplicate", f"VIN {row.vin} is also at row {first_row[row.vin]}")
            if problem is not None:
                results[index] = RegistrationResult(index, row.vin, error=problem[0],
                                                    message=problem[1])  # fmt: skip
                continue
            first_row[row.vin] = index
            secret = new_vehicle_secret()
            tags = tuple(dict.fromkeys(row.tags))
            secret_hash = self.hasher.hash(row.vin, secret)
            new = NewVehicle(row.vin, row.brand, row.model, row.model_year, tags, secret_hash)
            pending.append((index, new, secret))
        stored = await self.store.create_vehicles(
            [new for _, new, _ in pending], emit=vehicle_event("vehicle.registered")
        )
        registered: list[str] = []
        for (index, new, secret), outcome in zip(pending, stored, strict=True):
            if isinstance(outcome, Vehicle):
                results[index] = RegistrationResult(index, new.vin, outcome, secret)
                registered.append(new.vin)
            else:
                results[index] = RegistrationResult(index, new.vin, error=_error_code(outcome),
                                                    message=str(outcome))  # fmt: skip
        log.info("batch: %d of %d vehicle(s) registered", len(registered), len(rows))
        if registered and self.vehicle_changes is not None:
            await self.vehicle_changes.refresh_vehicles(registered)
        return [result for result in results if result is not None]

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
        secret_hash = self.hasher.hash(vin, secret)
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

    def secret_check_is_slow(self, credentials: VehicleCredentials) -> bool:
        """True while the vehicle's hash is of the older scrypt form (tens of ms to check)."""
        return self.hasher.is_legacy(credentials.secret_hash)

    async def check_secret(self, credentials: VehicleCredentials, secret: str) -> bool:
        """Whether `secret` is the vehicle's; a matching scrypt hash is upgraded to the keyed form.

        The keyed check runs inline (microseconds); scrypt runs in a thread. The
        upgrade is a compare-and-set, so a rotation that happened meanwhile wins; if
        it fails, the car is let in all the same and upgraded at a later connect.
        """
        vin, stored = credentials.vin, credentials.secret_hash
        if self.hasher.is_current(stored):
            return self.hasher.verify(vin, secret, stored)
        if self.hasher.is_legacy(stored):
            if not await asyncio.to_thread(verify_scrypt, secret, stored):
                return False
            try:
                if await self.store.upgrade_secret_hash(vin, stored, self.hasher.hash(vin, secret)):
                    log.debug("vehicle %s: secret hash upgraded to the keyed form", vin)
            except StorageError as exc:
                log.warning("vehicle %s: could not upgrade its secret hash: %s", vin, exc)
            return True
        if self.hasher.foreign_key(stored) and not self._warned_foreign_key:
            self._warned_foreign_key = True
            log.warning(
                "vehicle %s has a secret hash made with another vehicle_pepper than this "
                "process's (key %s): copy the platform's current secrets.json here",
                vin,
                self.hasher.key_id,
            )
        return False

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


def _check_row(row: VehicleRegistration, brand_scope: str | None) -> tuple[str, str] | None:
    """(error code, message) for a row that cannot be registered, else None."""
    if not is_valid_vin(row.vin):
        return "invalid_vin", describe_invalid_vin(row.vin)
    if brand_scope is not None and row.brand != brand_scope:
        return "unknown_brand", f"brand {row.brand!r} not found"  # as for one vehicle: no leak
    if not SLUG_RE.fullmatch(row.brand):
        return "unknown_brand", f"brand {row.brand!r} not found"
    if not row.model or len(row.model) > 100:
        return "invalid", "model must be 1 to 100 characters"
    low, high = MODEL_YEARS
    if row.model_year is not None and not low <= row.model_year <= high:
        return "invalid", f"model year {row.model_year} is not between {low} and {high}"
    if len(row.tags) > MAX_TAGS:
        return "invalid", f"{len(row.tags)} tags; at most {MAX_TAGS}"
    for tag in row.tags:
        if not TAG_RE.fullmatch(tag):
            return "invalid", f"tag {tag!r} is not a tag (letters, digits and _.:=- only)"
    return None


def _error_code(error: CarcloudError) -> str:
    """The batch error code of a store error."""
    if isinstance(error, NotFoundError):
        return "unknown_brand"
    if isinstance(error, ConflictError):
        # Repeats within the batch were caught before the store, so this is the registry.
        return "already_registered"
    return "invalid"
