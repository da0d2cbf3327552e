"""The embedded nats-server gets longer to start when it has more consumers to restore,
and carcloud's streams are set up again at each start on a disk with little room."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import nats
import pytest

from carcloud.messaging.natsserver import (
    BASE_STARTUP_S,
    UNRESERVED_ROOM,
    NatsServer,
    ServerPorts,
    file_store_limit,
    persisted_consumers,
    startup_limit_s,
    stored_bytes,
)
from carcloud.messaging.streams import ensure_streams, reserved_bytes
from carcloud.runtime.launcher import free_port

CONSUMERS = 40
MESSAGES = 100


def server(tmp_path: Path, max_file_store: int | None = None) -> NatsServer:
    """A nats-server with JetStream; `max_file_store` as if the disk had that much room."""
    ports = ServerPorts("127.0.0.1", free_port(), free_port())
    store = tmp_path / "store"
    config = tmp_path / "nats.conf"
    limit = f", max_file_store: {max_file_store}" if max_file_store is not None else ""
    config.write_text(
        f"server_name: limits\nlisten: 127.0.0.1:{ports.nats}\n"
        f'jetstream {{ store_dir: "{store}"{limit} }}\n'
        f"mqtt {{ host: 127.0.0.1, port: {ports.mqtt} }}\n"
    )
    return NatsServer(config, tmp_path / "nats.log", ports, store_dir=store)


def test_a_restart_counts_the_persisted_consumers_and_allows_for_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    embedded = server(tmp_path)

    async def scenario() -> tuple[int, int]:
        await embedded.start()
        nc = await nats.connect(f"nats://127.0.0.1:{embedded.ports.nats}")
        js = nc.jetstream()
        await js.add_stream(name="FLEET", subjects=["fleet.>"])
        for index in range(CONSUMERS):
            await js.pull_subscribe(f"fleet.{index}", durable=f"car{index}")
        for index in range(MESSAGES):
            await js.publish(f"fleet.{index % CONSUMERS}", b"x" * 1000)
        await nc.close()
        await embedded.stop()
        on_disk = persisted_consumers(tmp_path / "store")
        with caplog.at_level(logging.INFO, logger="carcloud.messaging.natsserver"):
            await embedded.start()
        nc = await nats.connect(f"nats://127.0.0.1:{embedded.ports.nats}")
        info = await nc.jetstream().stream_info("FLEET")
        await nc.close()
        await embedded.stop()
        return on_disk, info.state.consumer_count

    on_disk, restored = asyncio.run(scenario())
    assert on_disk == CONSUMERS
    assert restored == CONSUMERS
    assert stored_bytes(tmp_path / "store") >= MESSAGES * 1000
    allowed = f"restores {CONSUMERS} JetStream consumer(s) and 0.1 MB of messages; allowing it"
    assert any(allowed in record.getMessage() for record in caplog.records)
    assert persisted_consumers(tmp_path / "no-store") == 0
    assert stored_bytes(tmp_path / "no-store") == 0


def test_the_start_up_limit_covers_what_a_large_fleet_measured() -> None:
    # docs/benchmarks.md: 20,010 consumers (10,000 cars with two QoS 1 subscriptions
    # each) took nats-server 8.1 s to restore on a busy 2-core machine; a fixed 15 s
    # had refused such a start before.
    assert startup_limit_s(20_010) >= 3 * 8.1 + BASE_STARTUP_S
    assert startup_limit_s(0) == BASE_STARTUP_S
    # A TELEMETRY stream near its 8 GiB limit: 8.1 GB took 15.0 s to restore, quiet.
    assert startup_limit_s(0, 8_100_000_000) >= 3 * 15.0 + BASE_STARTUP_S


def test_the_streams_are_set_up_again_at_a_restart_with_just_their_room_on_disk(
    tmp_path: Path,
) -> None:
    # CI failed 16 restart tests with "cannot set up stream TELEMETRY: insufficient
    # storage resources available" on a disk with under 31 GB free: creating a stream
    # that exists was checked against the room left as if it were new (8 GiB twice).
    # What the embedded server is given on a disk with almost nothing free.
    embedded = server(tmp_path, max_file_store=reserved_bytes() + UNRESERVED_ROOM)

    async def start_and_set_up() -> list[str]:
        await embedded.start()
        try:
            nc = await nats.connect(f"nats://127.0.0.1:{embedded.ports.nats}")
            js = nc.jetstream()
            await ensure_streams(js)
            names = sorted([info.config.name or "" for info in await js.streams_info()])
            await nc.close()
            return names
        finally:
            await embedded.stop()

    first = asyncio.run(start_and_set_up())
    again = asyncio.run(start_and_set_up())
    assert (
        first
        == again
        == [
            "EVENTS",
            "TELEMETRY",
            "TELEMETRY_COMMITTED",
            "VEHICLE_EVENTS",
            "VEHICLE_REPORTS",
        ]
    )


def test_the_embedded_server_has_room_for_its_streams_on_any_disk(tmp_path: Path) -> None:
    # nats-server's own default is 75 % of the free disk: under about 20 GB free it
    # refused to create the streams (15.25 GiB set aside) and carcloud could not start.
    limit = file_store_limit(tmp_path / "data" / "nats")  # not made yet: its parent counts
    assert limit >= reserved_bytes() + UNRESERVED_ROOM
    assert limit >= shutil.disk_usage(tmp_path).free * 3 // 4 - 2**30  # the default if larger
