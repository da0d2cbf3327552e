"""The agent answers call_join itself, through a real platform: a car invited to a room
joins it with its call module and is heard there, its joined/left reports show in the
API, and the room plays on its speaker output; a Zoom meeting goes to the head unit, which
confirms, hangs up, or never answers."""

from __future__ import annotations

import asyncio
import json
import wave
from array import array
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from carcloud_agent.call import ToneSource, join_room, use_host_addresses
from carcloud_agent.config import AgentConfig
from carcloud_agent.protocol.calls import RoomJoin
from carcloud_agent.runtime import Agent
from tests.calls.aio import api, wait_until
from tests.calls.tones import tone_levels
from tests.platform import Platform

CAR_TONE = 440.0
DISPATCH_TONE = 700.0
HEARD = 0.2
ZOOM = "https://us02web.zoom.us/j/81234567890?pwd=abc123"
DIAL_IN = "tel:+4930123456,,81234567890#,,,,*123456#"


@asynccontextmanager
async def running_agent(
    platform: Platform, tmp_path: Path, confirm_s: float = 10.0
) -> AsyncIterator[Agent]:
    creds = await asyncio.to_thread(platform.register, "callfleet")
    config = AgentConfig(
        vin=creds.vin, secret=creds.password, port=platform.mqtt_port,
        buffer_path=tmp_path / "outbox.db", headunit_path=tmp_path / "headunit.jsonl",
        headunit_replies_path=tmp_path / "headunit-replies.jsonl", call_confirm_s=confirm_s,
        call_microphone=f"tone:{CAR_TONE:g}", call_speaker=f"wav:{tmp_path / 'speaker.wav'}",
        reconnect_min_s=0.2, reconnect_max_s=1.0,
        source={"kind": "simulator", "interval_s": 1.0},
    )  # fmt: skip
    agent = Agent(config)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.connected.wait(), 10)
        yield agent
    finally:
        stop.set()
        await task


