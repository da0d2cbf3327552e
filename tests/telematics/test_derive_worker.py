"""The derive worker against a real nats-server: it derives a vehicle only once ingest has
committed its data (ingest's commit notice), once for all of a vehicle's messages from the
oldest time, and a vehicle that takes long to derive holds back no other vehicle; every
notice is acknowledged in the end. The consumer derive had on the raw telemetry before
commit notices is carried over on the first start, losing nothing it had not derived."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext

from carcloud.catalog import default_catalog
from carcloud.errors import StorageError
from carcloud.ingest.notices import COMMITTED_SUBJECT, CommitNotice
from carcloud.ingest.worker import INGEST_CONSUMER
from carcloud.ingest.worker import consumer_config as ingest_consumer
from carcloud.messaging import topics
from carcloud.messaging.natsserver import NatsServer, ServerPorts
from carcloud.messaging.streams import (
    TELEMETRY_COMMITTED_STREAM,
    TELEMETRY_STREAM,
    ensure_consumer,
    ensure_streams,
)
from carcloud.runtime.launcher import free_port
from carcloud.telematics import role
from carcloud.telematics.role import (
    DERIVE_CONSUMER,
    DeriveBacklog,
    DeriveWorker,
    gather_backlog,
    merged_times,
    vehicle_times,
)
from carcloud.timeutil import format_us

SLOW = "WVWZZZ1JZXW000001"
FAST = ["WVWZZZ1JZXW000002", "WVWZZZ1JZXW000003", "WVWZZZ1JZXW000004"]
START = 1_790_000_000_000_000
SECOND = 1_000_000


class Recorder:
    """A deriver that notes each derivation; the slow vehicle's waits for `release`."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int, float]] = []
        self.finished: list[tuple[str, int, float]] = []
        self.release = asyncio.Event()
        self.fail_once: set[str] = set()

    async def derive(self, vin: str, since: int) -> object:
        self.started.append((vin, since, time.monotonic()))
        if vin == SLOW:
            await self.release.wait()
        if vin in self.fail_once:
            self.fail_once.discard(vin)
            raise StorageError(f"database is locked (deriving {vin})")
        self.finished.append((vin, since, time.monotonic()))
        return None

    def derived(self, vin: str) -> list[int]:
        return [since for found, since, _ in self.finished if found == vin]

    def finished_at(self, vin: str) -> float:
        return max(at for found, _, at in self.finished if found == vin)


def server(tmp_path: Path) -> NatsServer:
    ports = ServerPorts("127.0.0.1", free_port(), free_port())
    store = tmp_path / "store"
    config = tmp_path / "nats.conf"
    config.write_text(
        f"server_name: derive\nlisten: 127.0.0.1:{ports.nats}\n"
        f'jetstream {{ store_dir: "{store}" }}\n'
        f"mqtt {{ host: 127.0.0.1, port: {ports.mqtt} }}\n"
    )
    return NatsServer(config, tmp_path / "nats.log", ports, store_dir=store)


async def publish(js: JetStreamContext, vin: str, seconds: range) -> None:
    """One message of these seconds (as a car sends a batch: it cannot be split)."""
    body = {
        "seq": seconds[0] + 1,
        "samples": [
            {"ts": format_us(START + second * SECOND), "signals": {"Vehicle.Speed": 30.0}}
            for second in seconds
        ],
    }
    await js.publish(topics.nats_subject(vin, topics.TELEMETRY), json.dumps(body).encode())


