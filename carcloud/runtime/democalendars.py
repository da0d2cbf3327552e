"""The demo's drivers and their calendars: a few simulated cars get a driver whose
calendar is an iCalendar feed the demo serves itself, so the cards appear at once.

- A driver per chosen car (battery-electric cars first, one brand after the other): home
  is the car's home in its simulated city, work an office of the same road network.
- The driver's meetings are at places of that road network (offices, shops, leisure),
  every `EVERY_MIN` minutes from `FIRST_IN_MIN` after the demo started, each with a Teams,
  Zoom or Google Meet link and a dial-in number with PIN. They are anchored to the start,
  so every fetch of the feed gives the same meetings (no spurious "changed" cards), and
  the feed always holds the next day's.
- The feed is served by the demo process on 127.0.0.1 under a random path; the calendar
  policy allows exactly that prefix (`CARCLOUD_CALENDAR_ALLOW_URLS`), not every private
  address.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from carcloud.client import ApiClient
from carcloud.sim.model import SimVehicle
from carcloud.sim.roads import Place, RoadNetwork

log = logging.getLogger(__name__)

DEMO_DRIVERS = 3
FIRST_IN_MIN = 25
EVERY_MIN = 90
LENGTH_MIN = 45
WINDOW_BEFORE = dt.timedelta(hours=3)
WINDOW_AFTER = dt.timedelta(hours=26)
CALENDAR_NAME = "Demo calendar"
ZONE = "Europe/Berlin"  # the simulator's cities are all in Germany
NAMES = ("Ada Brandt", "Jonas Keller", "Mia Novak", "Lena Wolf", "Omar Haddad", "Sven Berg")
TITLES = (
    "Design review", "Customer visit", "Supplier meeting", "Sprint planning", "Site survey",
    "Budget review", "Lunch with the team", "Workshop", "Interview",
)  # fmt: skip
MAX_REQUEST = 8_192


@dataclass(frozen=True, slots=True)
class DemoMeeting:
    """One meeting of a demo driver."""

    uid: str
    title: str
    start: dt.datetime
    place: str
    lat: float
    lon: float
    join: tuple[str, ...]  # DESCRIPTION lines: join link, dial-in, PIN
    conference: str | None = None


def _join(index: int, rng: random.Random) -> tuple[tuple[str, ...], str | None]:
    """Teams, Zoom and Google Meet in turn, each with a dial-in number and its PIN."""
    digits = "".join(rng.choice("0123456789") for _ in range(9))
    pin = f"{digits[:3]} {digits[3:6]} {digits[6:]}"
    kind = index % 3
    if kind == 0:
        link = (
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
            f"{rng.getrandbits(96):024x}%40thread.v2/0"
        )
        return (
            "Microsoft Teams meeting",
            f"Join on your computer or mobile app: {link}",
            "Or call in (audio only): +49 30 120 749 80",
            f"Phone Conference ID: {pin}#",
        ), None
    if kind == 1:
        meeting = f"8{digits}"
        return (
            f"Join Zoom Meeting: https://us02web.zoom.us/j/{meeting}",
            f"Meeting ID: {meeting[:3]} {meeting[3:7]} {meeting[7:]}",
            "Dial by your location: +49 69 7104 9922",
        ), None
    letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10))
    link = f"https://meet.google.com/{letters[:3]}-{letters[3:7]}-{letters[7:]}"
    return (
        f"Join with Google Meet: {link}",
        f"Join by phone: +49 40 8081 7730 PIN: {pin}#",
    ), link


def demo_meetings(
    vin: str, network: RoadNetwork, anchor: dt.datetime, now: dt.datetime
) -> list[DemoMeeting]:
    """The driver of `vin`'s meetings around `now` (the same for the same anchor)."""
    places = network.places_of("office", "shop", "leisure")
    first = anchor + dt.timedelta(minutes=FIRST_IN_MIN)
    step = dt.timedelta(minutes=EVERY_MIN)
    lowest = max(0, int((now - WINDOW_BEFORE - first) / step))
    meetings: list[DemoMeeting] = []
    index = lowest
    while (start := first + index * step) <= now + WINDOW_AFTER:
        rng = random.Random(f"carcloud.demo.meeting:{vin}:{anchor.isoformat()}:{index}")
        place: Place = rng.choice(places)
        join, conference = _join(index, rng)
        meetings.append(
            DemoMeeting(
                uid=f"demo-{vin}-{index}@carcloud",
                title=TITLES[(index + sum(map(ord, vin))) % len(TITLES)],
                start=start,
                place=f"{place.name}, {network.city.name}",
                lat=network.node_lat[place.node],
                lon=network.node_lon[place.node],
                join=join,
                conference=conference,
            )
        )
        index += 1
    return meetings


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def ics(meetings: Sequence[DemoMeeting], anchor: dt.datetime) -> str:
    """The meetings as an iCalendar feed."""
    stamp = "%Y%m%dT%H%M%SZ"
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//carcloud//demo//EN",
             "X-WR-CALNAME:Demo calendar"]  # fmt: skip
    for meeting in meetings:
        end = meeting.start + dt.timedelta(minutes=LENGTH_MIN)
        lines += [
            "BEGIN:VEVENT",
            f"UID:{meeting.uid}",
            f"DTSTAMP:{anchor.strftime(stamp)}",
            f"DTSTART:{meeting.start.strftime(stamp)}",
            f"DTEND:{end.strftime(stamp)}",
            f"SUMMARY:{_escape(meeting.title)}",
            f"LOCATION:{_escape(meeting.place)}",
            f"GEO:{meeting.lat:.6f};{meeting.lon:.6f}",
            f"DESCRIPTION:{_escape(chr(10).join(meeting.join))}",
        ]
        if meeting.conference is not None:
            lines.append(f"X-GOOGLE-CONFERENCE:{meeting.conference}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


class DemoFeed:
    """The demo's calendars over HTTP on 127.0.0.1: GET {prefix}{vin}.ics."""

    def __init__(self, anchor: dt.datetime | None = None, host: str = "127.0.0.1") -> None:
        self.anchor = (anchor or dt.datetime.now(dt.UTC)).replace(second=0, microsecond=0)
        self.host = host
        self.port = 0
        self.token = secrets.token_urlsafe(12)
        self.networks: dict[str, RoadNetwork] = {}
        self.requests = 0
        self._server: asyncio.Server | None = None

    @property
    def prefix(self) -> str:
        """Every demo calendar is under this URL (what the calendar policy allows)."""
        return f"http://{self.host}:{self.port}/{self.token}/"

    def url_for(self, vin: str) -> str:
        """The feed of the driver of `vin`."""
        return f"{self.prefix}{vin}.ics"

    def calendar(self, vin: str, now: dt.datetime | None = None) -> str | None:
        """The feed's text for `vin` now, None for a car without a demo calendar."""
        network = self.networks.get(vin)
        if network is None:
            return None
        at = now or dt.datetime.now(dt.UTC)
        return ics(demo_meetings(vin, network, self.anchor, at), self.anchor)

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            self.requests += 1
            status, body = "404 Not Found", b"not a demo calendar\n"
            wanted = f"/{self.token}/"
            if method in ("GET", "HEAD") and path.startswith(wanted) and path.endswith(".ics"):
                text = self.calendar(path[len(wanted) : -len(".ics")])
                if text is not None:
                    status, body = "200 OK", text.encode()
            header = (
                f"HTTP/1.1 {status}\r\nContent-Type: text/calendar; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(header.encode() + (body if method != "HEAD" else b""))
            await writer.drain()
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):  # fmt: skip
            pass
        finally:
            writer.close()


@dataclass(frozen=True, slots=True)
class DemoDriver:
    """A demo car with its driver and calendar."""

    vin: str
    brand: str
    driver_id: str
    account_id: str
    name: str


def chosen_cars(fleet: Sequence[SimVehicle], count: int = DEMO_DRIVERS) -> list[SimVehicle]:
    """Up to `count` cars, battery-electric first, taking the brands in turn."""
    ranked = sorted(fleet, key=lambda v: (v.spec.powertrain != "bev", fleet.index(v)))
    chosen: list[SimVehicle] = []
    brands: set[str] = set()
    for vehicle in ranked:  # one per brand first, then any
        if len(chosen) < count and vehicle.spec.brand not in brands:
            chosen.append(vehicle)
            brands.add(vehicle.spec.brand)
    for vehicle in ranked:
        if len(chosen) < count and vehicle not in chosen:
            chosen.append(vehicle)
    return chosen


def _place(network: RoadNetwork, place: Place) -> dict[str, Any]:
    return {"lat": network.node_lat[place.node], "lon": network.node_lon[place.node],
            "address": f"{place.name}, {network.city.name}"}  # fmt: skip


def give_drivers(api: ApiClient, feed: DemoFeed, cars: Sequence[SimVehicle]) -> list[DemoDriver]:
    """A driver with the demo calendar for each car, set as the car's current driver (a
    driver the car had from an earlier run keeps its profile and gets today's calendar)."""
    made: list[DemoDriver] = []
    for index, vehicle in enumerate(cars):
        network = vehicle.network
        feed.networks[vehicle.vin] = network
        rng = random.Random(f"carcloud.demo.driver:{vehicle.vin}")
        work = rng.choice(network.places_of("office"))
        name = NAMES[index % len(NAMES)]
        current = api.get(f"/vehicles/{vehicle.vin}/driver")["driver"]
        if current is None:
            current = api.post("/drivers", {
                "name": name, "brand": vehicle.spec.brand, "timezone": ZONE,
                "home": _place(network, vehicle.home), "work": _place(network, work),
                "preferences": {"reminder_lead_min": 10, "buffer_min": 5,
                                "precondition": True, "precondition_target_c": 21.0},
            })  # fmt: skip
            api.request("PUT", f"/vehicles/{vehicle.vin}/driver",
                        json={"driver_id": current["id"]})  # fmt: skip
        for account in api.get(f"/drivers/{current['id']}/calendar-accounts")["accounts"]:
            if account["name"] == CALENDAR_NAME:  # an earlier run's feed, gone with it
                api.request("DELETE", f"/calendar-accounts/{account['id']}")
        account = api.post(
            f"/drivers/{current['id']}/calendar-accounts",
            {"kind": "ics", "url": feed.url_for(vehicle.vin), "name": CALENDAR_NAME},
        )
        made.append(
            DemoDriver(
                vehicle.vin, vehicle.spec.brand, current["id"], account["id"], current["name"]
            )  # fmt: skip
        )
        log.info("demo: %s drives %s with a calendar of %s", current["name"], vehicle.vin,
                 feed.url_for(vehicle.vin))  # fmt: skip
    return made
