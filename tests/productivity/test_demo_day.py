"""`carcloud demo` gives some of its cars a driver with a calendar it serves itself: within
a minute such a car's agenda has meetings with leave-by, the next-meeting card reached the
simulated car over MQTT, and the head-unit URL the demo prints shows the meeting and a
leave-by countdown. The demo's feed is allowed by its URL; other private URLs stay refused."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import sync_playwright

from carcloud.client import ApiClient
from carcloud.errors import ValidationError
from carcloud.outbound import TargetPolicy
from carcloud.runtime.launcher import free_port

HEADUNIT = re.compile(r"(http://\S+/headunit/([A-Z0-9]{17})#key=(\S+))")
CARD = re.compile(r"card on ([A-Z0-9]{17}): (.+)")
MINUTE = 60.0
CHROMIUM = "/usr/bin/chromium"


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(
        self, pattern: re.Pattern[str], timeout: float, what: str, count: int = 1
    ) -> list[re.Match[str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the demo ended:\n{self.output()}")
            found = list(pattern.finditer(self.output()))
            if len(found) >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(f"no {what} within {timeout:.0f} s:\n{self.output()}")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    log_path = tmp_path / "demo.log"
    log = log_path.open("wb")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}
    env.pop("CARCLOUD_CALENDAR_ALLOW_PRIVATE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "carcloud.cli", "demo", "--data-dir", str(tmp_path / "demo"),
         "--http-port", str(free_port()), "--mqtt-port", str(free_port()),
         "--nats-port", str(free_port()), "--vehicles", "6", "--offline-rate", "0"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        yield Demo(process, log_path)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        log.close()
        assert "carcloud demo stopped." in log_path.read_text()


def test_demo_cars_get_meetings_with_leave_by_and_cards_within_a_minute(demo: Demo) -> None:
    first = demo.wait_for(HEADUNIT, 240, "head-unit URL")  # start-up: slow on a loaded machine
    printed = time.monotonic()
    links = demo.wait_for(HEADUNIT, 10, "three head-unit URLs", count=3)
    assert len(first) <= len(links) == 3, demo.output()  # one car of each brand
    url, vin, key = links[0].groups()
    base = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    demo_vins = {match.group(2) for match in links}

    # The next-meeting card reaches the simulated cars (over MQTT) within a minute.
    cards = demo.wait_for(CARD, MINUTE, "card on a demo car")
    assert {match.group(1) for match in cards} <= demo_vins
    assert time.monotonic() - printed < MINUTE

    with ApiClient(base, key) as api:

        def planned() -> dict[str, object] | None:
            agenda = api.get(f"/vehicles/{vin}/agenda")
            with_leave_by = [e for e in agenda["events"] if e["leave_by"]]
            return agenda if with_leave_by else None

        agenda = None
        while agenda is None and time.monotonic() - printed < MINUTE:
            agenda = planned()
            time.sleep(0.5)
        assert agenda is not None, "no leave-by in a minute"
        events = agenda["events"]  # type: ignore[index]
        assert agenda["timezone"] == "Europe/Berlin" and len(events) >= 10  # type: ignore[index]
        first = next(e for e in events if e["leave_by"])  # type: ignore[attr-defined]
        assert first["coordinates"]["source"] == "geo"
        assert first["leave_by"]["travel"]["source"] == "demo-network"  # the cars' own roads
        assert first["leave_by"]["buffer_min"] == 5
        providers = {e["join"]["provider"] for e in events}  # type: ignore[attr-defined]
        assert providers == {"teams", "zoom", "google_meet"}
        assert all(e["join"]["dial_in"][0]["uri"].startswith("tel:+49") for e in events)  # type: ignore[attr-defined]

        # What the printed head-unit URL shows: the meeting and a leave-by countdown.
        assert httpx.get(url.split("#")[0]).status_code == 200
        screen = api.get(f"/vehicles/{vin}/headunit")
        assert screen["next_meeting"]["title"] == events[0]["title"]  # type: ignore[index]
        assert isinstance(screen["next_meeting"]["leave_in_s"], int)
        assert screen["next_meeting"]["join"]["url"].startswith("https://")
        sent = api.get(f"/vehicles/{vin}/notifications")["notifications"]
        assert "next_meeting" in {card["purpose"] for card in sent}

        # The demo's feed is allowed by its own URL, not every private address.
        driver_id = agenda["driver_id"]  # type: ignore[index]
        with pytest.raises(ValidationError, match="not a public address"):
            api.post(f"/drivers/{driver_id}/calendar-accounts",
                     {"kind": "ics", "url": f"http://127.0.0.1:{free_port()}/cal.ics"})  # fmt: skip

    # The printed URL in a browser: the car's screen with the meeting and the countdown.
    with sync_playwright() as play:
        browser = play.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 900, "height": 800})
        page.goto(url)
        title = screen["next_meeting"]["title"]
        page.wait_for_function(f"document.querySelector('#next-title').innerText === {title!r}")
        page.wait_for_function("document.querySelector('#countdown').innerText.includes(':')")
        assert page.get_attribute("#join", "href") == screen["next_meeting"]["join"]["url"]
        browser.close()


def test_an_allowed_prefix_allows_only_urls_under_it() -> None:
    policy = TargetPolicy(allowed=("http://127.0.0.1:8123/s3cret/",))
    assert policy.permits("http://127.0.0.1:8123/s3cret/WZV.ics")
    assert not policy.permits("http://127.0.0.1:8123/other/WZV.ics")
    assert not policy.permits("http://127.0.0.1:8123/s3cret-not/WZV.ics")
    assert not policy.permits("http://127.0.0.1:8124/s3cret/WZV.ics")
    assert not policy.permits("https://127.0.0.1:8123/s3cret/WZV.ics")
    assert not policy.permits("http://127.0.0.1:8123@10.0.0.1/s3cret/WZV.ics")
