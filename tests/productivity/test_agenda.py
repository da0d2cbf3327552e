"""A vehicle's agenda is its current driver's, with leave-by: each upcoming meeting with a
place says when to leave from the car's live position, how long the drive is and by which
router, the buffer, and a charging stop when the battery does not cover it; the CLI's
`carcloud agenda VIN` shows the same."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from carcloud.cli.main import main
from tests.calendars.feedserver import FeedServer
from tests.platform import Platform
from tests.productivity.conftest import BERLIN, SOC, Meeting, calendar, drive

NEAR = (BERLIN[0] + 0.018, BERLIN[1])  # ~2 km north of the car
FAR = (BERLIN[0] + 0.18, BERLIN[1])  # ~20 km north


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_vehicle_agenda_has_leave_by_for_each_upcoming_meeting_with_a_place(
    platform: Platform, feed: FeedServer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    meetings = [
        Meeting("near", "Design review", 90, *NEAR),
        Meeting("far", "Customer visit", 150, *FAR),
        Meeting("past", "Breakfast", -120, *NEAR),
    ]
    # An Aria (95 kWh, 16.5 kWh/100 km) at 6 %: ~35 km, enough for 2 km, not for 27 km + margin.
    driven = drive(platform, feed, meetings, "agalpha", {SOC: 6.0}, model="Aria")
    # A meeting without a place (a call) next to the others.
    phone = (
        "BEGIN:VEVENT\nUID:call\nDTSTAMP:20261101T000000Z\n"
        f"DTSTART:{(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)):%Y%m%dT%H%M00Z}\n"
        "DURATION:PT30M\nSUMMARY:Phone call\n"
        "DESCRIPTION:https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0\n"
        "END:VEVENT\n"
    )
    feed.serve(calendar(meetings).replace("END:VCALENDAR", phone + "END:VCALENDAR"))
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with platform.api() as api:
        api.post(f"/calendar-accounts/{driven.account_id}/sync", {})
        agenda = api.get(f"/vehicles/{driven.vin}/agenda", **{"from": start})
    assert agenda["position"] == {"lat": BERLIN[0], "lon": BERLIN[1]}
    events = {event["title"]: event for event in agenda["events"]}
    assert set(events) == {"Breakfast", "Design review", "Phone call", "Customer visit"}
    assert events["Breakfast"]["leave_by"] is None  # already over
    assert events["Phone call"]["leave_by"] is None  # no place to drive to
    near, far = events["Design review"]["leave_by"], events["Customer visit"]["leave_by"]
    assert near["travel"]["source"] == "demo-network" and 1.8 < near["travel"]["distance_km"] < 5
    assert far["travel"]["source"] == "straight-line" and 20 < far["travel"]["distance_km"] < 35
    assert near["buffer_min"] == far["buffer_min"] == 5
    # leave-by = start - drive - charging stop - buffer
    drive_min = near["travel"]["minutes"] + near["buffer_min"]
    gap = at(events["Design review"]["start_at"]) - at(near["leave_by"])
    assert abs(gap - dt.timedelta(minutes=drive_min)) < dt.timedelta(seconds=40), (gap, near)
    assert near["charging_stop"] is None
    stop = far["charging_stop"]
    assert stop is not None and stop["minutes"] > 8 and stop["reason"].startswith("range 35 km")
    gap = at(events["Customer visit"]["start_at"]) - at(far["leave_by"])
    assert gap > dt.timedelta(minutes=far["travel"]["minutes"] + 5 + stop["minutes"] - 1)

    # The CLI: a table with leave-by in the driver's clock (Berlin), the drive and the stop.
    monkeypatch.setenv("COLUMNS", "300")
    common = ["--data-dir", str(platform.data_dir)]
    assert main(["agenda", driven.vin, "--from", start, *common]) == 0
    table = capsys.readouterr().out
    berlin = dt.timezone(dt.timedelta(hours=1))
    assert f"{at(near['leave_by']).astimezone(berlin):%H:%M}" in table
    assert f"{at(far['leave_by']).astimezone(berlin):%H:%M}" in table
    assert "(demo-network) + 5 min buffer" in table
    assert "range 35 km" in table
    assert main(["agenda", driven.vin, "--from", start, "--json", *common]) == 0
    listed = json.loads(capsys.readouterr().out)
    planned = [e["leave_by"] is not None for e in listed["events"]]
    assert planned == [False, True, False, True]
