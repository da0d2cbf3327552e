"""Commit receipts: what a car is told is stored, is stored — across kill -9 of the platform.

A PUBACK is not proof of storage (nats-server acknowledges before the TELEMETRY
stream stores). A receipt is sent after the commit, so it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from carcloud.errors import ValidationError
from carcloud.ingest.receipts import ReceiptSender, receipt_route
from carcloud.messaging.accounts import vehicle_shard
from carcloud_agent.mqtt import MqttClient, MqttError
from carcloud_agent.protocol.receipts import covered, decode_receipt, encode_receipt, seq_ranges
from tests.conftest import start_platform
from tests.platform import Car, Platform, make_vin, utc_now

ODOMETER = "Vehicle.TraveledDistance"

# ---- the codec and the coalescing, without a server -----------------------------------------


def test_seqs_become_inclusive_ranges_and_travel_as_json() -> None:
    ranges = seq_ranges([5, 1, 2, 3, 3, 9, 10])
    assert ranges == [(1, 3), (5, 5), (9, 10)]
    assert decode_receipt(encode_receipt(ranges)) == ranges
    assert covered(10, ranges) and covered(2, ranges) and not covered(4, ranges)


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[]", b'{"ranges": 3}', b'{"ranges": [[2, 1]]}', b'{"ranges": [[1, "2"]]}'],
)
def test_a_malformed_receipt_is_refused(payload: bytes) -> None:
    with pytest.raises(ValidationError):
        decode_receipt(payload)


async def test_receipts_are_coalesced_per_car_and_a_backlog_goes_at_once() -> None:
    now = [100.0]
    sent: list[tuple[str, bytes]] = []

    async def publish(subject: str, payload: bytes) -> None:
        sent.append((subject, payload))

    sender = ReceiptSender(publish, every_s=1.0, clock=lambda: now[0])
    car, other = "WZV0000000000TST1", "WZV0000000000TST2"
    sender.note(car, 1)
    await sender.flush()  # the first receipt of a car goes at once
    assert sent == [(receipt_route(car), b'{"ranges":[[1,1]]}')]
    now[0] += 0.3
    sender.note(car, 2)
    sender.note(car, 3)
    sender.note(other, 7)
    await sender.flush()  # the car had one 0.3 s ago: it waits; the other car does not
    assert [subject for subject, _ in sent[1:]] == [receipt_route(other)]
    now[0] += 0.7
    await sender.flush()
    assert sent[-1] == (receipt_route(car), b'{"ranges":[[2,3]]}')
    now[0] += 0.1
    sender.note(car, 4, backlog=True)
    await sender.flush()  # a backlog batch does not wait for the second to pass
    assert sent[-1] == (receipt_route(car), b'{"ranges":[[4,4]]}')
    await sender.flush()
    assert len(sent) == 4


def test_a_receipt_is_routed_into_the_cars_own_vehicle_account() -> None:
    vin = make_vin()
    assert receipt_route(vin) == f"carcloud.receipts.VEH{vehicle_shard(vin)}.{vin}"


# ---- isolation ------------------------------------------------------------------------------


def _receipts(car: Car) -> list[tuple[str, list[tuple[int, int]]]]:
    return [
        (topic, decode_receipt(payload))
        for topic, payload in list(car.received)
        if topic.endswith("/receipts")
    ]


@pytest.mark.slow
def test_a_car_receives_its_own_receipts_and_never_another_cars(platform: Platform) -> None:
    sender = platform.register()
    # A neighbour in the same vehicle account, and one in another account.
    same, other = None, None
    while same is None or other is None:
        vin = make_vin()
        if vehicle_shard(vin) == vehicle_shard(sender.vin):
            same = same or vin
        else:
            other = other or vin
    neighbours = [platform.register(vin=vin) for vin in (same, other)]

    car = Car(platform, sender.vin, sender.password)
    assert not car.connect().is_failure
    assert car.subscribe(f"vehicles/{sender.vin}/receipts") == [1]
    watchers = []
    for creds in neighbours:
        watcher = Car(platform, creds.vin, creds.password)
        assert not watcher.connect().is_failure
        # Another car's receipts, or everybody's, are refused by the server ...
        assert watcher.subscribe(f"vehicles/{sender.vin}/receipts") == [0x80]
        assert watcher.subscribe("vehicles/+/receipts") == [0x80]
        # ... and its own subscription gets only its own.
        assert watcher.subscribe(f"vehicles/{creds.vin}/receipts") == [1]
        watchers.append(watcher)

    seqs = [car.telemetry({ODOMETER: float(n)}) for n in range(1, 4)]
    platform.wait_for(
        lambda: all(any(covered(seq, r) for _, r in _receipts(car)) for seq in seqs),
        timeout=30,
        what="receipts naming every seq the car sent",
    )
    assert {topic for topic, _ in _receipts(car)} == {f"vehicles/{sender.vin}/receipts"}
    # A neighbour that sends gets its receipt, so it was listening all along.
    watchers[0].telemetry({ODOMETER: 1.0}, seq=1000)
    platform.wait_for(
        lambda: any(covered(1000, r) for _, r in _receipts(watchers[0])),
        timeout=30,
        what="the neighbour's own receipt",
    )
    for watcher in watchers:
        assert {topic for topic, _ in _receipts(watcher)} <= {f"vehicles/{watcher.vin}/receipts"}
        assert not any(covered(seq, r) for _, r in _receipts(watcher) for seq in seqs[:1])


# ---- kill -9 of the whole platform, three times -------------------------------------------


def kill_hard(platform: Platform) -> None:
    """SIGKILL nats-server and `carcloud up` at once: no graceful anything."""
    assert platform.process is not None
    pid = platform.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else []:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGKILL)
    platform.stop(signal.SIGKILL)


def stored_seqs(data_dir: Path, vin: str) -> set[int]:
    """Every committed seq of a vehicle, read from the SQLite file (read-only)."""
    with contextlib.closing(
        sqlite3.connect(f"file:{data_dir / 'carcloud.db'}?mode=ro", uri=True, timeout=30)
    ) as conn:
        rows = conn.execute(
            "SELECT m.seq FROM telemetry_messages m JOIN vehicles v ON v.id = m.vehicle_id "
            "WHERE v.vin = ?",
            (vin,),
        ).fetchall()
    return {int(row[0]) for row in rows}


class ReceiptCar:
    """A car that publishes numbered telemetry as fast as 32 unacknowledged messages allow,
    keeps each message until a receipt names it, and sends again what no receipt named
    after a reconnect or 5 s."""

    def __init__(self, port: int, vin: str, password: str) -> None:
        self.port, self.vin, self.password = port, vin, password
        self.receipted: set[int] = set()
        self.acked: set[int] = set()
        self.unreceipted: dict[int, float] = {}  # seq → when last sent
        self.seq = 0
        self.publishing = True
        self.connects = 0
        self.resent = 0
        self.pause_s = 0.0  # after every 32 messages: 0 is flat out

    def body(self, seq: int) -> bytes:
        # A millisecond apart (history keeps one row per vehicle and millisecond).
        ts = utc_now(seq / 1000 - 7200)
        return json.dumps({"seq": seq, "ts": ts, "signals": {ODOMETER: float(seq)}}).encode()

    def on_message(self, topic: str, payload: bytes) -> None:
        for first, last in decode_receipt(payload):
            for seq in [seq for seq in self.unreceipted if first <= seq <= last]:
                del self.unreceipted[seq]
            self.receipted.update(range(first, last + 1))

    async def run(self, done: threading.Event) -> None:
        """Connect again and again until `done` is set and every message was receipted."""
        while not (done.is_set() and not self.unreceipted):
            client = MqttClient(
                "127.0.0.1",
                self.port,
                self.vin,
                self.vin,
                self.password,
                on_message=self.on_message,
            )
            try:
                await client.connect(timeout_s=5)
                if await client.subscribe(f"vehicles/{self.vin}/receipts", qos=0) == 0x80:
                    raise AssertionError("the car may not subscribe to its receipts")
            except (MqttError, TimeoutError):
                await client.abort()
                await asyncio.sleep(0.2)
                continue
            self.connects += 1
            try:
                await self._publish(client, done)
            finally:
                await client.abort()

    async def _publish(self, client: MqttClient, done: threading.Event) -> None:
        window = asyncio.Semaphore(32)
        topic = f"vehicles/{self.vin}/telemetry"

        def on_ack(seq: int) -> object:
            def acked(future: asyncio.Future[list[int] | None]) -> None:
                window.release()
                if not future.cancelled():
                    self.acked.add(seq)

            return acked

        def send(seq: int) -> None:
            self.unreceipted.pop(seq, None)
            self.unreceipted[seq] = time.monotonic()
            future = client.publish_nowait(topic, self.body(seq))
            future.add_done_callback(on_ack(seq))  # type: ignore[arg-type]

        resend = sorted(self.unreceipted)  # after a reconnect: everything not receipted
        while not client.closed.is_set():
            if done.is_set() and not self.unreceipted:
                await client.disconnect()
                return
            if not resend and self.unreceipted:
                sent_at = next(iter(self.unreceipted.values()))
                if time.monotonic() - sent_at > 5.0:
                    resend = sorted(self.unreceipted)
            if resend:
                self.resent += 1
                seq = resend.pop(0)
            elif not done.is_set():
                self.seq += 1
                seq = self.seq
            else:
                await asyncio.sleep(0.05)
                continue
            await window.acquire()
            try:
                send(seq)
            except MqttError:
                window.release()
                return
            if seq % 32 == 0:
                await asyncio.sleep(self.pause_s)


@pytest.mark.slow
def test_every_receipted_message_survives_three_kill_9_of_the_platform(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    platform = start_platform(data_dir)
    creds = platform.register()
    car = ReceiptCar(platform.mqtt_port, creds.vin, creds.password)
    done = threading.Event()
    receipted_before: list[int] = []
    failures: list[BaseException] = []

    def crash_three_times() -> None:
        try:
            for _ in range(3):
                # Crash while receipts flow and the car has more in flight than receipted.
                start = len(car.receipted)
                platform.wait_for(
                    lambda: len(car.receipted) > start + 500,  # noqa: B023 - read at once
                    timeout=60,
                    what="receipts after a start",
                )
                receipted_before.append(len(car.receipted))
                kill_hard(platform)
                platform.start(timeout=60)
            platform.wait_for(
                lambda: len(car.receipted) > receipted_before[-1] + 500,
                timeout=60,
                what="receipts after the last restart",
            )
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)
        finally:
            done.set()

    crasher = threading.Thread(target=crash_three_times)
    crasher.start()
    try:
        asyncio.run(asyncio.wait_for(car.run(done), timeout=300))
        crasher.join()
        if failures:
            raise failures[0]
        assert len(receipted_before) == 3, "the platform was not crashed three times"
        assert car.connects >= 4
        platform.stop()  # a clean stop: the file is no longer written
        stored = stored_seqs(data_dir, creds.vin)
        print(
            f"{car.seq} sent, {len(car.acked)} acknowledged, {len(car.receipted)} receipted, "
            f"{car.resent} sent again, {car.connects} connections"
        )
        lost = sorted(car.receipted - stored)
        assert not lost, f"{len(lost)} receipted messages are not stored: {lost[:10]}"
        # And with the car resending what no receipt named, nothing it sent is missing.
        missing = sorted(set(range(1, car.seq + 1)) - stored)
        assert not missing, f"{len(missing)} of {car.seq} messages never stored: {missing[:10]}"
    finally:
        done.set()
        crasher.join()
        platform.stop()
