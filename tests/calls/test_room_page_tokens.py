"""The room page tells a person plainly what is wrong with their invite link, in headless
Chromium: an invite that has expired (before the page opened, or while it was open), a
link of another room, a mistyped token, a page opened without one. Invites live at
least a minute; the test makes one expire by moving its expiry into the past in the
platform's database, as the passing of time would."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from carcloud.timeutil import now_us
from carcloud_agent.call import ToneSource, join_room, use_host_addresses
from carcloud_agent.protocol.calls import RoomJoin
from tests.calls.aio import api
from tests.platform import Platform

CHROMIUM = "/usr/bin/chromium"


def expire(platform: Platform, invite_id: str) -> None:
    """The invite's time is up (and it was never used, so no rejoin grace applies)."""
    with sqlite3.connect(platform.data_dir / "carcloud.db") as db:
        changed = db.execute(
            "UPDATE room_invites SET expires_at = ? WHERE id = ?", (now_us() - 1, invite_id)
        ).rowcount
    assert changed == 1


async def error_of(page: Page) -> str:
    await page.wait_for_selector("#error:not([hidden])")
    return await page.inner_text("#error")


@pytest.mark.slow
async def test_the_room_page_explains_an_expired_or_wrong_invite(
    media_platform: Platform, media_address: str
) -> None:
    assert await asyncio.to_thread(Path(CHROMIUM).exists), (
        "Debian's chromium is needed: apt-get install chromium"
    )
    await asyncio.to_thread(media_platform.ensure_brand, "tokenco")
    room = await api(media_platform, "POST", "/rooms", {"name": "Night shift", "brand": "tokenco"})
    other = await api(media_platform, "POST", "/rooms", {"name": "Day shift", "brand": "tokenco"})
    ann, bo, dan = (
        await api(
            media_platform, "POST", f"/rooms/{room['id']}/invite", {"people": ["Ann", "Bo", "Dan"]}
        )
    )["invites"]
    (cy,) = (await api(media_platform, "POST", f"/rooms/{other['id']}/invite", {"people": ["Cy"]}))[
        "invites"
    ]
    await asyncio.to_thread(expire, media_platform, ann["id"])
    page_url = f"{media_platform.url}/rooms/{room['id']}"
    # Dan is in the room, so it stays open (it closes once empty for a while).
    use_host_addresses([media_address])
    signalling = f"{media_platform.url}/api/v1/rooms/{room['id']}/join"
    in_room = await join_room(RoomJoin(room["id"], dan["token"], signalling), ToneSource(440.0))

    async with async_playwright() as play:
        browser = await play.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            ],
        )  # fmt: skip
        try:
            # An expired invite: said so, with what to do; no lobby, no join button.
            page = await browser.new_page()
            await page.goto(ann["link"])
            message = await error_of(page)
            assert "This invite has expired" in message and "new link" in message
            assert await page.is_hidden("#lobby")
            assert "#token=" not in page.url, "the token must leave the address bar"

            # The link of another room, and a token cut short when copied: not valid here.
            for token in (cy["token"], ann["token"][:-4], bo["token"][:12]):
                page = await browser.new_page()
                await page.goto(f"{page_url}#token={token}")
                message = await error_of(page)
                assert "This invite link is not valid for this room" in message, token
                assert "expired" not in message
                assert await page.is_hidden("#lobby")

            # No token at all: the page asks for the link that was sent.
            page = await browser.new_page()
            await page.goto(page_url)
            assert "needs the invite link you were sent" in await error_of(page)

            # Bo's page opens the lobby; his invite runs out before he presses Join.
            page = await browser.new_page()
            await page.goto(bo["link"])
            await page.wait_for_selector("#lobby:not([hidden])")
            assert await page.inner_text("#room-name") == "Night shift"
            await asyncio.to_thread(expire, media_platform, bo["id"])
            await page.click("#join")
            assert "This invite has expired" in await error_of(page)
            view = await api(media_platform, "GET", f"/rooms/{room['id']}")
            assert [p["display"] for p in view["participants"]] == ["Dan"]
        finally:
            await browser.close()
            await in_room.close()
