"""A sync that changes a driver's meetings writes one `agenda.changed` event with them."""

from __future__ import annotations

from carcloud.calendars.service import AccountDraft, CalendarService
from carcloud.drivers.models import Driver
from carcloud.storage import Stores
from tests.calendars.feedserver import FeedServer

VIN = "WVWZZZ1JZXW000777"


def feed(*events: tuple[str, str]) -> str:
    body = "".join(
        f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20261101T000000Z\nDTSTART:20261202T090000Z\n"
        f"DURATION:PT1H\nSUMMARY:{summary}\nEND:VEVENT\n"
        for uid, summary in events
    )
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\n{body}END:VCALENDAR\n"


async def test_changes_of_a_sync_are_one_event_for_the_drivers_vehicles(
    stores: Stores, calendars: CalendarService, driver: Driver
) -> None:
    await stores.registry.create_vehicle(VIN, "volta", "E1", 2025, [], "scrypt$h")
    await calendars.drivers.set_vehicle_driver(VIN, "volta", driver.id)
    with FeedServer() as server:
        server.serve(feed(("a", "Standup"), ("b", "Review")))
        account = await calendars.add_account(driver.id, "volta", AccountDraft("ics", server.url))

        async def events() -> list[dict[str, object]]:
            found = await stores.events.list_events(0, "volta", ["agenda.changed"])
            return [event.data for event in found]

        assert await events() == [
            {
                "driver_id": driver.id, "account_id": account.id, "account_kind": "ics",
                "mode": "feed", "replaced": False, "changed_count": 2, "removed_count": 0,
                "changed": ["a", "b"], "removed": [], "vins": [VIN],
            }
        ]  # fmt: skip
        await calendars.sync_now(account.id, None)  # nothing changed: no event
        assert len(await events()) == 1
        server.serve(feed(("a", "Standup moved")))
        await calendars.sync_now(account.id, None)
        last = (await events())[-1]
        assert (last["changed"], last["removed"]) == (["a"], ["b"])
