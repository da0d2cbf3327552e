"""Drivers, calendars and agendas through the running platform's API and CLI: brand keys see
only their brand's drivers, a vehicle's agenda is its current driver's, bad sources get
a 422 naming what is wrong, and secrets never come back."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from carcloud.cli.main import main
from carcloud.errors import NotFoundError, ValidationError
from tests.calendars.feedserver import FeedServer
from tests.calendars.radicale import Radicale
from tests.conftest import start_platform
from tests.platform import Platform

MEETING = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:review
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Berlin:20261207T100000
DTEND;TZID=Europe/Berlin:20261207T110000
SUMMARY:Design review
LOCATION:work
DESCRIPTION:Join with Google Meet: https://meet.google.com/abc-defg-hij\\nOr dial: (DE) +49 30
 300195061 PIN: 123 456 789#
END:VEVENT
END:VCALENDAR
"""
WEEK = {"from": "2026-12-07T00:00:00Z", "to": "2026-12-14T00:00:00Z"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform that may fetch calendars from this machine (test servers on 127.0.0.1)."""
    os.environ["CARCLOUD_CALENDAR_ALLOW_PRIVATE"] = "1"
    try:
        running = start_platform(tmp_path_factory.mktemp("carcloud"))
    finally:
        del os.environ["CARCLOUD_CALENDAR_ALLOW_PRIVATE"]
    yield running
    running.stop()


@pytest.fixture(scope="module")
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        server.serve(MEETING)
        yield server


def driver_body(name: str, brand: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "name": name,
        "timezone": "Europe/Berlin",
        "home": {"lat": 52.52, "lon": 13.405},
        "work": {"lat": 52.5076, "lon": 13.3904, "address": "Friedrichstr. 43"},
        "preferences": {"reminder_lead_min": 15, "buffer_min": 10, "precondition": True},
    }
    return body | ({"brand": brand} if brand else {})


def test_brand_keys_see_only_their_drivers(platform: Platform) -> None:
    ours = platform.register(brand="calalpha")
    theirs = platform.register(brand="calbeta")
    with platform.api() as api:
        key = api.post("/api-keys", {"name": "alpha app", "brand": "calalpha"})["key"]
        other = api.post("/drivers", driver_body("Bo", "calbeta"))
    with platform.api(key) as scoped:
        mine = scoped.post("/drivers", driver_body("Ada"))
        assert mine["brand"] == "calalpha" and mine["work"]["address"] == "Friedrichstr. 43"
        assert [d["id"] for d in scoped.get("/drivers")["drivers"]] == [mine["id"]]
        for call in (
            lambda: scoped.get(f"/drivers/{other['id']}"),
            lambda: scoped.get(f"/drivers/{other['id']}/agenda"),
            lambda: scoped.get(f"/drivers/{other['id']}/calendar-accounts"),
            lambda: scoped.request("DELETE", f"/drivers/{other['id']}"),
            lambda: scoped.post("/drivers", driver_body("Eve", "calbeta")),
            lambda: scoped.request(
                "PUT", f"/vehicles/{ours.vin}/driver", json={"driver_id": other["id"]}
            ),
            lambda: scoped.request(
                "PUT", f"/vehicles/{theirs.vin}/driver", json={"driver_id": mine["id"]}
            ),
        ):
            with pytest.raises(NotFoundError, match="404"):
                call()
    with platform.api() as api:
        assert {d["brand"] for d in api.get("/drivers")["drivers"]} >= {"calalpha", "calbeta"}
        with pytest.raises(ValidationError, match="brand: an operator key must name"):
            api.post("/drivers", driver_body("Nobody"))
        with pytest.raises(ValidationError, match="not an IANA time zone"):
            api.post("/drivers", driver_body("Zed", "calalpha") | {"timezone": "Mars/Base"})


def test_a_vehicles_agenda_is_its_drivers_with_join_details(
    platform: Platform, feed: FeedServer
) -> None:
    car = platform.register(brand="calgamma")
    with platform.api() as api:
        ada = api.post("/drivers", driver_body("Ada", "calgamma"))
        with pytest.raises(NotFoundError, match="has no current driver"):
            api.get(f"/vehicles/{car.vin}/agenda", **WEEK)
        account = api.post(
            f"/drivers/{ada['id']}/calendar-accounts", {"kind": "ics", "url": feed.url}
        )
        assert account["sync"]["status"] == "ok" and account["sync"]["last_success_at"]
        assert "abc123" not in str(account) and "secret" not in account
        set_driver = api.request(
            "PUT", f"/vehicles/{car.vin}/driver", json={"driver_id": ada["id"]}
        )
        assert set_driver["driver"]["id"] == ada["id"]
        agenda = api.get(f"/vehicles/{car.vin}/agenda", **WEEK)
    assert agenda["vin"] == car.vin and agenda["timezone"] == "Europe/Berlin"
    [event] = agenda["events"]
    assert (event["title"], event["start_at"], event["start_local"]) == (
        "Design review", "2026-12-07T09:00:00Z", "2026-12-07T10:00:00+01:00",
    )  # fmt: skip
    assert event["coordinates"] == {"lat": 52.5076, "lon": 13.3904, "source": "place:work"}
    assert event["join"]["provider"] == "google_meet"
    assert event["join"]["url"] == "https://meet.google.com/abc-defg-hij"
    assert event["join"]["dial_in"][0]["uri"] == "tel:+4930300195061,,123456789#"


def test_bad_sources_get_a_422_naming_the_problem(
    platform: Platform, feed: FeedServer, tmp_path: Path
) -> None:
    radicale = Radicale(tmp_path / "radicale", {"ada": "pw"})
    radicale.start()
    try:
        calendar = radicale.make_calendar("ada", "work")
        with platform.api() as api:
            ada = api.post("/drivers", driver_body("Ada", "calgamma"))
            path = f"/drivers/{ada['id']}/calendar-accounts"
            for body, message in (
                ({"kind": "ics", "url": "ftp://example.org/x.ics"}, "is not a valid ics URL"),
                ({"kind": "caldav", "url": f"{radicale.url}/ada/", "username": "ada",
                  "password": "pw"}, "is not a CalDAV calendar collection"),
                ({"kind": "caldav", "url": calendar, "username": "ada", "password": "bad"},
                 "refused the credentials"),
                ({"kind": "exchange", "url": calendar}, "kind must be one of ics, caldav"),
            ):  # fmt: skip
                with pytest.raises(ValidationError, match=message):
                    api.post(path, body)
            feed.content_type = "text/html"
            feed.serve("<!doctype html><title>login</title>")
            try:
                with pytest.raises(ValidationError, match="HTML or XML page"):
                    api.post(path, {"kind": "ics", "url": feed.url})
            finally:
                feed.serve(MEETING)
                feed.content_type = "text/calendar"
            created = api.post(
                path, {"kind": "caldav", "url": calendar, "username": "ada", "password": "pw"}
            )
            assert "pw" not in str({k: v for k, v in created.items() if k != "id"})
            assert [a["id"] for a in api.get(path)["accounts"]] == [created["id"]]
            api.request("DELETE", f"/calendar-accounts/{created['id']}")
            assert api.get(path)["accounts"] == []
    finally:
        radicale.stop()


def test_cli_drivers_and_agenda(
    platform: Platform, feed: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    car = platform.register(brand="calcli")
    common = ["--data-dir", str(platform.data_dir)]
    assert main(["drivers", "add", "Cleo", "--brand", "calcli", "--timezone",
                 "Europe/Berlin", "--work", "52.5076,13.3904", "--json", *common]) == 0  # fmt: skip
    cleo = json.loads(capsys.readouterr().out)
    assert main(["drivers", "add-calendar", cleo["id"], "--ics", feed.url, *common]) == 0
    assert main(["drivers", "assign", car.vin, cleo["id"], *common]) == 0
    capsys.readouterr()
    args = ["agenda", car.vin, "--from", WEEK["from"], "--to", WEEK["to"], *common]
    assert main(args) == 0
    assert f"agenda of {car.vin} (Europe/Berlin)" in capsys.readouterr().out
    assert main([*args, "--json"]) == 0
    [event] = json.loads(capsys.readouterr().out)["events"]
    assert (event["title"], event["start_local"]) == ("Design review", "2026-12-07T10:00:00+01:00")
    assert event["join"]["provider"] == "google_meet"
