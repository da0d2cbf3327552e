"""Domain events: written with each change, relayed to EVENTS once, read and followed by apps."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from carcloud.client import ApiClient
from carcloud.messaging.streams import EVENTS_STREAM
from tests.conftest import start_platform
from tests.platform import Car, Platform


def outbox(platform: Platform) -> list[tuple[int, str, str | None, int | None]]:
    """(id, type, brand, relayed_at) of every event in the platform's database."""
    with sqlite3.connect(platform.data_dir / "carcloud.db") as conn:
        return list(conn.execute("SELECT id, type, brand, relayed_at FROM events ORDER BY id"))


def stream_ids(platform: Platform) -> list[str]:
    """The Nats-Msg-Id of every message in the EVENTS stream, in stream order."""
    secrets = json.loads((platform.data_dir / "secrets.json").read_text())

    async def read() -> list[str]:
        nc = await nats.connect(
            f"nats://127.0.0.1:{platform.nats_port}",
            user="svc",
            password=secrets["passwords"]["svc"],
        )
        try:
            js = nc.jetstream()
            info = await js.stream_info(EVENTS_STREAM)
            ids = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(EVENTS_STREAM, seq)
                ids.append((msg.headers or {}).get("Nats-Msg-Id", ""))
            return ids
        finally:
            await nc.close()

    return asyncio.run(read())


def wait_relayed(platform: Platform) -> list[tuple[int, str, str | None, int | None]]:
    def done() -> list[Any] | None:
        rows = outbox(platform)
        return rows if rows and all(row[3] is not None for row in rows) else None

    return platform.wait_for(done, 20, "every event relayed")  # type: ignore[no-any-return]


def test_each_change_is_relayed_exactly_once_across_kill_9(tmp_path: Path) -> None:
    platform = start_platform(tmp_path / "data")
    try:
        platform.ensure_brand("volta")
        vin = platform.register("volta").vin
        stop = threading.Event()
        done: list[int] = []

        def change_desired() -> None:
            with platform.api() as api:
                for value in range(10_000):
                    if stop.is_set():
                        return
                    try:
                        api.request(
                            "PUT",
                            f"/vehicles/{vin}/twin/desired",
                            json={"properties": {"n": value}},
                        )
                    except Exception:
                        return
                    done.append(value)

        writer = threading.Thread(target=change_desired)
        writer.start()
        platform.wait_for(lambda: len(done) >= 60, 30, "60 desired changes")
        platform.stop(signal.SIGKILL)  # in the middle of commits and relays
        stop.set()
        writer.join(10)
        platform.start()
        rows = wait_relayed(platform)
        ids = stream_ids(platform)
        assert len(ids) == len(set(ids)), "an event is in the stream twice"
        assert ids == sorted(ids, key=lambda text: int(text.removeprefix("evt-")))
        assert set(ids) == {f"evt-{row[0]}" for row in rows}
        assert sum(1 for row in rows if row[1] == "twin.desired_changed") >= len(done)

        # A relay that published but died before recording it: the events go out again
        # after the restart, and the stream keeps one of each.
        platform.stop()
        with sqlite3.connect(platform.data_dir / "carcloud.db") as conn:
            conn.execute(
                "UPDATE events SET relayed_at = NULL WHERE id > (SELECT MAX(id) - 20 FROM events)"
            )
        platform.start()
        wait_relayed(platform)
        again = stream_ids(platform)
        assert len(again) == len(set(again)) == len(ids)
    finally:
        platform.stop()


@pytest.fixture(scope="module")
def two_brands(platform: Platform) -> Iterator[tuple[Platform, str, str]]:
    """The shared platform with brands `alpha` and `beta`, and a key for `alpha`."""
    platform.ensure_brand("alpha")
    platform.ensure_brand("beta")
    with platform.api() as api:
        key = api.post("/api-keys", {"name": "alpha app", "brand": "alpha"})["key"]
    yield platform, key, platform.operator_key