async def call_state(platform: Platform, vin: str, call_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await api(platform, "GET", f"/vehicles/{vin}/calls/{call_id}")
    return found


def head_unit_says(agent: Agent, call_id: str, state: str, reason: str | None = None) -> None:
    """The head unit appends its reply, like the agent's own report."""
    line = {"type": "call", "call_id": call_id, "state": state, "reason": reason}
    with agent.config.headunit_replies_path.open("a") as replies:
        replies.write(json.dumps(line) + "\n")


@pytest.mark.slow
async def test_the_agent_joins_a_room_it_is_invited_to_and_leaves(
    media_platform: Platform, media_address: str, tmp_path: Path
) -> None:
    use_host_addresses([media_address])
    async with running_agent(media_platform, tmp_path) as agent:
        vin = agent.config.vin
        room = await api(media_platform, "POST", "/rooms", {"name": "Yard", "brand": "callfleet"})
        invites = (
            await api(
                media_platform,
                "POST",
                f"/rooms/{room['id']}/invite",
                {"people": ["Dispatch"], "vehicles": [vin]},
            )
        )["invites"]
        car_call = next(invite["call_id"] for invite in invites if invite["kind"] == "vehicle")
        signalling = f"{media_platform.url}/api/v1/rooms/{room['id']}/join"
        dispatch_token = next(i["token"] for i in invites if i["kind"] == "person")
        dispatch = await join_room(
            RoomJoin(room["id"], dispatch_token, signalling), ToneSource(DISPATCH_TONE)
        )
        try:

            async def joined() -> Any:
                call = await call_state(media_platform, vin, car_call)
                return call if call["state"] == "joined" else None

            await wait_until(joined, 15, "the car's joined report in the API")
            view = await api(media_platform, "GET", f"/rooms/{room['id']}")
            assert {(p["kind"], p["vin"], p["connected"]) for p in view["participants"]} == {
                ("vehicle", vin, True),
                ("person", None, True),
            }

            # The car's microphone (its configured tone) is heard by the dispatcher.
            async def dispatch_hears_car() -> bool:
                heard = tone_levels(dispatch.sink.last(1.0), [CAR_TONE])
                return heard[CAR_TONE] > HEARD

            await wait_until(dispatch_hears_car, 15, "the dispatcher hearing the car")

            # The car's speaker plays the dispatcher (the room leaves the car's own voice out).
            async def car_hears_dispatch() -> bool:
                sink = agent.calls.room_calls[car_call].sink
                heard = tone_levels(sink.last(1.0), [CAR_TONE, DISPATCH_TONE])
                return len(sink.samples) >= 2 * 48_000 and heard[DISPATCH_TONE] > HEARD

            await wait_until(car_hears_dispatch, 15, "two seconds of the dispatcher on the car")

            # The driver hangs up on the head unit: the car leaves the room and says so.
            head_unit_says(agent, car_call, "left")

            async def left() -> Any:
                call = await call_state(media_platform, vin, car_call)
                return call if call["state"] == "left" else None

            ended = await wait_until(left, 15, "the car's left report in the API")
            assert ended["ended_at"] is not None
            view = await api(media_platform, "GET", f"/rooms/{room['id']}")
            assert [p["kind"] for p in view["participants"]] == ["person"]

            async def hung_up() -> bool:
                return not agent.calls.room_calls

            await wait_until(hung_up, 10, "the car's call closed")

            # What the car played on its speaker output (here a WAV file): the dispatcher,
            # not its own microphone.
            with wave.open(str(tmp_path / "speaker.wav")) as played:
                assert (played.getframerate(), played.getsampwidth()) == (48_000, 2)
                channels = played.getnchannels()
                pcm = array("h", played.readframes(played.getnframes()))[::channels]
            assert len(pcm) > 48_000  # over a second of the call
            heard = tone_levels(pcm[-48_000:], [CAR_TONE, DISPATCH_TONE])
            assert heard[DISPATCH_TONE] > HEARD and heard[CAR_TONE] < 0.15, heard
        finally:
            await dispatch.close()


@pytest.mark.slow
async def test_a_meeting_goes_to_the_head_unit_which_confirms_or_not(
    media_platform: Platform, tmp_path: Path
) -> None:
    async with running_agent(media_platform, tmp_path, confirm_s=2.0) as agent:
        vin = agent.config.vin
        call = await api(
            media_platform,
            "POST",
            f"/vehicles/{vin}/calls",
            {"url": ZOOM, "tel": DIAL_IN, "title": "Design review"},
        )

        async def on_head_unit() -> Any:
            path = agent.config.headunit_path
            lines = path.read_text().splitlines() if path.exists() else []
            actions = [json.loads(line)["call"] for line in lines if '"call"' in line]
            return [a for a in actions if a["call_id"] == call["id"]]

        action = (await wait_until(on_head_unit, 10, "the join action on the head unit"))[0]
        assert (action["url"], action["tel"], action["title"], action["provider"]) == (
            ZOOM, DIAL_IN, "Design review", "zoom",
        )  # fmt: skip

        head_unit_says(agent, call["id"], "joined")

        async def state_is(call_id: str, state: str) -> Any:
            found = await call_state(media_platform, vin, call_id)
            return found if found["state"] == state else None

        await wait_until(lambda: state_is(call["id"], "joined"), 10, "joined in the API")
        head_unit_says(agent, call["id"], "left")
        await wait_until(lambda: state_is(call["id"], "left"), 10, "left in the API")

        # Nothing on the head unit answers the next one: it fails, with the reason.
        silent = await api(media_platform, "POST", f"/vehicles/{vin}/calls", {"tel": DIAL_IN})
        failed = await wait_until(lambda: state_is(silent["id"], "failed"), 10, "a failed call")
        assert failed["reason"] == "no answer from the head unit within 2 s"


@pytest.mark.slow
async def test_a_car_kicked_from_the_room_reports_that_it_left(
    media_platform: Platform, media_address: str, tmp_path: Path
) -> None:
    use_host_addresses([media_address])
    async with running_agent(media_platform, tmp_path) as agent:
        vin = agent.config.vin
        room = await api(media_platform, "POST", "/rooms", {"name": "Gate", "brand": "callfleet"})
        invites = (
            await api(media_platform, "POST", f"/rooms/{room['id']}/invite", {"vehicles": [vin]})
        )["invites"]
        car_call = invites[0]["call_id"]

        async def state_is(state: str) -> Any:
            found = await call_state(media_platform, vin, car_call)
            return found if found["state"] == state else None

        await wait_until(lambda: state_is("joined"), 15, "the car joined")
        view = await api(media_platform, "GET", f"/rooms/{room['id']}")
        car = view["participants"][0]
        await api(media_platform, "POST", f"/rooms/{room['id']}/participants/{car['id']}/kick")
        left = await wait_until(lambda: state_is("left"), 15, "the kicked car's left report")
        assert left["reason"] == "the room ended the call"
