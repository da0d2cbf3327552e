"""Pre-conditioning on a running platform: scheduled for the driver's meetings, sent as a
command with its reason when due, and cancelled (schedule and command) when the meeting
is deleted from the calendar; the car is told the meeting is cancelled."""

from __future__ import annotations

import json
import time
from typing import Any

from carcloud_agent.protocol.notifications import decode_notification
from tests.calendars.feedserver import FeedServer
from tests.platform import Platform
from tests.productivity.conftest import BATTERY_RANGE, BERLIN, SOC, Meeting, calendar, drive

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
        # By card id: a car that reconnects is sent the cards it should still show again
        # (QoS 1, at least once), and shows each id once (docs/protocol.md).
        cards = {card.id: card for card in (decode_notification(p) for t, p in
                 list(driven.car.received) if t.endswith("/notifications"))}  # fmt: skip
        return [card.title for card in cards.values() if card.title.startswith("Cancelled")]

    titles = platform.wait_for(cancelled_cards, what="the cancelled card on the car")
    assert len(titles) == 1 and titles[0].endswith("Standup"), titles


HAMBURG = (53.5511, 9.9937)  # ~255 km: 345 km by the straight-line router's detour factor
CABLE = (
    "Vehicle.Powertrain.TractionBattery.Charging.ChargingPort.AnyPosition.IsChargingCableConnected"
)
CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"


def test_a_plugged_in_car_whose_charge_limit_is_too_low_gets_it_raised_then_restored(
    platform: Platform, feed: FeedServer
) -> None:
    # An Aria (95 kWh, 16.5 kWh/100 km: 576 km full) plugged in at 10 % with its limit at
    # 60 % (345 km): the 345 km trip needs 429 km with the margin, so charging would stop short.
    meetings = [Meeting("hh", "Board meeting", 660, *HAMBURG)]
    signals = {SOC: 10.0, CABLE: True, CHARGING: False, LIMIT: 60}
    driven = drive(platform, feed, meetings, "pcgamma", signals, model="Aria")
    car, vin = driven.car, driven.vin
    car.serve()  # the car answers its commands: succeeded
    with platform.api() as api:
        profile = api.get(f"/drivers/{driven.driver_id}")
        api.request("PUT", f"/drivers/{driven.driver_id}", json={
            "name": profile["name"], "timezone": profile["timezone"],
            "preferences": {**profile["preferences"], "precondition": True},
        })  # fmt: skip

        def sent(kind: str) -> dict[str, Any] | None:
            found = api.get(f"/vehicles/{vin}/preconditioning")["preconditioning"]
            return next((p for p in found if p["kind"] == kind and p["status"] == "sent"), None)

        raised = platform.wait_for(lambda: sent("set_charge_limit"), what="the limit raise")
        started = platform.wait_for(lambda: sent("charge_start"), what="charge_start")
        command = api.get(f"/vehicles/{vin}/commands/{raised['command_id']}")
        assert command["params"]["percent"] == 75  # 429 km of 576: 74.3 %, next 5 %
        reason = command["params"]["reason"]
        assert reason.startswith("charge limit 60 % gives 345 km < 429 km needed for 344.6 km"), (
            reason
        )
        assert reason.endswith("to 'Board meeting': limit 60 % -> 75 %"), reason
        assert "restore_percent" not in command["params"]
        platform.wait_for(
            lambda: (
                api.get(f"/vehicles/{vin}/commands/{started['command_id']}")["status"]
                == "succeeded"
            ),
            what="charge_start to succeed",
        )

    def commands() -> list[tuple[str, dict[str, Any]]]:
        found = [json.loads(p) for t, p in list(car.received) if "/commands/" in t]
        return [(c["kind"], c["params"]) for c in found]

    # The raise reached the car before charge_start: charging goes on past 60 %.
    kinds = [kind for kind, _ in commands()]
    assert kinds.index("set_charge_limit") < kinds.index("charge_start"), kinds
    # The car now reports 75 % and charging: nothing more is sent for it.
    car.telemetry({LIMIT: 75, CHARGING: True, SOC: 12.0})
    time.sleep(2)
    assert [kind for kind, _ in commands()].count("set_charge_limit") == 1

    # The meeting is cancelled: the raise is cancelled and the limit goes back to 60 %.
    feed.serve(calendar([]))
    with platform.api() as api:
        api.post(f"/calendar-accounts/{driven.account_id}/sync", {})
        platform.wait_for(
            lambda: (
                (found := api.get(f"/vehicles/{vin}/preconditioning")["preconditioning"])
                and all(p["status"] == "cancelled" for p in found)
            ),
            what="the raise to be cancelled",
        )
    restore = platform.wait_for(
        lambda: [p for k, p in commands() if k == "set_charge_limit" and p["percent"] == 60],
        what="the limit to go back to 60 %",
    )
    assert restore[0]["reason"].startswith("carcloud: back to 60 %")
    assert [kind for kind, _ in commands()].count("set_charge_limit") == 2
