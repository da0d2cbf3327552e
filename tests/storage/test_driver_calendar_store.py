"""DriverStore and CalendarStore contract: brand scope, current drivers, accounts with their
sync state, objects replaced by a sync, and claims that move an account's next sync."""

from __future__ import annotations

import dataclasses

import pytest

from carcloud.calendars.models import (
    CalendarAccount,
    CalendarItem,
    Geocode,
    ItemChanges,
    SyncReport,
    SyncState,
)
from carcloud.drivers.models import Driver, Place, Preferences
from carcloud.errors import NotFoundError
from carcloud.events.models import NewEvent
from carcloud.storage import Stores
from tests.storage.conftest import SECOND, VIN


def driver(driver_id: str, brand: str = "volta", name: str = "Ada") -> Driver:
    return Driver(
        id=driver_id, brand=brand, name=name, timezone="Europe/Berlin",
        places=(Place("home", 52.52, 13.40), Place("work", 52.50, 13.38, "Friedrichstr. 1")),
        preferences=Preferences(15, 10, True, 22.5), created_at=1 * SECOND, updated_at=1 * SECOND,
    )  # fmt: skip


def account(account_id: str, driver_id: str, brand: str = "volta", due: int = 0) -> CalendarAccount:
    return CalendarAccount(
        id=account_id, driver_id=driver_id, brand=brand, kind="caldav", name="work",
        url="https://dav.example.org/cal/", secret="gAAAA-encrypted", username="ada",
        owner_email="ada@example.org", created_at=due + 1, state=SyncState(next_sync_at=due),
    )  # fmt: skip


@pytest.fixture
async def two_brands(stores: Stores) -> Stores:
    await stores.registry.create_brand("strada", "Strada")
    await stores.drivers.create_driver(driver("drv_a"))
    await stores.drivers.create_driver(driver("drv_b", "strada", "Bo"))
    return stores


async def test_drivers_are_seen_only_by_their_brand(two_brands: Stores) -> None:
    drivers = two_brands.drivers
    assert await drivers.get_driver("drv_a", "volta") == driver("drv_a")
    assert [d.id for d in await drivers.list_drivers(None)] == ["drv_a", "drv_b"]
    assert [d.id for d in await drivers.list_drivers("strada")] == ["drv_b"]
    with pytest.raises(NotFoundError, match="driver drv_a not found"):
        await drivers.get_driver("drv_a", "strada")
    with pytest.raises(NotFoundError):
        await drivers.delete_driver("drv_a", "strada")
    with pytest.raises(NotFoundError, match="brand 'nope' not found"):
        await drivers.create_driver(driver("drv_c", "nope"))


async def test_a_driver_is_updated_and_deleted(two_brands: Stores) -> None:
    drivers = two_brands.drivers
    changed = dataclasses.replace(driver("drv_a"), name="Ada L.", timezone="UTC", places=())
    await drivers.update_driver(changed)
    assert await drivers.get_driver("drv_a", None) == changed
    await drivers.delete_driver("drv_a", "volta")
    assert [d.id for d in await drivers.list_drivers(None)] == ["drv_b"]


async def test_a_vehicle_has_a_driver_of_its_own_brand(two_brands: Stores) -> None:
    drivers = two_brands.drivers
    assert await drivers.vehicle_driver(VIN, "volta") is None
    await drivers.set_vehicle_driver(VIN, "volta", "drv_a")
    assert (await drivers.vehicle_driver(VIN, None)) == driver("drv_a")
    with pytest.raises(NotFoundError, match="driver drv_b not found in the brand"):
        await drivers.set_vehicle_driver(VIN, None, "drv_b")
    with pytest.raises(NotFoundError, match="vehicle"):
        await drivers.vehicle_driver(VIN, "strada")
    await drivers.set_vehicle_driver(VIN, "volta", None)
    assert await drivers.vehicle_driver(VIN, "volta") is None
    await drivers.set_vehicle_driver(VIN, "volta", "drv_a")
    await drivers.delete_driver("drv_a", None)
    assert await drivers.vehicle_driver(VIN, "volta") is None


async def test_accounts_belong_to_a_driver_of_the_brand(two_brands: Stores) -> None:
    calendars = two_brands.calendars
    await calendars.create_account(account("cal_1", "drv_a"))
    with pytest.raises(NotFoundError):
        await calendars.create_account(account("cal_2", "drv_b", brand="volta"))
    assert await calendars.get_account("cal_1", "volta") == account("cal_1", "drv_a")
    assert [a.id for a in await calendars.list_accounts("drv_a", None)] == ["cal_1"]
    with pytest.raises(NotFoundError):
        await calendars.get_account("cal_1", "strada")
    with pytest.raises(NotFoundError):
        await calendars.list_accounts("drv_a", "strada")
    with pytest.raises(NotFoundError):
        await calendars.delete_account("cal_1", "strada")
    await calendars.delete_account("cal_1", "volta")
    assert await calendars.list_accounts("drv_a", "volta") == []


