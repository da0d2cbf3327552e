"""Ingest's commit notices against a real nats-server and a real SQLite file: after each
commit the worker publishes one notice naming the vehicles it stored data of (from the
oldest to the newest vehicle time), never a VIN nobody registered; it acknowledges the
telemetry only once JetStream holds the notice, so when the notice cannot be published
the data is delivered again and notified then, and nothing derive needs is lost."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import nats.errors
from nats.js.client import JetStreamContext

from carcloud.catalog import default_catalog
from carcloud.ingest.notices import COMMITTED_SUBJECT, CommitNotice, decode_notice
from carcloud.ingest.worker import INGEST_CONSUMER, IngestWorker, consumer_config
from carcloud.messaging import topics
from carcloud.messaging.streams import (
    TELEMETRY_COMMITTED_STREAM,
    TELEMETRY_STREAM,
    ensure_consumer,
    ensure_streams,
    stream_configs,
)
from carcloud.storage import Stores
from carcloud.storage.sqlite import sqlite_stores
from carcloud.telematics.role import merged_times
from carcloud.timeutil import format_us
from tests.telematics.test_derive_worker import server

VIN = "WVWZZZ1JZXW000001"
OTHER = "WVWZZZ1JZXW000002"
STRANGER = "WVWZZZ1JZXW999999"  # registered by nobody
START = 1_790_000_000_000_000
SECOND = 1_000_000


async def send(js: JetStreamContext, vin: str, seq: int, seconds: list[int]) -> None:
    body = {
        "seq": seq,
        "samples": [
            {"ts": format_us(START + s * SECOND), "signals": {"Vehicle.Speed": 30.0}}
            for s in seconds
        ],
    }
    await js.publish(topics.nats_subject(vin, topics.TELEMETRY), json.dumps(body).encode())


async def notices(js: JetStreamContext, want: int, within_s: float = 20) -> list[CommitNotice]:
    """The first `want` notices on the stream (read without a durable consumer)."""
    sub = await js.subscribe(COMMITTED_SUBJECT, ordered_consumer=True)
    found: list[CommitNotice] = []
    deadline = time.monotonic() + within_s
    try:
        while len(found) < want:
            left = deadline - time.monotonic()
            assert left > 0, f"{len(found)} notices, not {want}: {found}"
            try:
                msg = await sub.next_msg(timeout=left)
            except nats.errors.TimeoutError:
                continue
            found.append(decode_notice(msg.data))
    finally:
        await sub.unsubscribe()
    return found


@asynccontextmanager
async def ingesting(tmp_path: Path) -> AsyncIterator[tuple[JetStreamContext, Stores]]:
    """A nats-server with the platform's streams, a migrated SQLite file with two
    registered cars, and one ingest worker."""
    embedded = server(tmp_path)
    await embedded.start()
    stores = sqlite_stores(tmp_path / "carcloud.db")
    await stores.open()
    nc = await nats.connect(f"nats://127.0.0.1:{embedded.ports.nats}")
    stop = asyncio.Event()
    running: asyncio.Task[None] | None = None
    try:
        await stores.registry.create_brand("volta", "Volta")
        for vin in (VIN, OTHER):
            await stores.registry.create_vehicle(vin, "volta", "E1", 2025, [], "scrypt$h")
        js = nc.jetstream()
        await ensure_streams(js)
        await ensure_consumer(js, TELEMETRY_STREAM, consumer_config())
        worker = IngestWorker(nc, stores.telemetry, default_catalog(), receipt_every_s=None)
        running = asyncio.create_task(worker.run(stop))
        yield js, stores
    finally:
        stop.set()
        if running is not None:
            await asyncio.wait_for(running, 10)
        await nc.close()
        await stores.close()
        await embedded.stop()


def test_a_commit_notice_names_each_stored_vehicle_from_its_oldest_to_its_newest_time(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with ingesting(tmp_path) as (js, stores):
            await send(js, VIN, 1, [5, 3, 4])
            await send(js, VIN, 2, [9])
            await send(js, OTHER, 1, [7])
            await send(js, STRANGER, 1, [1])
            expected = {
                VIN: (START + 3 * SECOND, START + 9 * SECOND),
                OTHER: (START + 7 * SECOND, START + 7 * SECOND),
            }
            # Ingest may take the four messages in one batch or several: merged, the
            # notices name the two registered cars, each over all of its samples.
            deadline = time.monotonic() + 20
            while (merged := merged_times(await every_notice(js))) != expected:
                assert time.monotonic() < deadline, merged
                await asyncio.sleep(0.1)
            # Published after the commit: the data a notice names is there to read.
            rows = await stores.telematics.history_rows(VIN, ("Vehicle.Speed",), START)
            assert [ts for ts, _ in rows] == [START + s * SECOND for s in (3, 4, 5, 9)]

    asyncio.run(scenario())


async def every_notice(js: JetStreamContext) -> list[CommitNotice]:
    """Every notice on the stream now."""
    stored = (await js.stream_info(TELEMETRY_COMMITTED_STREAM)).state.messages
    return await notices(js, stored) if stored else []


def test_telemetry_whose_notice_cannot_be_published_is_delivered_again_and_notified(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with ingesting(tmp_path) as (js, stores):
            await js.delete_stream(TELEMETRY_COMMITTED_STREAM)  # nowhere to publish
            await send(js, VIN, 1, [1, 2])
            await asyncio.sleep(3)
            rows = await stores.telematics.history_rows(VIN, ("Vehicle.Speed",), START)
            assert len(rows) == 2  # committed
            info = await js.consumer_info(TELEMETRY_STREAM, INGEST_CONSUMER)
            assert not info.ack_floor.stream_seq, "acknowledged without its notice"

            [config] = [c for c in stream_configs() if c.name == TELEMETRY_COMMITTED_STREAM]
            await js.add_stream(config)
            [notice] = await notices(js, 1)
            assert notice.vehicles == {VIN: (START + SECOND, START + 2 * SECOND)}
            deadline = time.monotonic() + 20
            while (await js.consumer_info(TELEMETRY_STREAM, INGEST_CONSUMER)).num_ack_pending:
                assert time.monotonic() < deadline, "never acknowledged"
                await asyncio.sleep(0.1)
            # Stored once: the redelivery was a duplicate.
            assert len(await stores.telematics.history_rows(VIN, ("Vehicle.Speed",), START)) == 2

    asyncio.run(scenario())
