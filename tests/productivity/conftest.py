"""A platform whose productivity worker refreshes every half second, calendars served from
this machine, and helpers to give a car a driver with a calendar of meetings."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.calendars.feedserver import FeedServer
from tests.conftest import start_platform
from tests.platform import Car, Platform

BERLIN = (52.52, 13.405)  # inside the demo's Berlin road network
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
BATTERY_RANGE = "Vehicle.Powertrain.TractionBattery.Range"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform that may fetch calendars from 127.0.0.1 and refreshes plans quickly."""
    settings = {"CARCLOUD_CALENDAR_ALLOW_PRIVATE": "1", "CARCLOUD_PRODUCTIVITY_INTERVAL_S": "0.5"}
    os.environ.update(settings)
    try:
        running = start_platform(tmp_path_factory.mktemp("carcloud"))
    finally:
        for name in settings:
            del os.environ[name]
    yield running
    running.stop()


@dataclass(frozen=True)
class Meeting:
    uid: str
    title: str
    in_min: float
    lat: float
    lon: float
    length_min: int = 60
    join: str | None = None

    def vevent(self, now: dt.datetime) -> str:
        start = now + dt.timedelta(minutes=self.in_min)
        end = start + dt.timedelta(minutes=self.length_min)
        stamp = "%Y%m%dT%H%M%SZ"
        lines = [
            "BEGIN:VEVENT", f"UID:{self.uid}", "DTSTAMP:20261101T000000Z",
            f"DTSTART:{start.strftime(stamp)}", f"DTEND:{end.strftime(stamp)}",
            f"SUMMARY:{self.title}", f"LOCATION:{self.title} office",
            f"GEO:{self.lat};{self.lon}",
        ]  # fmt: skip
        if self.join:
            lines.append(f"DESCRIPTION:Join: {self.join}")
        return "\n".join([*lines, "END:VEVENT"])


def calendar(meetings: list[Meeting], now: dt.datetime | None = None) -> str:
    """An iCalendar feed of `meetings`, timed from `now` (default: this minute)."""
    at = (now or dt.datetime.now(dt.UTC)).replace(second=0, microsecond=0)
    body = "\n".join(m.vevent(at) for m in meetings)
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{body}\nEND:VCALENDAR\n"


@dataclass
class Driven:
    """A car with a driver whose calendar is `feed`."""

    car: Car
    vin: str
    password: str
    driver_id: str
    account_id: str
    feed: FeedServer


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def drive(
    platform: Platform,
    feed: FeedServer,
    meetings: list[Meeting],
    brand: str,
    signals: dict[str, object],
    model: str = "T1",
    preferences: dict[str, object] | None = None,
) -> Driven:
    """Register a car, connect it (subscribed to its cards), send its state, give it a
    driver with a calendar of `meetings`."""
    feed.serve(calendar(meetings))
    credentials = platform.register(brand=brand, model=model)
    car = Car(platform, credentials.vin, credentials.password, clean_session=True)
    assert not car.connect().is_failure
    assert car.subscribe(f"vehicles/{credentials.vin}/notifications") == [1]
    car.telemetry({"Vehicle.CurrentLocation.Latitude": BERLIN[0],
                   "Vehicle.CurrentLocation.Longitude": BERLIN[1], **signals})  # fmt: skip
    with platform.api() as api:
        platform.wait_for(
            lambda: (
                "Vehicle.CurrentLocation.Latitude"
                in api.get(f"/vehicles/{credentials.vin}/state")["signals"]
            ),
            what="the car's position to be stored",
        )
        driver = api.post("/drivers", {
            "name": "Ada", "brand": brand, "timezone": "Europe/Berlin",
            "preferences": {"reminder_lead_min": 10, "buffer_min": 5, **(preferences or {})},
        })  # fmt: skip
        account = api.post(
            f"/drivers/{driver['id']}/calendar-accounts", {"kind": "ics", "url": feed.url}
        )
        assert account["sync"]["status"] == "ok", account
        api.request("PUT", f"/vehicles/{credentials.vin}/driver", json={"driver_id": driver["id"]})
    return Driven(car, credentials.vin, credentials.password, driver["id"], account["id"], feed)
