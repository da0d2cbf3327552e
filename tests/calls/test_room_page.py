"""A person joins an audio room from carcloud's own page in headless Chromium (no CDN):
the PIN is asked, the browser's microphone (a fake device playing a 600 Hz tone) is
heard by an aiortc participant, the page shows who is in the room and talking, its
mute button mutes the person for everyone, a full room and a bad link are explained,
and leave empties the person's place."""

from __future__ import annotations

import asyncio
import math
import wave
from array import array
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from carcloud_agent.call import PcmSink, ToneSource, join_room, use_host_addresses
from carcloud_agent.protocol.calls import RoomJoin
from tests.calls.aio import api, wait_until
from tests.calls.tones import tone_levels
from tests.platform import Platform

CHROMIUM = "/usr/bin/chromium"
BROWSER_TONE = 600.0
CAR_TONE = 440.0
HEARD = 0.2
SILENT = 0.15
PIN = "2468"


def tone_wav(path: Path, frequency_hz: float, seconds: int = 5) -> Path:
    """A mono 48 kHz WAV of a sine tone: Chromium's fake microphone plays it in a loop."""
    rate = 48_000
    samples = array(
        "h",
        (
            int(0.4 * 32767 * math.sin(2 * math.pi * frequency_hz * i / rate))
            for i in range(rate * seconds)
        ),
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


async def inbound_audio(page: Page) -> dict[str, float]:
    """What the page's peer connection received: packets and audio energy (getStats)."""
    stats: dict[str, float] = await page.evaluate(
        """async () => {
            const peer = window.carcloudRoom.peer;
            if (!peer) return {packets: 0, energy: 0};
            let packets = 0, energy = 0;
            (await peer.getStats()).forEach((entry) => {
                if (entry.type === "inbound-rtp" && entry.kind === "audio") {
                    packets += entry.packetsReceived || 0;
                    energy += entry.totalAudioEnergy || 0;
                }
            });
            return {packets, energy};
        }"""
    )
    return stats


@pytest.mark.slow
async def test_a_person_joins_from_the_room_page_and_is_heard(
    media_platform: Platform, media_address: str, tmp_path: Path
) -> None:
    assert await asyncio.to_thread(Path(CHROMIUM).exists), (
        "Debian's chromium is needed: apt-get install chromium"
    )
    use_host_addresses([media_address])
    await asyncio.to_thread(media_platform.ensure_brand, "webco")
    room = await api(
        media_platform,
        "POST",
        "/rooms",
        {"name": "Road team", "brand": "webco", "pin": PIN, "max_participants": 2},
    )
    invites = (
        await api(
            media_platform,
            "POST",
            f"/rooms/{room['id']}/invite",
            {"people": ["Ann", "Bo", "Cy"]},
        )
    )["invites"]
    ann_link, bo_token, cy_link = invites[0]["link"], invites[1]["token"], invites[2]["link"]
    assert ann_link.startswith(media_platform.url)
    signalling = f"{media_platform.url}/api/v1/rooms/{room['id']}/join"
    bo = await join_room(
        RoomJoin(room["id"], bo_token, signalling), ToneSource(CAR_TONE), PcmSink(), pin=PIN
    )
    wav = await asyncio.to_thread(tone_wav, tmp_path / "microphone.wav", BROWSER_TONE)
    async with async_playwright() as play:
        browser = await play.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
                # No flag is needed for media on 127.0.0.2: Chromium (156) offers it as a
                # host candidate because it sits on the veth, not on lo, and with the
                # microphone granted it shows real addresses rather than mDNS names.
            ],
        )  # fmt: skip
        try:
            page = await browser.new_page()
            await page.goto(ann_link)
            await page.wait_for_selector("#lobby:not([hidden])")
            assert await page.inner_text("#room-name") == "Road team"
            assert await page.inner_text("#display") == "Ann"
            assert "#token=" not in page.url, "the token must leave the address bar"
            assert await page.is_visible("#pin-row")

            # A wrong PIN is explained, and the PIN is asked again.
            await page.fill("#pin", "0000")
            await page.click("#join")
            await page.wait_for_selector("#error:not([hidden])")
            assert "needs its PIN" in await page.inner_text("#error")
            assert await page.is_visible("#pin-row")

            await page.fill("#pin", PIN)
            await page.click("#join")
            await page.wait_for_selector("#call:not([hidden])")
            await page.wait_for_function("window.carcloudRoom.peer.connectionState === 'connected'")

            async def listed() -> Any:
                view = await api(media_platform, "GET", f"/rooms/{room['id']}")
                people = {p["display"]: p for p in view["participants"]}
                return people if "Ann" in people and people["Ann"]["connected"] else None

            people = await wait_until(listed, 15, "the browser listed as connected")
            assert people["Ann"]["kind"] == "person" and set(people) == {"Ann", "Bo"}

            # The aiortc participant hears the browser's microphone tone, and the browser
            # receives the room's audio.
            async def bo_hears_ann() -> Any:
                heard = tone_levels(bo.sink.last(1.0), [BROWSER_TONE, CAR_TONE])
                return heard if heard[BROWSER_TONE] > HEARD and heard[CAR_TONE] < SILENT else None

            await wait_until(bo_hears_ann, 15, "Bo hearing the browser's 600 Hz tone")

            async def browser_receives() -> Any:
                stats = await inbound_audio(page)
                return stats if stats["packets"] > 50 and stats["energy"] > 0 else None

            await wait_until(browser_receives, 15, "audio RTP with energy into the browser")

            # The page lists both, and shows Bo talking (his tone never stops).
            await page.wait_for_function(
                "document.querySelectorAll('#participants li').length === 2"
            )
            await page.wait_for_selector("#participants li.talking:has-text('Bo')", timeout=15_000)
            assert "(you)" in await page.inner_text("#participants li:has-text('Ann')")

            # Mute: the room shows Ann muted, and Bo no longer hears her tone.
            await page.click("#mute")
            await page.wait_for_selector("#participants li.muted:has-text('Ann')", timeout=10_000)
            assert await page.inner_text("#mute") == "Unmute"
            view = await api(media_platform, "GET", f"/rooms/{room['id']}")
            assert [p["muted"] for p in view["participants"] if p["display"] == "Ann"] == [True]

            async def ann_silent() -> bool:
                heard = tone_levels(bo.sink.last(1.0), [BROWSER_TONE])
                return heard[BROWSER_TONE] < SILENT or max(bo.sink.last(1.0), default=0) < 300

            await wait_until(ann_silent, 10, "Ann's tone gone for Bo once she muted")

            # A third person finds the room full; a bad link is explained.
            other = await browser.new_page()
            await other.goto(cy_link)
            await other.wait_for_selector("#lobby:not([hidden])")
            await other.fill("#pin", PIN)
            await other.click("#join")
            await other.wait_for_selector("#error:not([hidden])")
            assert "The room is full" in await other.inner_text("#error")
            stranger = await browser.new_page()
            await stranger.goto(f"{media_platform.url}/rooms/{room['id']}#token=rjt_not-a-token")
            await stranger.wait_for_selector("#error:not([hidden])")
            assert "not valid" in await stranger.inner_text("#error")
            assert await stranger.is_hidden("#lobby")

            # Leave: the page says so, and the room lists only Bo.
            await page.click("#leave")
            await page.wait_for_selector("#ended:not([hidden])")
            assert "You left the room" in await page.inner_text("#ended")
            view = await api(media_platform, "GET", f"/rooms/{room['id']}")
            assert [p["display"] for p in view["participants"]] == ["Bo"]
        finally:
            await browser.close()
            await bo.close()
