"""The head-unit page in headless Chromium: a car's screen shows its next meeting, the
leave-by countdown, Navigate and Join, and the leave-by card once it was sent."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.calendars.feedserver import FeedServer
from tests.platform import Platform
from tests.productivity.conftest import BATTERY_RANGE, BERLIN, Meeting, drive

CHROMIUM = "/usr/bin/chromium"
NEAR = (BERLIN[0] + 0.018, BERLIN[1])


def test_the_head_unit_page_shows_the_next_meeting_and_its_cards(
    platform: Platform, feed: FeedServer, tmp_path: Path
) -> None:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install chromium"
    join = "https://example.zoom.us/j/98765432100"
    meetings = [Meeting("soon", "Standup", 15, *NEAR, join=join)]
    driven = drive(platform, feed, meetings, "hualpha", {BATTERY_RANGE: 400_000})
    with sync_playwright() as play:
        browser = play.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 900, "height": 800})
        page.goto(f"{platform.url}/headunit/{driven.vin}#key={platform.operator_key}")
        page.wait_for_function("document.querySelector('#next-title').innerText === 'Standup'")
        # The leave-by card arrives on the screen with the next poll after it was sent.
        page.wait_for_function(
            "[...document.querySelectorAll('#cards li.navigation .title')]"
            ".some(e => e.innerText.startsWith('Leave by'))",
            timeout=15_000,
        )
        assert page.inner_text("#vin") == driven.vin
        assert "Standup office" in page.inner_text("#next-where")
        assert page.get_attribute("#join", "href") == join
        assert page.get_attribute("#navigate", "href") == f"geo:{NEAR[0]},{NEAR[1]}"
        assert "min drive" in page.inner_text("#leave-detail")
        assert page.is_hidden("#dial")  # the meeting has no dial-in number
        first = page.inner_text("#countdown")
        assert ":" in first, first
        page.wait_for_function(f"document.querySelector('#countdown').innerText !== {first!r}")
        assert "live" in page.inner_text("#status")
        assert "#key=" not in page.url, "the key must leave the address bar"
        page.screenshot(path=str(tmp_path / "headunit.png"))
        browser.close()
    # What the page showed is what the car got over MQTT.
    assert any(topic.endswith("/notifications") for topic, _ in driven.car.received)
