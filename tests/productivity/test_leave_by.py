"""Leave-by and cards end to end on a running platform: the car's live position, its
driver's calendar, the productivity worker, the control role and a real MQTT car."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from carcloud_agent.protocol.notifications import decode_notification
from tests.calendars.feedserver import FeedServer
from tests.platform import Car, Platform
from tests.productivity.conftest import BATTERY_RANGE, BERLIN, SOC, Meeting, calendar, drive

# ~2 km and ~20 km north of the car.
NEAR = (BERLIN[0] + 0.018, BERLIN[1])
FAR = (BERLIN[0] + 0.18, BERLIN[1])


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def plans(platform: Platform, vin: str, count: int) -> list[dict[str, Any]]:
    with platform.api() as api:
        return platform.wait_for(  # type: ignore[no-any-return]
            lambda: (
                (found := api.get(f"/vehicles/{vin}/leave-by")["plans"])
                and len(found) == count
                and found
            ),
            what=f"{count} leave-by plans",
        )


def test_a_far_meeting_gives_an_earlier_leave_by_and_the_reminder_reaches_the_car(
    platform: Platform, feed: FeedServer
) -> None:
    meetings = [
        Meeting("soon", "Standup", 15, *NEAR, join="https://meet.google.com/abc-defg-hij"),
        Meeting("near", "Design review", 180, *NEAR),
        Meeting("far", "Customer visit", 180, *FAR),
    ]
    driven = drive(platform, feed, meetings, "lbalpha", {BATTERY_RANGE: 400_000})
    by_title = {plan["title"]: plan for plan in plans(platform, driven.vin, 3)}
    near, far = by_title["Design review"], by_title["Customer visit"]
    assert near["start_at"] == far["start_at"]
    assert 1.8 < near["travel"]["distance_km"] < 5 and near["travel"]["source"] == "demo-network"
    assert 20 < far["travel"]["distance_km"] < 35 and far["travel"]["source"] == "straight-line"
    # Same start, ten times the distance: leave much earlier.
    earlier = at(near["leave_by"]) - at(far["leave_by"])
    assert earlier > dt.timedelta(minutes=20), (near, far)
    assert near["buffer_min"] == 5 and near["charging_stop"] is None and near["late_by_min"] == 0

    # The standup's leave-by is within the 10 min reminder lead: the card is on the car.
    def reminders() -> list[Any]:
        cards = [decode_notification(payload) for topic, payload in list(driven.car.received)
                 if topic.endswith("/notifications")]  # fmt: skip
        return [card for card in cards if card.kind == "navigation"]

    reminder = platform.wait_for(reminders, what="a leave-by card on the car")[0]
    soon = by_title["Standup"]
    leave_by = at(soon["leave_by"]).astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert reminder.title == f"Leave by {leave_by:%H:%M} for Standup"
    actions = {action.id: action.uri for action in reminder.actions}
    assert actions["navigate"] == f"geo:{NEAR[0]:.6f},{NEAR[1]:.6f}"
    assert actions["join"] == "https://meet.google.com/abc-defg-hij"
    with platform.api() as api:
        listed = api.get(f"/vehicles/{driven.vin}/notifications")["notifications"]
        purposes = sorted(card["purpose"] for card in listed)
        assert purposes == ["leave_by", "next_meeting"], listed
        # Several more refreshes later: each card was sent once.
        platform.wait_for(lambda: len(driven.car.received) >= 2, what="the next-meeting card")
        time.sleep(2)
        again = api.get(f"/vehicles/{driven.vin}/notifications")["notifications"]
        assert [c["id"] for c in again] == [c["id"] for c in listed]
    received = [json.loads(p)["id"] for t, p in driven.car.received if t.endswith("/notifications")]
    # The same cards (a resync after the car's connect may repeat one: it has the same id).
    assert set(received) == {c["id"] for c in listed}


def test_a_car_with_too_little_range_gets_a_charging_stop(
    platform: Platform, feed: FeedServer
) -> None:
    # An Aria (95 kWh, 16.5 kWh/100 km) at 5 %: about 29 km, short of a 27 km trip + margin.
    meetings = [Meeting("far", "Customer visit", 180, *FAR)]
    driven = drive(platform, feed, meetings, "lbbeta", {SOC: 5.0}, model="Aria",
                   preferences={"precondition": True})  # fmt: skip
    plan = plans(platform, driven.vin, 1)[0]
    stop = plan["charging_stop"]
    assert stop is not None and stop["minutes"] > 8 and stop["energy_kwh"] > 1, plan
    assert "range 29 km" in stop["reason"]
    plain = dt.timedelta(minutes=plan["travel"]["minutes"] + plan["buffer_min"])
    assert at(plan["start_at"]) - at(plan["leave_by"]) > plain + dt.timedelta(minutes=8)
    # Pre-conditioning charges it now, parked, rather than on the way.
    with platform.api() as api:
        charge = platform.wait_for(
            lambda: [p for p in api.get(f"/vehicles/{driven.vin}/preconditioning")[
                "preconditioning"] if p["kind"] == "charge_start" and p["status"] == "sent"],
            what="charge_start sent",
        )[0]  # fmt: skip
        command = api.get(f"/vehicles/{driven.vin}/commands/{charge['command_id']}")
    assert command["kind"] == "charge_start"
    assert command["params"]["reason"].startswith("range 29 km < ")
    assert command["params"]["reason"].endswith("to 'Customer visit'")
    # The same car full: no stop.
    driven.car.telemetry({SOC: 90.0})
    platform.wait_for(lambda: plans(platform, driven.vin, 1)[0]["charging_stop"] is None,
                      what="the stop to go once the battery is full")  # fmt: skip


def test_the_car_hears_when_it_will_be_late_and_when_a_meeting_moves(
    platform: Platform, feed: FeedServer
) -> None:
    # 20 km away in 20 min: about 40 min of driving, late by ~20 min whenever it leaves.
    late = Meeting("late", "Board meeting", 20, *FAR)
    moving = Meeting("moving", "Lunch", 240, *NEAR)
    driven = drive(platform, feed, [late, moving], "lbgamma", {BATTERY_RANGE: 400_000})

    def titles() -> list[str]:
        """What the car shows: one card per id (a resync of the car, after a connect or
        an "online" status, sends the cards it should show again, with the same ids)."""
        shown: dict[str, str] = {}
        for topic, payload in list(driven.car.received):
            if topic.endswith("/notifications"):
                card = decode_notification(payload)
                shown.setdefault(card.id, card.title)
        return list(shown.values())

    found = platform.wait_for(
        lambda: [t for t in titles() if t.startswith("You will be late by")], what="late card"
    )
    minutes = int(found[0].split()[-2])
    assert 10 <= minutes <= 35, found
    assert not any(t.startswith("Changed") for t in titles())
    # The board meeting moves an hour later (same UID): a changed card, not cancelled +
    # new; no longer late. (Lunch never had a card: its moves are not news to the car.)
    feed.serve(calendar([Meeting("late", "Board meeting", 80, *FAR), moving]))
    with platform.api() as api:
        api.post(f"/calendar-accounts/{driven.account_id}/sync", {})
    changed = platform.wait_for(
        lambda: [t for t in titles() if t.startswith("Changed")], what="changed card"
    )
    assert changed == ["Changed: Board meeting"]
    assert not any(t.startswith("Cancelled") for t in titles())
    with platform.api() as api:
        purposes = [
            c["purpose"] for c in api.get(f"/vehicles/{driven.vin}/notifications")["notifications"]
        ]
    assert purposes.count("late") == 1 and purposes.count("changed") == 1, purposes


def test_a_car_that_was_away_gets_the_cards_it_should_show_when_back(
    platform: Platform, feed: FeedServer
) -> None:
    standup = Meeting("soon", "Standup", 15, *NEAR)
    driven = drive(platform, feed, [], "lbdelta", {BATTERY_RANGE: 400_000})
    driven.car.disconnect()
    feed.serve(calendar([standup]))
    with platform.api() as api:
        api.post(f"/calendar-accounts/{driven.account_id}/sync", {})
        sent = platform.wait_for(
            lambda: (
                len(found := api.get(f"/vehicles/{driven.vin}/notifications")["notifications"]) == 2
                and found
            ),
            what="the cards sent while the car is away",
        )
    assert driven.car.received == []
    # Back with a clean session: subscribed again, it says it is online, and the cards
    # sent meanwhile come with its open commands.
    back = Car(platform, driven.vin, driven.password, clean_session=True)
    assert not back.connect().is_failure
    assert back.subscribe(f"vehicles/{driven.vin}/notifications") == [1]
    back.publish(f"vehicles/{driven.vin}/status", json.dumps({"online": True}))

    def cards() -> set[str]:
        return {json.loads(p)["id"] for t, p in list(back.received)
                if t.endswith("/notifications")}  # fmt: skip

    got = platform.wait_for(lambda: len(cards()) == 2 and cards(), what="the cards on the car")
    assert got == {card["id"] for card in sent}