def read_sse(response: httpx.Response, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The next `count` events of an SSE response (id, event, data)."""
    found: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    result: list[dict[str, Any]] = []

    def reader() -> None:
        for line in response.iter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and "data" in current:
                found.append(dict(current))
                current.clear()
                if len(found) >= count:
                    result.extend(found)
                    return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    assert result, f"got {len(found)} of {count} events within {timeout}s: {found}"
    return result


def test_a_brand_key_follows_its_brands_events_only_and_resumes(
    two_brands: tuple[Platform, str, str],
) -> None:
    platform, alpha_key, operator_key = two_brands
    headers = {"Authorization": f"Bearer {alpha_key}"}
    url = f"{platform.url}/api/v1/events/stream?type=vehicle.registered"
    with httpx.stream("GET", url, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        platform.register("beta")  # another brand's: never seen
        first = platform.register("alpha").vin
        platform.register("beta")
        second = platform.register("alpha").vin
        events = read_sse(response, 2)
    assert [e["data"]["vin"] for e in events] == [first, second]
    assert {e["data"]["brand"] for e in events} == {"alpha"}
    assert events[0]["id"] < events[1]["id"]

    # While the app is away, more happens; it comes back with its last id.
    missed = [platform.register("alpha").vin for _ in range(3)]
    platform.register("beta")
    resume = {**headers, "Last-Event-ID": str(events[0]["id"])}
    with httpx.stream("GET", url, headers=resume, timeout=30) as response:
        again = read_sse(response, 4)
    assert [e["data"]["vin"] for e in again] == [second, *missed]

    # The page API gives the same, scoped the same way.
    with ApiClient(platform.url, alpha_key) as api:
        page = api.get("/events", after=events[0]["id"], type="vehicle")
    assert {e["brand"] for e in page["events"]} == {"alpha"}
    assert [e["vin"] for e in page["events"] if e["type"] == "vehicle.registered"] == [
        second,
        *missed,
    ]
    with ApiClient(platform.url, operator_key) as api:
        everything = api.get("/events", type="vehicle.registered", limit=1000)
    assert {"alpha", "beta"} <= {e["brand"] for e in everything["events"]}


def test_event_filters_are_checked(two_brands: tuple[Platform, str, str]) -> None:
    platform, alpha_key, _ = two_brands
    headers = {"Authorization": f"Bearer {alpha_key}"}
    answer = httpx.get(f"{platform.url}/api/v1/events?type=nonsense", headers=headers)
    assert answer.status_code == 422 and "unknown event type" in answer.json()["message"]
    answer = httpx.get(
        f"{platform.url}/api/v1/events/stream", headers={**headers, "Last-Event-ID": "x"}
    )
    assert answer.status_code == 422


def test_commands_and_twins_produce_typed_events(two_brands: tuple[Platform, str, str]) -> None:
    platform, _, operator_key = two_brands
    vin = platform.register("alpha").vin
    with ApiClient(platform.url, operator_key) as api:
        start = api.get("/events", vin=vin)["events"][-1]["id"]
        command = api.post(f"/vehicles/{vin}/commands", {"kind": "lock"})
        api.post(f"/vehicles/{vin}/commands/{command['id']}/cancel", {})
        api.request("PUT", f"/vehicles/{vin}/twin/desired", json={"properties": {"eco": True}})
        api.post(f"/vehicles/{vin}/revoke", {})
        page = api.get("/events", vin=vin, after=start)["events"]
    kinds = [(e["type"], e["data"].get("status")) for e in page]
    assert kinds == [
        ("command.status_changed", "queued"),
        ("command.status_changed", "cancelled"),
        ("twin.desired_changed", None),
        ("vehicle.revoked", None),
    ]
    assert page[0]["data"]["id"] == command["id"] and page[0]["brand"] == "alpha"
    assert page[2]["data"] == {"version": 1, "desired": {"eco": True}}


def test_malformed_telemetry_is_a_dead_letter_event(
    two_brands: tuple[Platform, str, str],
) -> None:
    platform, _, operator_key = two_brands
    creds = platform.register("alpha")
    car = Car(platform, creds.vin, creds.password)
    car.connect()
    car.publish(f"vehicles/{creds.vin}/telemetry", b"{not json")
    with ApiClient(platform.url, operator_key) as api:
        found = platform.wait_for(
            lambda: api.get("/events", type="dead_letter", vin=creds.vin)["events"],
            10,
            "a dead letter event",
        )
    assert found[0]["type"] == "dead_letter.recorded" and found[0]["brand"] == "alpha"
    assert "JSON" in found[0]["data"]["reason"] or "json" in found[0]["data"]["reason"]
