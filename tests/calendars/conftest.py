"""Fixtures of the calendar tests: a real Radicale, and the calendar service over SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from carcloud.calendars.credentials import CredentialBox, derive_key
from carcloud.calendars.service import CalendarService
from carcloud.calendars.sources import SourceSettings
from carcloud.calendars.sync import SyncPolicy
from carcloud.drivers.models import Driver, Place
from carcloud.drivers.service import DriverService
from carcloud.storage import Stores
from carcloud.storage.sqlite import sqlite_stores
from tests.calendars.radicale import Radicale

USERS = {"ada": "ada-secret", "bo": "bo-secret"}


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Radicale]:
    server = Radicale(tmp_path / "radicale", dict(USERS))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    opened = sqlite_stores(tmp_path / "carcloud.db")
    await opened.open()
    await opened.registry.create_brand("volta", "Volta")
    yield opened
    await opened.close()


@pytest.fixture
def calendars(stores: Stores) -> CalendarService:
    box = CredentialBox(derive_key("pepper-of-this-test"))
    return CalendarService(
        stores.calendars,
        DriverService(stores.drivers),
        box,
        SourceSettings(allow_private=True, timeout_s=5.0),
        SyncPolicy(interval_s=60, first_retry_s=30),
    )


@pytest.fixture
async def driver(stores: Stores) -> Driver:
    draft = Driver(
        id="", brand="volta", name="Ada", timezone="Europe/Berlin",
        places=(
            Place("home", 52.52, 13.405), Place("Office", 52.5076, 13.3904, "Friedrichstr. 43"),
        ),
    )  # fmt: skip
    return await DriverService(stores.drivers).create(draft)
