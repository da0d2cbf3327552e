"""A participant kicked by an operator is out for good: its token no longer joins (a
dropped link, by contrast, rejoins with the same token), on the real Janus."""

from __future__ import annotations

import asyncio

import pytest

from carcloud_agent.call import CallError, ToneSource, join_room, use_host_addresses
from carcloud_agent.protocol.calls import RoomJoin
from tests.calls.aio import api
from tests.platform import Platform


@pytest.mark.slow
async def test_a_kicked_participant_cannot_rejoin_with_its_token(
    media_platform: Platform, media_address: str
) -> None:
    use_host_addresses([media_address])
    await asyncio.to_thread(media_platform.ensure_brand, "kickco")
    room = await api(media_platform, "POST", "/rooms", {"name": "Ops", "brand": "kickco"})
    invites = (
        await api(media_platform, "POST", f"/rooms/{room['id']}/invite", {"people": ["Eve", "Dan"]})
    )["invites"]
    signalling = f"{media_platform.url}/api/v1/rooms/{room['id']}/join"
    eve_join = RoomJoin(room["id"], invites[0]["token"], signalling)
    dan_join = RoomJoin(room["id"], invites[1]["token"], signalling)

    eve = await join_room(eve_join, ToneSource(440.0))
    dan = await join_room(dan_join, ToneSource(700.0))
    try:
        # Dan's link drops: the same token brings him back.
        await dan.close(leave=False)
        await api(media_platform, "POST", f"/rooms/{room['id']}/leave", {"token": dan_join.token})
        dan = await join_room(dan_join, ToneSource(700.0))

        # Eve is kicked: she is gone from the room and her token is refused from now on.
        view = await api(media_platform, "GET", f"/rooms/{room['id']}")
        eve_id = next(p["id"] for p in view["participants"] if p["display"] == "Eve")
        kicked = await api(
            media_platform, "POST", f"/rooms/{room['id']}/participants/{eve_id}/kick"
        )
        assert kicked == {"participant_id": eve_id, "kicked": True}
        view = await api(media_platform, "GET", f"/rooms/{room['id']}")
        assert [p["display"] for p in view["participants"]] == ["Dan"]
        await eve.close(leave=False)
        with pytest.raises(CallError, match="403.*removed from this room by an operator"):
            again = await join_room(eve_join, ToneSource(440.0))
            await again.close()
        view = await api(media_platform, "GET", f"/rooms/{room['id']}")
        assert [p["display"] for p in view["participants"]] == ["Dan"]
    finally:
        await eve.close()
        await dan.close()
