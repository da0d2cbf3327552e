"""ProductivityStore contract: a card is recorded once per key and car, the newest card of
each purpose per meeting is what change detection reads, and pre-conditioning is
scheduled, moved while scheduled, kept once sent or cancelled, and brand-scoped."""

from __future__ import annotations

import pytest

from carcloud.drivers.models import Driver
from carcloud.errors import NotFoundError
from carcloud.productivity.models import CardPurpose, Precondition, SentCard
from carcloud.storage import Stores
from carcloud_agent.protocol.notifications import Notification, NotificationAction
from tests.storage.conftest import SECOND, VIN


def card(key: str, purpose: CardPurpose, at: int, meeting: str | None = "m1",
         fingerprint: str | None = "f1") -> SentCard:  # fmt: skip
    notification = Notification(
        f"ntf_{key.replace(':', '_')}", "meeting", f"Card {key}", "body",
        (NotificationAction("navigate", "Navigate", "geo:52.5,13.4"),), at + 3600 * SECOND,
    )  # fmt: skip
    return SentCard(VIN, key, purpose, meeting, fingerprint, notification, at)


async def test_a_card_is_recorded_once_per_key(stores: Stores) -> None:
    cards = stores.productivity
    first = card("next:m1:f1", "next_meeting", 10 * SECOND)
    assert await cards.record_card(first) is True
    assert await cards.record_card(card("next:m1:f1", "next_meeting", 11 * SECOND)) is False
    assert await cards.record_card(card("leave:m1", "leave_by", 12 * SECOND)) is True
    listed = await cards.list_cards(VIN, "volta", 10)
    assert [c.key for c in listed] == ["leave:m1", "next:m1:f1"]
    assert listed[1] == first  # the card comes back as it was sent
    assert [c.key for c in await cards.list_cards(VIN, None, 1)] == ["leave:m1"]
    await stores.registry.create_brand("strada", "Strada")
    with pytest.raises(NotFoundError):
        await cards.list_cards(VIN, "strada", 10)


async def test_meeting_cards_are_the_newest_of_each_purpose(stores: Stores) -> None:
    cards = stores.productivity
    await cards.record_card(card("next:m1:f1", "next_meeting", 10 * SECOND))
    await cards.record_card(card("changed:m1:f2", "changed", 20 * SECOND, fingerprint="f2"))
    await cards.record_card(card("changed:m1:f3", "changed", 30 * SECOND, fingerprint="f3"))
    await cards.record_card(card("next:m2:f1", "next_meeting", 40 * SECOND, meeting="m2"))
    await cards.record_card(card("info", "late", 50 * SECOND, meeting=None))
    found = [(c.meeting_id, c.purpose, c.fingerprint) for c in await cards.meeting_cards(VIN)]
    assert found == [
        ("m1", "next_meeting", "f1"), ("m1", "changed", "f3"), ("m2", "next_meeting", "f1"),
    ]  # fmt: skip


async def test_driven_vehicles_are_those_with_a_current_driver(stores: Stores) -> None:
    assert await stores.productivity.driven_vehicles() == []
    await stores.drivers.create_driver(Driver("drv_a", "volta", "Ada"))
    await stores.drivers.set_vehicle_driver(VIN, None, "drv_a")
    assert await stores.productivity.driven_vehicles() == [VIN]


def precondition(due: int, reason: str = "meeting at 10:00") -> Precondition:
    return Precondition(
        id=f"pre_{due}", vin=VIN, meeting_id="cal_1:review", kind="climate_start",
        params={"target_temperature": 21.0}, due_at=due, reason=reason,
        created_at=1 * SECOND, updated_at=1 * SECOND,
    )  # fmt: skip


async def test_preconditioning_is_scheduled_moved_and_kept_once_sent(stores: Stores) -> None:
    store = stores.productivity
    first = await store.schedule(precondition(100 * SECOND))
    assert (first.status, first.due_at, first.params) == ("scheduled", 100 * SECOND,
                                                          {"target_temperature": 21.0})  # fmt: skip
    moved = await store.schedule(precondition(90 * SECOND, "meeting moved to 09:50"))
    assert (moved.id, moved.due_at, moved.reason) == (first.id, 90 * SECOND,
                                                       "meeting moved to 09:50")  # fmt: skip
    await store.set_precondition_status(first.id, "sent", "cmd_1", 95 * SECOND)
    kept = await store.schedule(precondition(80 * SECOND))
    assert (kept.status, kept.command_id, kept.due_at) == ("sent", "cmd_1", 90 * SECOND)
    await store.set_precondition_status(first.id, "cancelled", None, 96 * SECOND)
    found = await store.preconditions(VIN, "volta", ("cancelled",))
    assert [(p.status, p.command_id, p.updated_at) for p in found] == [
        ("cancelled", "cmd_1", 96 * SECOND)
    ]
    assert await store.preconditions(VIN, None, ("scheduled",)) == []
    assert len(await store.preconditions(VIN, None, None)) == 1
    await stores.registry.create_brand("strada", "Strada")
    with pytest.raises(NotFoundError):
        await store.preconditions(VIN, "strada", None)
