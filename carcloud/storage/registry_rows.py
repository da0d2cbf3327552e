"""Rows of the brands, vehicles and api_keys tables, shared by both backends: one SQL, one
decoding, one wording of the errors, and the reads that are the same on both.

The statements are written with `?` placeholders; PostgreSQL runs them through
`rows.numbered` ($1, $2, …).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from carcloud.errors import ConflictError, NotFoundError
from carcloud.registry.models import ApiKeyRecord, Brand, VehicleCredentials
from carcloud.storage.rows import Row

BRAND_SELECT = "SELECT id, slug, name, created_at FROM brands"
BRAND_ID = "SELECT id FROM brands WHERE slug = ?"
INSERT_BRAND = "INSERT INTO brands (slug, name, created_at) VALUES (?, ?, ?)"
INSERT_VEHICLE = (
    "INSERT INTO vehicles (vin, brand_id, model, model_year, secret_hash, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
SET_MODEL = "UPDATE vehicles SET model = ? WHERE id = ?"
SET_MODEL_YEAR = "UPDATE vehicles SET model_year = ? WHERE id = ?"
SET_SECRET = "UPDATE vehicles SET secret_hash = ?, revoked_at = NULL WHERE id = ?"
UPGRADE_SECRET = "UPDATE vehicles SET secret_hash = ? WHERE vin = ? AND secret_hash = ?"
REVOKE = "UPDATE vehicles SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?"
VEHICLE_EXISTS = "SELECT 1 FROM vehicles WHERE vin = ?"
CREDENTIALS_SQL = (
    "SELECT v.vin, b.slug, v.secret_hash, v.revoked_at "
    "FROM vehicles v JOIN brands b ON b.id = v.brand_id WHERE v.vin = ?"
)
KEY_SQL = (
    "SELECT k.id, k.name, b.slug, k.key_hash, k.created_at, k.revoked_at "
    "FROM api_keys k LEFT JOIN brands b ON b.id = k.brand_id"
)
INSERT_API_KEY = (
    "INSERT INTO api_keys (id, name, brand_id, key_hash, created_at) VALUES (?, ?, ?, ?, ?)"
)


def brand_taken(slug: str) -> ConflictError:
    """The error for a brand slug that another brand has."""
    return ConflictError(f"brand {slug!r} already exists")


def brand_missing(slug: str) -> NotFoundError:
    """The error for a brand slug no brand has."""
    return NotFoundError(f"brand {slug!r} not found")


def vehicle_taken(vin: str) -> ConflictError:
    """The error for a VIN that is registered already."""
    return ConflictError(f"vehicle {vin} is already registered")


def brand_of(row: Row) -> Brand:
    """A brand from a row of BRAND_SELECT."""
    return Brand(row[0], row[1], row[2], row[3])


def api_key_of(row: Row) -> ApiKeyRecord:
    """An API key from a row of KEY_SQL."""
    return ApiKeyRecord(row[0], row[1], row[2], row[3], row[4], row[5])


class RegistryReads(ABC):
    """The reads of a RegistryStore that are the same SQL on both backends, over the
    backend's query (`?` placeholders)."""

    @abstractmethod
    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def list_brands(self) -> list[Brand]:
        return [brand_of(row) for row in await self._rows(BRAND_SELECT + " ORDER BY slug")]

    async def get_brand(self, slug: str) -> Brand:
        rows = await self._rows(BRAND_SELECT + " WHERE slug = ?", (slug,))
        if not rows:
            raise brand_missing(slug)
        return brand_of(rows[0])

    async def get_credentials(self, vin: str) -> VehicleCredentials | None:
        rows = await self._rows(CREDENTIALS_SQL, (vin,))
        if not rows:
            return None
        row = rows[0]
        return VehicleCredentials(row[0], row[1], row[2], row[3] is not None)

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        rows = await self._rows(KEY_SQL + " WHERE k.id = ?", (key_id,))
        return api_key_of(rows[0]) if rows else None

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        return [
            api_key_of(row) for row in await self._rows(KEY_SQL + " ORDER BY k.created_at DESC")
        ]
