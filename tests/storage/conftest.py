"""The storage contract suite: every store, through its protocol, on every backend.

A backend is one parameter of `stores`; PostgreSQL adds its own next to SQLite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from carcloud.ingest.store import TelemetryStore
from carcloud.storage import Stores
from carcloud.storage.sqlite import sqlite_stores

VIN = "WVWZZZ1JZXW000001"
SECOND = 1_000_000

Backend = Callable[[Path], Awaitable[Stores]]


async def _sqlite(tmp_path: Path) -> Stores:
    return sqlite_stores(tmp_path / "carcloud.db")


BACKENDS: dict[str, Backend] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
async def empty_stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    """Every store of one backend, migrated and empty."""
    stores = await BACKENDS[request.param](tmp_path)
    await stores.open()
    yield stores
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
