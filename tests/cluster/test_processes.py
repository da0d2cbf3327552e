"""carcloud on an external NATS, with its API and ingest in more than one process.

`carcloud up --nats` runs every role against a nats-server configured by
`carcloud nats-config --cluster 1` (a single external server); a second API
process and a second ingest process run beside it on the same SQLite file, with
nothing but settings. Whichever API process answers, keys, command waits and event
streams behave the same; duplicates stay out across ingest processes. Once on
SQLite, once on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
import nats
import pytest

from carcloud.client import ApiClient
from carcloud.errors import AuthError, ForbiddenError
from carcloud.ingest.worker import consumer_config
from carcloud.messaging.streams import TELEMETRY_STREAM
from carcloud.runtime.datadir import load_platform_secrets
from carcloud.runtime.launcher import free_port
from tests.cluster.nodes import CLI, NatsCluster, RoleProcess, carcloud, start_all, wait_until
from tests.pg import create_database, drop_database
from tests.platform import Car, make_vin, utc_now

SPEED = "Vehicle.Speed"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """One external nats-server; `up --nats` (all roles), a second API, a second ingest,
    on one SQLite file or one PostgreSQL database."""
    root = tmp_path_factory.mktemp("processes")
    cluster = NatsCluster.configure(root, 1)
    assert cluster.env["CARCLOUD_STREAM_REPLICAS"] == "1"
    postgres = create_database() if request.param == "postgresql" else None
    database = postgres or f"sqlite:///{cluster.data_dir / 'carcloud.db'}"
    # Small pulls, so that a batch spreads over both ingest processes.
    settings = {**cluster.env, "CARCLOUD_INGEST_BATCH": "50", "CARCLOUD_DATABASE_URL": database}
    up_port = free_port()
    up = RoleProcess(
        [*CLI, "up", "--data-dir", str(cluster.data_dir), "--http-port", str(up_port)],
        {**os.environ, "PYTHONUNBUFFERED": "1", **settings},
        root / "up.log",
        up_port,
    )
    second_api = RoleProcess.worker(["api"], settings, root / "logs")
    second_ingest = RoleProcess.worker(["ingest"], settings, root / "logs")
    cluster.start()
    try:
        start_all([up])  # the first start makes the database and the operator key
        start_all([second_api, second_ingest])
        key = (cluster.data_dir / "operator.key").read_text().strip()
        with ApiClient(up.url, key) as one, ApiClient(second_api.url, key) as other:
            yield SimpleNamespace(
                cluster=cluster,
                database=database,
                one=one,
                other=other,
                other_url=second_api.url,
                key=key,
                settings=settings,
                root=root,
            )
    finally:
        for process in (second_ingest, second_api, up):
            process.stop()
        assert cluster.nodes[0].process is not None, "`up --nats` must not stop that NATS"
        cluster.stop()
        if postgres is not None:
            drop_database(postgres)


def register(api: ApiClient, brand: str = "volta") -> tuple[str, str]:
    if brand not in {b["slug"] for b in api.get("/brands")}:
        api.post("/brands", {"slug": brand, "name": brand.title()})
    vin = make_vin()
    body = {"vin": vin, "brand": brand, "model": "T1", "model_year": 2025}
    return vin, str(api.post("/vehicles", body)["mqtt_password"])


def serving_car(deployment: SimpleNamespace) -> Car:
    vin, password = register(deployment.one)
    node = SimpleNamespace(mqtt_port=deployment.cluster.nodes[0].mqtt_port)
    car = Car(node, vin, password)  # type: ignore[arg-type]
    assert not car.connect().is_failure
    car.serve()
    return car


def test_up_with_nats_uses_that_server_and_stores_what_cars_send(
    deployment: SimpleNamespace,
) -> None:
    car = serving_car(deployment)
    car.telemetry({SPEED: 42.0})
    wait_until(
        lambda: deployment.other.get(f"/vehicles/{car.vin}/state")["signals"],
        20,
        "the car's state, read through the other API process",
    )
    status = deployment.one.get("/status")
    assert status["mqtt_url"] == deployment.cluster.env["CARCLOUD_MQTT_URL"]


def test_a_command_made_through_one_api_is_awaited_through_the_other(
    deployment: SimpleNamespace,
) -> None:
    car = serving_car(deployment)
    slow = threading.Event()
    car.answer = lambda kind, params: (slow.wait(10), ("succeeded", None))[1]
    made = deployment.one.post(f"/vehicles/{car.vin}/commands", {"kind": "lock"})
    assert made["status"] == "queued"
    waited: dict[str, Any] = {}

    def wait_elsewhere() -> None:
        waited.update(
            deployment.other.get(f"/vehicles/{car.vin}/commands/{made['id']}", wait="20s")
        )

    waiter = threading.Thread(target=wait_elsewhere)
    waiter.start()
    slow.set()  # the car answers while the other process waits
    waiter.join(30)
    assert waited["status"] == "succeeded"
    assert [t["status"] for t in waited["transitions"]][-1] == "succeeded"


def test_an_event_stream_on_one_api_sees_what_the_other_caused(
    deployment: SimpleNamespace,
) -> None:
    car = serving_car(deployment)
    seen: list[dict[str, Any]] = []
    streaming = threading.Event()

    def listen() -> None:
        headers = {"Authorization": f"Bearer {deployment.key}"}
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=30)) as client,
            client.stream(
                "GET",
                f"{deployment.other_url}/api/v1/events/stream",
                params={"vin": car.vin, "type": "command"},
                headers=headers,
            ) as response,
        ):
            assert response.status_code == 200
            for line in response.iter_lines():
                streaming.set()
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if seen[-1]["data"]["status"] == "succeeded":
                        return

    listener = threading.Thread(target=listen)
    listener.start()
    assert streaming.wait(10), "the event stream did not start"
    command = deployment.one.request(
        "POST", f"/vehicles/{car.vin}/commands", params={"wait": "20s"}, json={"kind": "lock"}
    )
    assert command["status"] == "succeeded"
    listener.join(30)
    assert not listener.is_alive(), f"the stream saw only {seen}"
    assert {event["data"]["id"] for event in seen} == {command["id"]}
    assert [event["data"]["status"] for event in seen][-1] == "succeeded"


def test_a_key_made_through_one_api_works_on_the_other(deployment: SimpleNamespace) -> None:
    register(deployment.one, "strada")
    made = deployment.one.post("/api-keys", {"name": "partner", "brand": "strada"})
    with ApiClient(deployment.other_url, made["key"]) as partner:
        listed = partner.get("/vehicles")["vehicles"]
        assert listed and {vehicle["brand"] for vehicle in listed} == {"strada"}
        with pytest.raises(ForbiddenError):
            partner.get("/api-keys")
    with ApiClient(deployment.other_url, made["key"] + "x") as stranger, pytest.raises(AuthError):
        stranger.get("/vehicles")


# ---- dedupe across ingest processes ---------------------------------------------------


QUERIES = (
    "SELECT count(*), count(DISTINCT m.seq) FROM telemetry_messages m "
    "JOIN vehicles v ON v.id = m.vehicle_id WHERE v.vin = {}",
    "SELECT count(*) FROM telemetry t JOIN vehicles v ON v.id = t.vehicle_id WHERE v.vin = {}",
)


def stored(database: str, vin: str) -> tuple[int, int, int]:
    """(message rows, distinct seqs, history rows) of a vehicle."""
    if database.startswith("sqlite:///"):
        path = database.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            messages, distinct = conn.execute(QUERIES[0].format("?"), (vin,)).fetchone()
            (history,) = conn.execute(QUERIES[1].format("?"), (vin,)).fetchone()
        return int(messages), int(distinct), int(history)

    async def read() -> tuple[int, int, int]:
        conn = await asyncpg.connect(database)
        try:
            messages, distinct = await conn.fetchrow(QUERIES[0].format("$1"), vin)
            history = await conn.fetchval(QUERIES[1].format("$1"), vin)
        finally:
            await conn.close()
        return int(messages), int(distinct), int(history)

    return asyncio.run(read())


def test_a_batch_published_twice_is_stored_once_by_two_ingest_processes(
    deployment: SimpleNamespace,
) -> None:
    vin, _ = register(deployment.one)
    count = 2000
    batch = [
        json.dumps(
            {"seq": seq, "ts": utc_now(seq / 1000 - 3600), "signals": {SPEED: float(seq % 200)}}
        ).encode()
        for seq in range(1, count + 1)
    ]
    secrets = load_platform_secrets(Path(deployment.cluster.env["CARCLOUD_SECRETS_FILE"]))
    durable = consumer_config().durable_name
    assert durable is not None

    async def publish_twice() -> tuple[int, int]:
        nc = await nats.connect(
            deployment.cluster.env["CARCLOUD_NATS_URL"],
            user="svc",
            password=secrets.passwords["svc"],
        )
        try:
            js = nc.jetstream()
            waiting = 0
            for _ in range(100):  # idle loops keep a lingering pull request each
                info = await js.consumer_info(TELEMETRY_STREAM, durable)
                waiting = max(waiting, info.num_waiting or 0)
                if waiting >= 2:
                    break
                await asyncio.sleep(0.1)
            before = (await js.stream_info(TELEMETRY_STREAM)).state.last_seq
            for _ in range(2):
                for body in batch:
                    await nc.publish(f"vehicles.{vin}.telemetry", body)
                await nc.flush()
            # A flush answers once the server has read the messages, not once the stream
            # has stored them: until then the consumer shows nothing pending. Drained is
            # when ingest has acknowledged up to the last of them.
            last = before + 2 * count

            async def drained() -> bool:
                info = await js.consumer_info(TELEMETRY_STREAM, durable)
                floor = info.ack_floor.stream_seq if info.ack_floor else 0
                return (floor or 0) >= last and info.num_ack_pending == 0

            for _ in range(600):
                if await drained():
                    break
                await asyncio.sleep(0.1)
            else:
                info = await js.consumer_info(TELEMETRY_STREAM, durable)
                raise AssertionError(f"ingest did not acknowledge up to {last} in 60 s: {info}")
            delivered = (await js.consumer_info(TELEMETRY_STREAM, durable)).delivered
            return waiting, delivered.consumer_seq if delivered else 0
        finally:
            await nc.close()

    waiting, _ = asyncio.run(publish_twice())
    # Both processes pull from the one consumer (each keeps a pull request waiting).
    assert waiting >= 2, f"only {waiting} ingest loop(s) were waiting for telemetry"
    assert stored(deployment.database, vin) == (count, count, count)


def test_more_stream_replicas_than_servers_is_refused_with_the_reason(
    deployment: SimpleNamespace,
) -> None:
    result = carcloud(
        "worker", "ingest", "--data-dir", str(deployment.root / "r3"),
        env={**os.environ, **deployment.settings, "CARCLOUD_STREAM_REPLICAS": "3"},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "3 replicas" in result.stderr and "CARCLOUD_STREAM_REPLICAS" in result.stderr
