"""Audio rooms on the real Janus: people join through carcloud's signalling with their
join tokens, hear each other (and not themselves), are muted by an operator, and the
room closes once it has been empty for its time."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from carcloud.errors import ConflictError
from carcloud_agent.call import (
    CallError,
    PcmSink,
    RoomCall,
    ToneSource,
    join_room,
    use_host_addresses,
)
from carcloud_agent.protocol.calls import CallReport, RoomJoin, encode_call_report, join_of_params
from tests.calls.aio import api, wait_until
from tests.calls.tones import tone_levels
from tests.platform import Car, Platform

TONES = [440.0, 700.0, 1100.0]
HEARD = 0.2  # a tone counts as heard above this fraction of the loudest
SILENT = 0.15  # Opus coding leaves a trace of a few per cent


def levels(call: RoomCall) -> dict[float, float]:
    return tone_levels(call.sink.last(1.0), TONES)


@pytest.mark.slow
async def test_three_people_hear_each_other_are_muted_and_the_room_closes(
    media_platform: Platform, media_address: str
) -> None:
    use_host_addresses([media_address])
    await asyncio.to_thread(media_platform.ensure_brand, "volta")
    room = await api(
        media_platform,
        "POST",
        "/rooms",
        {"name": "Dispatch", "brand": "volta", "max_participants": 5},
    )
    assert room["status"] == "open" and room["has_pin"] is False
    invites = (
        await api(
            media_platform, "POST", f"/rooms/{room['id']}/invite", {"people": ["Ann", "Ben", "Cem"]}
        )
    )["invites"]
    assert [invite["display"] for invite in invites] == ["Ann", "Ben", "Cem"]
    assert invites[0]["link"].endswith(f"/rooms/{room['id']}#token={invites[0]['token']}")
    signalling = f"{media_platform.url}/api/v1/rooms/{room['id']}/join"

    calls = []
    for invite, tone in zip(invites, TONES, strict=True):
        join = RoomJoin(room["id"], invite["token"], signalling)
        calls.append(await join_room(join, ToneSource(tone), PcmSink()))
    try:
        for call in calls:
            await asyncio.wait_for(call.connected.wait(), 10)

        async def everyone_listed() -> Any:
            view = await api(media_platform, "GET", f"/rooms/{room['id']}")
            people = view["participants"]
            return view if len(people) == 3 and all(p["connected"] for p in people) else None

        view = await wait_until(everyone_listed, 10, "three connected participants")
        assert sorted(p["display"] for p in view["participants"]) == ["Ann", "Ben", "Cem"]
        assert not any(p["muted"] for p in view["participants"])

        # Each hears the two others' tones and not its own (the mixer leaves it out).
        async def mixed() -> bool:
            for call, own in zip(calls, TONES, strict=True):
                heard = levels(call)
                others = [f for f in TONES if f != own]
                if not all(heard[f] > HEARD for f in others) or heard[own] > SILENT:
                    return False
            return True

        try:
            await wait_until(mixed, 10, "each participant hearing the two others only")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {[levels(call) for call in calls]}") from None

        async def talking() -> bool:
            view = await api(media_platform, "GET", f"/rooms/{room['id']}")
            return all(p["talking"] for p in view["participants"])

        await wait_until(talking, 10, "every participant shown as talking")

        # An operator mutes Ben: his tone goes for Ann and Cem, theirs stay.
        ben = next(p for p in view["participants"] if p["display"] == "Ben")
        await api(
            media_platform,
            "POST",
            f"/rooms/{room['id']}/participants/{ben['id']}/mute",
            {"muted": True},
        )

        async def ben_gone() -> bool:
            ann, cem = levels(calls[0]), levels(calls[2])
            return ann[TONES[1]] < SILENT and cem[TONES[1]] < SILENT and ann[TONES[2]] > HEARD

        await wait_until(ben_gone, 10, "Ben's tone disappearing for the others")
        view = await api(media_platform, "GET", f"/rooms/{room['id']}")
        assert [p["muted"] for p in view["participants"] if p["display"] == "Ben"] == [True]

        # A wrong token is refused; nobody joins without one.
        with pytest.raises(CallError, match="401.*unknown join token"):
            bad = RoomJoin(room["id"], "rjt_not-a-token", signalling)
            refused = await join_room(bad, ToneSource(300.0))
            await refused.close()
    finally:
        for call in calls:
            await call.close()

    view = await api(media_platform, "GET", f"/rooms/{room['id']}")
    assert view["participants"] == [] and view["empty_since"] is not None

    async def closed() -> bool:
        return (await api(media_platform, "GET", f"/rooms/{room['id']}"))["status"] == "closed"

    await wait_until(closed, 10, "the empty room closing after 2 s")


async def test_rooms_per_brand_are_limited(media_platform: Platform) -> None:
    await asyncio.to_thread(media_platform.ensure_brand, "limited")
    for index in range(3):
        await api(media_platform, "POST", "/rooms", {"name": f"R{index}", "brand": "limited"})
    with pytest.raises(ConflictError, match="CARCLOUD_MAX_ROOMS_PER_BRAND"):
        await api(media_platform, "POST", "/rooms", {"name": "one too many", "brand": "limited"})
    usage = await api(media_platform, "GET", "/room-usage/limited")
    assert usage == {"open_rooms": 3, "max_rooms": 3, "participants": 0, "max_participants": 200}


@pytest.mark.slow
async def test_a_car_joins_from_its_invite_and_hears_a_person(
    media_platform: Platform, media_address: str
) -> None:
    use_host_addresses([media_address])
    creds = await asyncio.to_thread(media_platform.register, "fleetco")
    car = Car(media_platform, creds.vin, creds.password)
    assert not (await asyncio.to_thread(car.connect)).is_failure
    await asyncio.to_thread(car.serve)
    room = await api(media_platform, "POST", "/rooms", {"name": "Yard", "brand": "fleetco"})
    invites = (
        await api(
            media_platform,
            "POST",
            f"/rooms/{room['id']}/invite",
            {"vehicles": [creds.vin], "people": ["Dispatcher"]},
        )
    )["invites"]
    assert [invite["kind"] for invite in invites] == ["vehicle", "person"]

    async def join_action() -> Any:
        for topic, payload in list(car.received):
            if "/commands/" in topic and not topic.endswith("/result"):
                body = json.loads(payload)
                if body["kind"] == "call_join":
                    return join_of_params(body["params"])
        return None

    action = await wait_until(join_action, 10, "the car's join action over MQTT")
    assert action.room is not None and action.room.id == room["id"] and action.url is None
    person = await join_room(
        RoomJoin(room["id"], invites[1]["token"], action.room.signalling), ToneSource(700.0)
    )
    in_car = await join_room(action.room, ToneSource(440.0))
    try:
        await asyncio.wait_for(in_car.connected.wait(), 10)
        await asyncio.to_thread(
            car.publish,
            f"vehicles/{creds.vin}/events",
            encode_call_report(CallReport(action.call_id, "joined")),
        )

        async def hears_dispatch() -> bool:
            heard = tone_levels(in_car.sink.last(1.0), [440.0, 700.0])
            return heard[700.0] > HEARD and heard[440.0] < SILENT

        await wait_until(hears_dispatch, 10, "the car hearing the dispatcher's tone")
        view = await api(media_platform, "GET", f"/rooms/{room['id']}")
        assert {(p["kind"], p["vin"]) for p in view["participants"]} == {
            ("vehicle", creds.vin),
            ("person", None),
        }

        async def joined() -> bool:
            calls = await api(media_platform, "GET", f"/vehicles/{creds.vin}/calls")
            return bool(calls["calls"][0]["state"] == "joined")

        await wait_until(joined, 10, "the call shown as joined")
    finally:
        await in_car.close()
        await person.close()
