"""The registry's records: brands, vehicles with their presence, credentials, API keys."""

from __future__ import annotations

import re
from dataclasses import dataclass

# The forms the API and the batch import accept, kept here so both check the same.
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:=-]{0,63}$")
MAX_TAGS = 50
MODEL_YEARS = (1980, 2100)


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
class NewVehicle:
    """One vehicle of a batch registration, checked and hashed, ready to store."""

    vin: str
    brand: str
    model: str
    model_year: int | None
    tags: tuple[str, ...]
    secret_hash: str


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


@dataclass(frozen=True, slots=True)
class VehicleRegistration:
    """One row of a batch registration as the caller gave it (checked by the service)."""

    vin: str
    brand: str
    model: str
    model_year: int | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RegistrationResult:
    """What became of one row of a batch: the vehicle and its secret, or why not.

    `error` is one of `invalid_vin`, `invalid`, `unknown_brand`, `duplicate` (twice
    in the batch), `already_registered`; `message` says what exactly.
    """

    index: int
    vin: str
    vehicle: Vehicle | None = None
    secret: str | None = None
    error: str | None = None
    message: str | None = None
