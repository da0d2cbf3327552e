"""Pre-conditioning on a running platform: scheduled for the driver's meetings, sent as a
command with its reason when due, and cancelled (schedule and command) when the meeting
is deleted from the calendar; the car is told the meeting is cancelled."""

from __future__ import annotations

from typing import Any

from carcloud_agent.protocol.notifications import decode_notification
from tests.calendars.feedserver import FeedServer
from tests.platform import Platform
from tests.productivity.conftest import BATTERY_RANGE, BERLIN, Meeting, calendar, drive

NEAR = (BERLIN[0] + 0.018, BERLIN[1])


def test_preconditioning_is_scheduled_sent_and_cancelled_with_the_meeting(
    platform: Platform, feed: FeedServer
) -> None:
    meetings = [Meeting("soon", "Standup", 15, *NEAR), Meeting("later", "Review", 240, *NEAR)]
    driven = drive(
        platform, feed, meetings, "pcalpha", {BATTERY_RANGE: 400_000},
        preferences={"precondition": True, "precondition_target_c": 22.5},
    )  # fmt: skip
    vin = driven.vin
    with platform.api() as api:

        def schedule() -> list[dict[str, Any]]:
            return api.get(f"/vehicles/{vin}/preconditioning")["preconditioning"]  # type: ignore[no-any-return]

        def by_status(*wanted: str) -> dict[str, dict[str, Any]] | None:
            found = {p["meeting_id"].split(":")[-1]: p for p in schedule()}
            ok = set(found) == {"soon", "later"} and all(
                p["status"] == status for p, status in zip(
                    (found.get("soon"), found.get("later")), wanted, strict=True) if p
            )  # fmt: skip
            return found if ok else None

        # The standup's leave-by is in ~5 min, the cabin needs 15: the command goes now.
        # The review's is hours away: it waits, scheduled 15 min before its leave-by.
        found = platform.wait_for(lambda: by_status("sent", "scheduled"), what="schedule")
        soon, later = found["soon"], found["later"]
        assert soon["kind"] == later["kind"] == "climate_start"
        assert later["params"] == {"target_temperature": 22.5} and later["command_id"] is None
        assert "22.5 °C by leave-by" in later["reason"] and "'Review'" in later["reason"]
        command = api.get(f"/vehicles/{vin}/commands/{soon['command_id']}")
        assert command["kind"] == "climate_start" and command["status"] == "queued"
        assert command["params"]["target_temperature"] == 22.5
        assert "'Standup'" in command["params"]["reason"]

        # Both meetings deleted: the schedule and the queued command are cancelled.
        feed.serve(calendar([]))
        api.post(f"/calendar-accounts/{driven.account_id}/sync", {})
        platform.wait_for(lambda: by_status("cancelled", "cancelled"), what="cancellation")
        command = api.get(f"/vehicles/{vin}/commands/{soon['command_id']}")
        assert command["status"] == "cancelled"
        assert "meeting is cancelled" in (command["reason"] or "")

    def cancelled_cards() -> list[str]:
        cards = [decode_notification(p) for t, p in list(driven.car.received)
                 if t.endswith("/notifications")]  # fmt: skip
        return [card.title for card in cards if card.title.startswith("Cancelled")]

    titles = platform.wait_for(cancelled_cards, what="the cancelled card on the car")
    assert len(titles) == 1 and titles[0].endswith("Standup"), titles
