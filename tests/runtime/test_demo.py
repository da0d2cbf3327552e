"""`carcloud demo` end to end: platform, three brands driving, and the live page in Chromium."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from carcloud.client import ApiClient
from carcloud.runtime.launcher import free_port

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, str]]:
    data_dir = tmp_path / "demo"
    http_port = free_port()
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "carcloud.cli", "demo", "--data-dir", str(data_dir),
         "--http-port", str(http_port), "--mqtt-port", str(free_port()),
         "--nats-port", str(free_port()), "--vehicles", "15"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{http_port}"
        deadline = 60
        for _ in range(deadline * 10):
            if process.poll() is not None:
                raise AssertionError((tmp_path / "demo.log").read_text())
            if (data_dir / "operator.key").exists():
                try:
                    httpx.get(f"{url}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    pass
            subprocess.run(["sleep", "0.1"], check=True)
        else:
            raise AssertionError(
                f"the demo did not serve within {deadline} s:\n"
                + (tmp_path / "demo.log").read_text()
            )
        yield url, (data_dir / "operator.key").read_text().strip()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        log.close()
        output = (tmp_path / "demo.log").read_text()
        assert "carcloud demo stopped." in output


@pytest.mark.slow
def test_demo_shows_three_brands_live_in_a_browser(demo: tuple[str, str], tmp_path: Path) -> None:
    url, key = demo
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        "Debian's chromium is needed for browser tests: apt-get install chromium"
    )
    with ApiClient(url, key) as api:

        def brands_online(fleet: dict[str, Any]) -> set[str]:
            return {v["brand"] for v in fleet["vehicles"] if v["online"] and v["signals"]}

        # The fleet was warmed up: cars are on the road from the first seconds. Polled
        # until the cars that reported so far include one driving, since the first few
        # to report may all be parked.
        fleet: dict[str, Any] = {}
        for _ in range(300):
            fleet = api.get("/fleet")
            if len(brands_online(fleet)) == 3 and fleet["summary"]["driving"] >= 1:
                break
            subprocess.run(["sleep", "0.2"], check=True)
        assert len(brands_online(fleet)) == 3, "vehicles of all three brands did not come online"
        assert fleet["summary"]["driving"] >= 1, "no vehicle of the demo drives at the start"
        some = next(v["vin"] for v in fleet["vehicles"] if v["signals"])
        state = api.get(f"/vehicles/{some}/state")
        assert "Vehicle.CurrentLocation.Latitude" in state["signals"]

    with sync_playwright() as play:
        browser = play.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/#key={key}")
        page.wait_for_function("document.querySelectorAll('#fleet tbody tr').length >= 15")
        page.wait_for_function("document.querySelectorAll('.map canvas').length === 3")
        rows = page.locator("#fleet tbody tr").all_inner_texts()
        brands = {line.split("\t")[1].strip() for line in rows}
        assert brands == {"volta", "nordwind", "kargo"}
        assert int(page.inner_text("#c-vehicles")) == 15
        assert int(page.inner_text("#c-online")) >= 3
        assert "live" in page.inner_text("#status")
        assert "#key=" not in page.url, "the key must leave the address bar"
        first = page.inner_text("#status")
        page.wait_for_function(f"document.querySelector('#status').innerText !== {first!r}")
        page.screenshot(path=str(tmp_path / "fleet.png"))
        browser.close()
