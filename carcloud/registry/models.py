"""The registry's records: brands, vehicles with their presence, credentials, API keys."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Brand:
    """A tenant: one car maker can own several brands."""

    id: int
    slug: str
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A registered vehicle with its presence."""

    id: int
    vin: str
    brand: str
    model: str
    model_year: int | None
    tags: tuple[str, ...]
    created_at: int
    revoked_at: int | None
    online: bool
    last_seen_at: int | None
    connected_at: int | None


@dataclass(frozen=True, slots=True)
class VehicleCredentials:
    """What the auth callout needs to check a connecting vehicle."""

    vin: str
    brand: str
    secret_hash: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored API key: only its hash is kept."""

    id: str
    name: str
    brand: str | None
    key_hash: str
    created_at: int
    revoked_at: int | None