async def test_a_sync_replaces_objects_and_state_together(two_brands: Stores) -> None:
    calendars = two_brands.calendars
    await calendars.create_account(account("cal_1", "drv_a"))
    first = ItemChanges(
        upserts=(CalendarItem("/a.ics", '"1"', "A1"), CalendarItem("/b.ics", '"1"', "B1")),
        replace_all=True,
        sync_token="t1",
    )
    ok = SyncState(
        "ok",
        None,
        0,
        5 * SECOND,
        5 * SECOND,
        65 * SECOND,
        "t1",
        SyncReport("sync-token", 2, 2, 0, 0),
    )
    await calendars.save_sync("cal_1", first, ok)
    assert await calendars.item_etags("cal_1") == {"/a.ics": '"1"', "/b.ics": '"1"'}
    later = ItemChanges(upserts=(CalendarItem("/a.ics", '"2"', "A2"),), deletes=("/b.ics",))
    await calendars.save_sync("cal_1", later, dataclasses.replace(ok, sync_token="t2"))
    assert await calendars.driver_items("drv_a") == [("cal_1", CalendarItem("/a.ics", '"2"', "A2"))]
    stored = await calendars.get_account("cal_1", None)
    assert stored.state == dataclasses.replace(ok, sync_token="t2")
    failed = dataclasses.replace(ok, status="error", error="wrong password", failures=1)
    await calendars.save_state("cal_1", failed)
    assert (await calendars.get_account("cal_1", None)).state == failed
    assert await calendars.driver_items("drv_a") == [("cal_1", CalendarItem("/a.ics", '"2"', "A2"))]


async def test_claims_take_due_accounts_once(two_brands: Stores) -> None:
    calendars = two_brands.calendars
    for index, due in enumerate((10, 20, 30)):
        await calendars.create_account(account(f"cal_{index}", "drv_a", due=due * SECOND))
    claimed = await calendars.claim_due(25 * SECOND, 100 * SECOND, 10)
    assert sorted(a.id for a in claimed) == ["cal_0", "cal_1"]
    assert await calendars.claim_due(25 * SECOND, 100 * SECOND, 10) == []
    assert [a.id for a in await calendars.claim_due(40 * SECOND, 100 * SECOND, 10)] == ["cal_2"]
    assert (await calendars.get_account("cal_0", None)).state.next_sync_at == 100 * SECOND


async def test_a_rotated_secret_replaces_the_old_one(two_brands: Stores) -> None:
    calendars = two_brands.calendars
    await calendars.create_account(account("cal_1", "drv_a"))
    await calendars.save_secret("cal_1", "sealed-new-refresh-token")
    assert (await calendars.get_account("cal_1", None)).secret == "sealed-new-refresh-token"


async def test_a_sync_writes_its_event_with_the_vehicles_of_the_driver(two_brands: Stores) -> None:
    calendars = two_brands.calendars
    await two_brands.drivers.set_vehicle_driver(VIN, "volta", "drv_a")  # VIN: registered
    await calendars.create_account(account("cal_1", "drv_a"))
    changes = ItemChanges(upserts=(CalendarItem("/a.ics", '"1"', "A1"),), sync_token="t1")
    event = NewEvent("agenda.changed", brand="volta", data={"account_id": "cal_1"})
    await calendars.save_sync("cal_1", changes, SyncState("ok"), [event])
    stored = await two_brands.events.list_events(0, "volta", ["agenda.changed"])
    assert [(e.brand, e.vin, e.data) for e in stored] == [
        ("volta", None, {"account_id": "cal_1", "vins": [VIN]})
    ]
    await calendars.delete_account("cal_1", None)  # deleted while it synced: nothing kept
    await calendars.save_sync("cal_1", changes, SyncState("ok"), [event])
    assert len(await two_brands.events.list_events(0, "volta", ["agenda.changed"])) == 1


async def test_geocoder_answers_are_kept_by_query(stores: Stores) -> None:
    calendars = stores.calendars
    assert await calendars.geocodes(["brandenburger tor, berlin"]) == {}
    tor = Geocode("brandenburger tor, berlin", 52.5162699, 13.3777034, "Brandenburger Tor", None, 1)
    nowhere = Geocode("atlantis", None, None, None, "the geocoder knows no place 'Atlantis'", 2)
    await calendars.save_geocodes([tor, nowhere])
    found = await calendars.geocodes(["brandenburger tor, berlin", "atlantis", "unknown"])
    assert found == {tor.query: tor, nowhere.query: nowhere}
    moved = dataclasses.replace(tor, lat=52.5, looked_up_at=3)
    await calendars.save_geocodes([moved])
    assert await calendars.geocodes([tor.query]) == {tor.query: moved}
