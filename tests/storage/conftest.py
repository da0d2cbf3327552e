"""The storage contract suite: every store, through its protocol, on every backend.

A backend is one parameter of `stores`; PostgreSQL adds its own next to SQLite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carcloud.ingest.store import TelemetryStore
from carcloud.storage import Stores
from carcloud.storage.postgres import postgres_stores
from carcloud.storage.sqlite import sqlite_stores
from tests.pg import postgres_database

VIN = "WVWZZZ1JZXW000001"
SECOND = 1_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    """Every store of one backend, migrated and empty (PostgreSQL: a database of its own)."""
    if request.param == "sqlite":
        stores = sqlite_stores(tmp_path / "carcloud.db")
        await stores.open()
        yield stores
        await stores.close()
        return
    async with postgres_database() as url:
        stores = postgres_stores(url)
        await stores.open()
        try:
            yield stores
        finally:
            await stores.close()


@pytest.fixture
async def stores(empty_stores: Stores) -> Stores:
    """Stores with brand `volta` and one vehicle (VIN, model E1 2025, tag fleet:a)."""
    await empty_stores.registry.create_brand("volta", "Volta")
    await empty_stores.registry.create_vehicle(VIN, "volta", "E1", 2025, ["fleet:a"], "scrypt$h")
    return empty_stores


@pytest.fixture
def telemetry(stores: Stores) -> TelemetryStore:
    """The telemetry store of `stores`."""
    return stores.telemetry