async def commit_all(js: JetStreamContext) -> int:
    """Act as ingest: publish the commit notice of what is there (after a commit, in the
    real worker), then acknowledge it."""
    sub = await js.pull_subscribe_bind(INGEST_CONSUMER, TELEMETRY_STREAM)
    acknowledged = 0
    try:
        while True:
            try:
                batch = await sub.fetch(100, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises either
                return acknowledged
            notice = CommitNotice(vehicle_times(batch), len(batch))
            await js.publish(COMMITTED_SUBJECT, notice.encode())
            for msg in batch:
                await msg.ack_sync()
            acknowledged += len(batch)
    finally:
        await sub.unsubscribe()


async def until(predicate: Callable[[], object], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {within_s} s waiting for {what}")


@asynccontextmanager
async def derive_worker(
    tmp_path: Path, recorder: Recorder, before: Callable[[JetStreamContext], Awaitable[None]]
) -> AsyncIterator[tuple[JetStreamContext, DeriveWorker]]:
    """A nats-server with the platform's streams, `before` run, then a derive worker."""
    embedded = server(tmp_path)
    await embedded.start()
    nc = await nats.connect(f"nats://127.0.0.1:{embedded.ports.nats}")
    stop = asyncio.Event()
    running: asyncio.Task[None] | None = None
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        await ensure_consumer(js, TELEMETRY_STREAM, ingest_consumer())
        await before(js)
        worker = DeriveWorker(nc, [recorder], default_catalog(), batch_size=50)
        running = asyncio.create_task(worker.run(stop))
        yield js, worker
    finally:
        stop.set()
        if running is not None:
            await asyncio.wait_for(running, 10)
        await nc.close()
        await embedded.stop()


async def all_acknowledged(js: JetStreamContext) -> None:
    deadline = time.monotonic() + 30
    while True:
        info = await js.consumer_info(TELEMETRY_COMMITTED_STREAM, DERIVE_CONSUMER)
        if info.num_ack_pending == 0 and info.num_pending == 0:
            return
        assert time.monotonic() < deadline, "messages left unacknowledged"
        await asyncio.sleep(0.1)


def test_committed_data_is_derived_per_vehicle_and_a_slow_vehicle_holds_back_no_other(
    tmp_path: Path,
) -> None:
    recorder = Recorder()

    async def fleet(js: JetStreamContext) -> None:
        # A message of five seconds per vehicle (the slow one's newest first), not committed.
        await publish(js, SLOW, range(4, -1, -1))
        for vin in FAST:
            await publish(js, vin, range(5))

    async def scenario() -> None:
        async with derive_worker(tmp_path, recorder, fleet) as (js, worker):
            await asyncio.sleep(1.0)
            assert recorder.started == [], "derived before ingest committed"

            assert await commit_all(js) == 4
            await until(lambda: all(recorder.derived(v) for v in FAST), 30, "the fast vehicles")
            # Each vehicle once, from its oldest time, while the slow one is still deriving.
            assert all(recorder.derived(vin) == [START] for vin in FAST)
            assert recorder.derived(SLOW) == []
            assert [since for vin, since, _ in recorder.started if vin == SLOW] == [START]

            # More data of a fast vehicle, committed: derived again, still not held back.
            await publish(js, FAST[0], range(5, 8))
            assert await commit_all(js) == 1
            await until(lambda: len(recorder.derived(FAST[0])) == 2, 30, "the new data")
            assert recorder.derived(FAST[0]) == [START, START + 5 * SECOND]
            assert recorder.derived(SLOW) == []

            # The status's derive backlog (any process's workers answer): the slow vehicle
            # waits, being derived, and has waited since its batch was committed.
            backlog = await gather_backlog(worker.nc)
            assert (backlog.workers, backlog.vehicles_waiting, backlog.vehicles_deriving) == (
                1, 1, 1,
            )  # fmt: skip
            assert 1 <= backlog.messages_in_flight <= 4  # its batch waits for it
            await asyncio.sleep(0.3)
            later = (await gather_backlog(worker.nc)).oldest_waiting_s
            assert backlog.oldest_waiting_s + 0.3 <= later < 60

            recorder.release.set()
            await until(lambda: recorder.derived(SLOW), 30, "the slow vehicle")
            assert recorder.finished_at(FAST[0]) < recorder.finished_at(SLOW)
            await all_acknowledged(js)
            assert worker.derived == len(recorder.finished) == 5
            assert await gather_backlog(worker.nc) == DeriveBacklog(workers=1)

    asyncio.run(scenario())


def test_a_vehicle_that_fails_to_derive_is_derived_again_and_its_data_kept_until_then(
    tmp_path: Path,
) -> None:
    recorder = Recorder()
    recorder.release.set()
    recorder.fail_once = {FAST[1]}

    async def fleet(js: JetStreamContext) -> None:
        for vin in FAST:
            await publish(js, vin, range(5))

    async def scenario() -> None:
        async with derive_worker(tmp_path, recorder, fleet) as (js, worker):
            assert await commit_all(js) == 3
            await until(lambda: recorder.derived(FAST[0]) and recorder.derived(FAST[2]), 30, "")
            info = await js.consumer_info(TELEMETRY_COMMITTED_STREAM, DERIVE_CONSUMER)
            assert info.num_ack_pending == 1  # the notice waits for the failed vehicle
            await until(lambda: recorder.derived(FAST[1]), 30, "the failed vehicle again")
            assert recorder.derived(FAST[1]) == [START]
            await all_acknowledged(js)
            assert worker.derived == 3

    asyncio.run(scenario())


def test_the_old_consumer_on_raw_telemetry_is_carried_over_and_removed(tmp_path: Path) -> None:
    """An upgrade: derive's consumer on TELEMETRY had derived the first vehicle's message
    and not the rest, and the last one was not committed by ingest yet. The new worker
    waits for ingest's commit (by an ingest that publishes no notice: an old version's),
    derives the rest, and the old consumer is gone."""
    recorder = Recorder()
    recorder.release.set()

    async def before_upgrade(js: JetStreamContext) -> None:
        for vin in FAST:
            await publish(js, vin, range(5))
        await publish(js, SLOW, range(10, 15))
        old = ConsumerConfig(
            durable_name=DERIVE_CONSUMER,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=topics.ALL_TELEMETRY,
        )
        await js.add_consumer(TELEMETRY_STREAM, old)
        sub = await js.pull_subscribe_bind(DERIVE_CONSUMER, TELEMETRY_STREAM)
        [first] = await sub.fetch(1, timeout=5)
        await first.ack_sync()  # derived by the old worker
        await sub.unsubscribe()

    async def scenario() -> None:
        async with derive_worker(tmp_path, recorder, before_upgrade) as (js, worker):
            await asyncio.sleep(1.5)
            assert recorder.started == [], "carried over before ingest committed"
            ingest = await js.pull_subscribe_bind(INGEST_CONSUMER, TELEMETRY_STREAM)
            for msg in await ingest.fetch(4, timeout=5):
                await msg.ack_sync()  # committed, and no notice published
            await ingest.unsubscribe()
            await until(
                lambda: all(recorder.derived(vin) for vin in [*FAST[1:], SLOW]), 30, "the rest"
            )
            assert recorder.derived(FAST[0]) == []
            assert recorder.derived(SLOW) == [START + 10 * SECOND]
            # The carry-over deletes the old consumer once it has passed on what that
            # consumer held, which the derivations of it may finish before.
            names: list[str | None] = [DERIVE_CONSUMER]
            for _ in range(250):
                names = [info.name for info in await js.consumers_info(TELEMETRY_STREAM)]
                if DERIVE_CONSUMER not in names:
                    break
                await asyncio.sleep(0.02)
            assert DERIVE_CONSUMER not in names, "the old consumer was not removed in 5 s"
            await all_acknowledged(js)
            assert worker.derived == 3

    asyncio.run(scenario())


def test_a_backlog_committed_in_several_batches_is_derived_once_from_its_start(
    tmp_path: Path,
) -> None:
    """A car back online sends live data, then its backlog, which ingest commits in three
    batches 0.3 s apart (longer in all than the linger): the vehicle is derived once for
    the whole backlog, from its oldest time, not once a batch (each derivation would
    publish a `trip.updated` of its own)."""
    recorder = Recorder()
    recorder.release.set()
    vin = FAST[0]

    async def scenario() -> None:
        async with derive_worker(tmp_path, recorder, _nothing) as (js, _):
            await js.publish(COMMITTED_SUBJECT, _notice(vin, 1000, 1004))
            await until(lambda: recorder.derived(vin), 30, "the live data")
            for first in (10, 20, 30):
                await js.publish(COMMITTED_SUBJECT, _notice(vin, first, first + 9))
                await asyncio.sleep(0.3)
            await until(lambda: len(recorder.derived(vin)) == 2, 30, "the backlog")
            await asyncio.sleep(1.0)
            assert recorder.derived(vin) == [START + 1000 * SECOND, START + 10 * SECOND]

    asyncio.run(scenario())


async def _nothing(js: JetStreamContext) -> None:
    return None


def test_batches_of_one_car_committed_out_of_order_by_seconds_are_not_held_as_a_backlog(
    tmp_path: Path,
) -> None:
    """Two ingest workers commit a car's messages in parallel batches, the newer first:
    seconds of disorder, not a backlog. The older batch is derived at once, not held for
    the rest of a backlog (a second of lag for nothing)."""
    recorder = Recorder()
    recorder.release.set()
    vin = FAST[0]

    async def scenario() -> None:
        async with derive_worker(tmp_path, recorder, _nothing) as (js, _):
            await js.publish(COMMITTED_SUBJECT, _notice(vin, 10, 14))
            await until(lambda: recorder.derived(vin), 30, "the newer batch")
            committed = time.monotonic()
            await js.publish(COMMITTED_SUBJECT, _notice(vin, 5, 9))
            await until(lambda: len(recorder.derived(vin)) == 2, 30, "the older batch")
            assert recorder.finished_at(vin) - committed < 0.5
            assert recorder.derived(vin) == [START + 10 * SECOND, START + 5 * SECOND]

    asyncio.run(scenario())


def _notice(vin: str, first: int, last: int) -> bytes:
    times = {vin: (START + first * SECOND, START + last * SECOND)}
    return CommitNotice(times, last - first + 1).encode()


def test_a_notice_held_longer_than_its_ack_wait_is_not_delivered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vehicle slow to derive holds its notice: the worker tells JetStream it is still
    in progress, so the notice is not delivered again (its other vehicles derived twice,
    its telemetry counted in flight twice) however long it takes."""
    monkeypatch.setattr(role, "IN_PROGRESS_EVERY_S", 0.4)
    recorder = Recorder()

    async def short_ack_wait(js: JetStreamContext) -> None:
        config = role.consumer_config()
        config.ack_wait = 1.0
        await ensure_consumer(js, TELEMETRY_COMMITTED_STREAM, config)

    async def scenario() -> None:
        async with derive_worker(tmp_path, recorder, short_ack_wait) as (js, worker):
            await js.publish(COMMITTED_SUBJECT, _notice(SLOW, 0, 4))
            await until(lambda: recorder.started, 30, "the slow vehicle")
            await asyncio.sleep(3.5)  # three and a half times the ack wait
            info = await js.consumer_info(TELEMETRY_COMMITTED_STREAM, DERIVE_CONSUMER)
            assert info.num_redelivered == 0
            assert worker.backlog().messages_in_flight == 5
            recorder.release.set()
            await all_acknowledged(js)
            assert recorder.derived(SLOW) == [START]

    asyncio.run(scenario())


def test_a_notice_of_more_vehicles_than_one_message_holds_is_split() -> None:
    vehicles = {f"WVWZZZ1JZXW{index:06d}": (START, START + index) for index in range(12_001)}
    parts = CommitNotice(vehicles, 20_000).parts()
    assert [len(part.vehicles) for part in parts] == [5_000, 5_000, 2_001]
    assert sum(part.messages for part in parts) == 20_000
    assert merged_times(parts) == vehicles
    assert all(len(part.encode()) < 1024 * 1024 for part in parts)
