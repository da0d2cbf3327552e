"""Audio rooms served by two API processes (`carcloud up` and a `carcloud worker api`) on
one store and one Janus: a participant who leaves through the process that did not
signal its join really leaves (the others stop hearing it, both processes list it
gone), and the participants of a process that stops are seen gone by the other."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from carcloud.client import ApiClient
from carcloud_agent.call import RoomCall, ToneSource, join_room, use_host_addresses
from carcloud_agent.protocol.calls import RoomJoin
from tests.calls.aio import wait_until
from tests.calls.tones import tone_levels
from tests.cluster.nodes import RoleProcess, start_all
from tests.platform import Platform

HEARD = 0.2
SILENT = 0.15
TONES = [440.0, 700.0, 1100.0]


def second_api(platform: Platform, log_dir: Path) -> RoleProcess:
    """A running `carcloud worker api` on the platform's NATS, SQLite file and Janus."""
    data = platform.data_dir
    runtime = json.loads((data / "runtime.json").read_text())
    port = re.search(r"port = (\d+)", (data / "janus" / "janus.transport.http.jcfg").read_text())
    assert port is not None
    settings = {
        "CARCLOUD_NATS_URL": runtime["nats_url"],
        "CARCLOUD_MQTT_URL": runtime["mqtt_url"],
        "CARCLOUD_SECRETS_FILE": str(data / "secrets.json"),
        "CARCLOUD_DATABASE_URL": f"sqlite:///{data / 'carcloud.db'}",
        "CARCLOUD_JANUS_URL": f"http://127.0.0.1:{port.group(1)}/janus",
        "CARCLOUD_JANUS_SECRET": (data / "janus" / "secret").read_text().strip(),
    }
    process = RoleProcess.worker(["api"], settings, log_dir)
    start_all([process])
    return process


def request(url: str, key: str, method: str, path: str, body: Any = None) -> Any:
    with ApiClient(url, key) as client:
        return client.get(path) if method == "GET" else client.request(method, path, json=body)


async def api(url: str, key: str, method: str, path: str, body: Any = None) -> Any:
    return await asyncio.to_thread(request, url, key, method, path, body)


async def open_room(platform: Platform, names: list[str]) -> tuple[dict[str, Any], list[str]]:
    await asyncio.to_thread(platform.ensure_brand, "twoapi")
    key = platform.operator_key
    room = await api(platform.url, key, "POST", "/rooms", {"name": "Ops", "brand": "twoapi"})
    invites = (await api(platform.url, key, "POST", f"/rooms/{room['id']}/invite",
                         {"people": names}))["invites"]  # fmt: skip
    return room, [invite["token"] for invite in invites]


async def displays(url: str, key: str, room_id: str) -> list[str]:
    view = await api(url, key, "GET", f"/rooms/{room_id}")
    return sorted(p["display"] for p in view["participants"])


@pytest.mark.slow
async def test_leaving_through_the_other_api_process_ends_the_call(
    media_platform: Platform, media_address: str, tmp_path: Path
) -> None:
    use_host_addresses([media_address])
    other = await asyncio.to_thread(second_api, media_platform, tmp_path)
    key = media_platform.operator_key
    room, tokens = await open_room(media_platform, ["Ann", "Ben", "Cem"])
    # All join through the first process: it holds their media handles.
    signalling = f"{media_platform.url}/api/v1/rooms/{room['id']}/join"
    calls: list[RoomCall] = []
    try:
        for token, tone in zip(tokens, TONES, strict=True):
            calls.append(await join_room(RoomJoin(room["id"], token, signalling), ToneSource(tone)))
        ann, ben, _cem = calls

        async def ann_hears(tones: list[float], not_tones: list[float]) -> bool:
            heard = tone_levels(ann.sink.last(1.0), TONES)
            return all(heard[f] > HEARD for f in tones) and all(
                heard[f] < SILENT for f in not_tones
            )

        await wait_until(lambda: ann_hears(TONES[1:], []), 15, "Ann hearing Ben and Cem")
        assert await displays(other.url, key, room["id"]) == ["Ann", "Ben", "Cem"]

        # Ben hangs up through the second process, which never saw his join.
        await api(other.url, key, "POST", f"/rooms/{room['id']}/leave", {"token": tokens[1]})
        await asyncio.wait_for(ben.ended.wait(), 10)  # the media server ended his connection
        await wait_until(lambda: ann_hears([TONES[2]], [TONES[1]]), 10, "Ben gone for Ann")
        for url in (media_platform.url, other.url):
            assert await displays(url, key, room["id"]) == ["Ann", "Cem"]
    finally:
        for call in calls:
            await call.close(leave=False)
        await asyncio.to_thread(other.stop)


@pytest.mark.slow
async def test_participants_of_a_stopped_api_process_are_seen_gone_by_the_other(
    media_platform: Platform, media_address: str, tmp_path: Path
) -> None:
    use_host_addresses([media_address])
    key = media_platform.operator_key
    other = await asyncio.to_thread(second_api, media_platform, tmp_path)
    room, (cem_token, dan_token) = await open_room(media_platform, ["Cem", "Dan"])
    calls: list[RoomCall] = []
    try:
        # Cem joins through the second process, Dan through the first.
        cem = await join_room(
            RoomJoin(room["id"], cem_token, f"{other.url}/api/v1/rooms/{room['id']}/join"),
            ToneSource(TONES[0]),
        )
        calls.append(cem)
        dan = await join_room(
            RoomJoin(room["id"], dan_token, f"{media_platform.url}/api/v1/rooms/{room['id']}/join"),
            ToneSource(TONES[1]),
        )
        calls.append(dan)

        async def dan_hears_cem() -> bool:
            return tone_levels(dan.sink.last(1.0), TONES)[TONES[0]] > HEARD

        await wait_until(dan_hears_cem, 15, "Dan hearing Cem")
        assert await displays(media_platform.url, key, room["id"]) == ["Cem", "Dan"]

        # The second process stops (a rolling restart): its media session goes, and Cem's
        # connection with it. The first process never held Cem's handle, yet sees it.
        await asyncio.to_thread(other.stop)
        await asyncio.wait_for(cem.ended.wait(), 15)

        async def only_dan() -> bool:
            return await displays(media_platform.url, key, room["id"]) == ["Dan"]

        await wait_until(only_dan, 10, "Cem listed gone by the first process")
        usage = await api(media_platform.url, key, "GET", "/room-usage/twoapi")
        assert usage["participants"] == 1
    finally:
        for call in calls:
            await call.close(leave=False)
        await asyncio.to_thread(other.stop)
