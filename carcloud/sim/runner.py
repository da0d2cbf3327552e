"""The fleet simulator on the wire: each simulated vehicle is a real MQTT client.

Every vehicle publishes the canonical telemetry message (docs/protocol.md) at
`rate` messages per second of real time, advancing its model by
`speedup / rate` simulated seconds per message, so the same seed gives the same
messages whatever the machine's speed. Some vehicles lose connectivity for a
while (tunnels, garages): they drop the connection without DISCONNECT (the
server publishes their will), keep recording, and on reconnect first resend
what no commit receipt has named (same seq: the platform stores it once), then
their backlog in order, in batch messages, then live data.

Like the edge agent, a simulated car keeps each telemetry message until a commit
receipt (`vehicles/{vin}/receipts`) names its seq, not until its PUBACK (which
nats-server sends before it has stored the message), and sends again what waited
longer than the receipt timeout. Kept cheap for thousands of cars: one dict per
car in send order, so a tick looks at its oldest entry only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

from carcloud.messaging import topics
from carcloud.sim import link
from carcloud.sim.batching import MAX_BATCH_BYTES, backlog_batches
from carcloud.sim.model import SimVehicle
from carcloud.timeutil import now_us
from carcloud_agent.carside import CarSide
from carcloud_agent.errors import ProtocolError
from carcloud_agent.mqtt import ConnectRefused, MqttClient, MqttError, Will
from carcloud_agent.protocol.receipts import SeqRange, decode_receipt
from carcloud_agent.protocol.status import OFFLINE, ONLINE
from carcloud_agent.protocol.telemetry import encode_batch, encode_sample

log = logging.getLogger(__name__)

BACKLOG_BATCH = 60
MAX_BACKLOG = 86_400
RECEIPT_TIMEOUT_S = 15.0
MAX_RECEIPT_BACKOFF = 8  # at most 2 minutes without a receipt before sending again


@dataclass
class FleetStats:
    """What the status line shows."""

    vehicles: int = 0
    connected: int = 0
    offline: int = 0
    sent: int = 0
    acked: int = 0
    late: int = 0
    ticks: int = 0
    errors: int = 0
    refused: int = 0
    buffered: int = 0
    receipted: int = 0
    resent: int = 0
    last_error: str | None = None

    @property
    def pending(self) -> int:
        return self.sent - self.acked

    def line(self) -> str:
        late = 100.0 * self.late / self.ticks if self.ticks else 0.0
        return (
            f"vehicles {self.vehicles}  connected {self.connected}  offline {self.offline}  "
            f"sent {self.sent}  acks pending {self.pending}  buffered {self.buffered}  "
            f"late {late:.2f}%  errors {self.errors}"
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "vehicles": self.vehicles,
            "connected": self.connected,
            "offline": self.offline,
            "sent": self.sent,
            "acked": self.acked,
            "late": self.late,
            "ticks": self.ticks,
            "errors": self.errors,
            "buffered": self.buffered,
            "receipted": self.receipted,
            "resent": self.resent,
        }


@dataclass
class Connectivity:
    """How often and how long cars lose the network (per simulated hour, simulated seconds)."""

    gaps_per_hour: float = 0.0
    min_gap_s: float = 20.0
    max_gap_s: float = 180.0


@dataclass
class SimulatedCar:
    """A vehicle model, its MQTT connection and what it still has to deliver."""

    vehicle: SimVehicle
    password: str
    rng: random.Random
    seq: int = 0
    client: MqttClient | None = None
    backlog: deque[tuple[str, dict[str, object]]] = field(default_factory=deque)
    # Sent telemetry no receipt has named yet, seq → (payload, when sent), oldest first.
    unreceipted: dict[int, tuple[bytes, float]] = field(default_factory=dict)
    offline_until_s: float = 0.0
    reconnect_at: float = 0.0
    failures: int = 0
    connecting: bool = False
    dropped: int = 0
    receipt_backoff: int = 1  # the receipt timeout's multiple to wait before resending
    outbox: deque[tuple[str, bytes]] = field(default_factory=deque)
    side: CarSide | None = None

    def __post_init__(self) -> None:
        self.side = CarSide(self.vehicle, now_us)

    @property
    def vin(self) -> str:
        return self.vehicle.vin

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class FleetRunner:
    """Runs simulated cars against a carcloud MQTT listener."""

    def __init__(
        self,
        cars: list[SimulatedCar],
        mqtt_host: str,
        mqtt_port: int,
        rate: float = 1.0,
        speedup: float = 1.0,
        connectivity: Connectivity | None = None,
        on_message: Callable[[str, bytes], None] | None = None,
        receipt_timeout_s: float | None = RECEIPT_TIMEOUT_S,
    ) -> None:
        self.cars = cars
        self.mqtt_host, self.mqtt_port = mqtt_host, mqtt_port
        self.rate = rate
        self.speedup = speedup
        self.connectivity = connectivity or Connectivity()
        self.stats = FleetStats(vehicles=len(cars))
        self.on_message = on_message
        # None: a platform without receipts; telemetry is then forgotten at its PUBACK.
        self.receipt_timeout_s = receipt_timeout_s
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, stop: asyncio.Event, duration_s: float | None = None) -> FleetStats:
        """Connect every car and publish until `stop` is set or `duration_s` has passed."""
        await self._connect_all()
        period = 1.0 / self.rate
        dt_sim = self.speedup / self.rate
        start = time.perf_counter()
        end = start + duration_s if duration_s is not None else None
        slots = max(1, min(len(self.cars), 50))
        tick = 0
        try:
            while not stop.is_set() and (end is None or time.perf_counter() < end):
                for slot in range(slots):
                    due = start + (tick + slot / slots) * period
                    delay = due - time.perf_counter()
                    if delay > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), delay)
                        if stop.is_set():
                            break
                    else:
                        # Behind schedule: still let the connections read their PUBACKs and
                        # receipts, answer pings and connect, or a busy machine starves them.
                        await asyncio.sleep(0)
                    late = time.perf_counter() - due > period
                    for car in self.cars[slot::slots]:
                        self._tick(car, dt_sim, late)
                tick += 1
        finally:
            await self._close_all()
        return self.stats

    async def _connect_all(self) -> None:
        # Bounded concurrency: thousands of cars connect without a thundering herd.
        limit = asyncio.Semaphore(64)

        async def one(car: SimulatedCar) -> None:
            async with limit:
                await self._connect(car)

        await asyncio.gather(*(one(car) for car in self.cars))

    async def _connect(self, car: SimulatedCar) -> None:
        car.connecting = True
        side = car.side
        assert side is not None

        receipts_topic = topics.mqtt_topic(car.vin, topics.RECEIPTS)

        def on_message(topic: str, payload: bytes) -> None:
            if topic == receipts_topic:
                self._on_receipt(car, payload)
                return
            side.on_message(topic, payload, lambda t, p: self._publish_control(car, t, p))
            if self.on_message is not None:
                self.on_message(topic, payload)

        client = MqttClient(
            self.mqtt_host,
            self.mqtt_port,
            car.vin,
            car.vin,
            car.password,
            will=Will(topics.mqtt_topic(car.vin, topics.STATUS), OFFLINE),
            on_message=on_message,
            clean_session=link.CLEAN_SESSION,
        )
        try:
            await client.connect()
        except MqttError as exc:
            car.failures += 1
            car.reconnect_at = time.perf_counter() + link.reconnect_delay(car.failures, car.rng)
            if isinstance(exc, ConnectRefused):
                self.stats.refused += 1
            self._error(f"{car.vin}: {exc}")
            return
        finally:
            car.connecting = False
        car.client = client
        car.failures = 0
        self.stats.connected += 1
        try:
            # Subscribed (again: a clean session keeps nothing) before announcing itself
            # online: the cloud answers that status with every open command and the
            # desired twin, so nothing sent while the car was away is missed.
            for topic in side.subscriptions():
                if await client.subscribe(topic, qos=link.CONTROL_QOS) == 0x80:
                    # It still sends telemetry, but would miss commands: say so.
                    self._error(f"{car.vin}: subscription to {topic} refused by the server")
            # QoS 0: a plain NATS publish of the cloud; a lost receipt costs a resend.
            receipts = self.receipt_timeout_s is not None
            if receipts and await client.subscribe(receipts_topic, qos=0) == 0x80:
                self._error(f"{car.vin}: subscription to {receipts_topic} refused")
        except (MqttError, TimeoutError) as exc:
            self._error(f"{car.vin}: subscribe failed: {exc}")
        while car.outbox:
            self._publish_control(car, *car.outbox.popleft())
        try:
            online = await client.publish(topics.mqtt_topic(car.vin, topics.STATUS), ONLINE)
        except MqttError as exc:  # dropped again at once: the next tick notices and reconnects
            self._error(f"{car.vin}: {exc}")
            return
        self.stats.sent += 1
        self._track(car, online)
        self._flush(car)

    def _error(self, problem: str) -> None:
        self.stats.errors += 1
        if self.stats.last_error is None:
            log.warning("simulator: %s", problem)
        self.stats.last_error = problem

    def _track(
        self, car: SimulatedCar, done: asyncio.Future[list[int] | None], seq: int = 0
    ) -> None:
        forget = self.receipt_timeout_s is None

        def acked(future: asyncio.Future[list[int] | None]) -> None:
            if not future.cancelled() and future.exception() is None:
                self.stats.acked += 1
                if forget:
                    car.unreceipted.pop(seq, None)

        done.add_done_callback(acked)

    def _on_receipt(self, car: SimulatedCar, payload: bytes) -> None:
        try:
            ranges = decode_receipt(payload)
        except ProtocolError as exc:
            self._error(f"{car.vin}: malformed receipt: {exc}")
            return
        named = forget_receipted(car.unreceipted, ranges)
        self.stats.receipted += named
        if named:
            car.receipt_backoff = 1

    def _send(self, car: SimulatedCar, seq: int, payload: bytes) -> None:
        assert car.client is not None
        car.unreceipted.pop(seq, None)  # a resend moves to the end: the dict stays by send time
        car.unreceipted[seq] = (payload, time.monotonic())
        if len(car.unreceipted) > MAX_BACKLOG:
            del car.unreceipted[next(iter(car.unreceipted))]
            car.dropped += 1
        self.stats.sent += 1
        try:
            done = car.client.publish_nowait(topics.mqtt_topic(car.vin, topics.TELEMETRY), payload)
        except MqttError as exc:
            self._error(str(exc))
            return
        self._track(car, done, seq)

    def _publish_control(self, car: SimulatedCar, topic: str, payload: bytes) -> None:
        """Command results and reported twins: kept until the car is connected again."""
        client = car.client
        if client is None or not client.connected:
            car.outbox.append((topic, payload))
            return
        try:
            done = client.publish_nowait(topic, payload)
        except MqttError:
            car.outbox.append((topic, payload))
            return
        self.stats.sent += 1
        self._track(car, done)

    def _flush(self, car: SimulatedCar) -> None:
        """After a reconnect: what no receipt named first, then the backlog, in order."""
        self._resend(car)
        for chunk in backlog_batches(car.backlog, BACKLOG_BATCH, MAX_BATCH_BYTES):
            self.stats.buffered -= len(chunk)
            seq = car.next_seq()
            self._send(car, seq, encode_batch(seq, chunk))

    def _resend(self, car: SimulatedCar) -> None:
        """Send again, in seq order, every message no receipt has named."""
        waiting = sorted(car.unreceipted.items())
        self.stats.resent += len(waiting)
        for seq, (payload, _) in waiting:
            self._send(car, seq, payload)

    def _tick(self, car: SimulatedCar, dt_sim: float, late: bool) -> None:
        self.stats.ticks += 1
        if late:
            self.stats.late += 1
        vehicle = car.vehicle
        ts, signals = next_sample(vehicle, dt_sim)
        self._maybe_lose_network(car, dt_sim)
        client = car.client
        if client is not None and client.connected:
            timeout = self.receipt_timeout_s
            if timeout is not None and car.unreceipted:
                _, sent_at = next(iter(car.unreceipted.values()))
                if time.monotonic() - sent_at > timeout * car.receipt_backoff:
                    self._resend(car)
                    # Still no receipt: the platform is behind, not the link. Waiting twice as
                    # long each time keeps a fleet from resending its whole window every 15 s
                    # into an ingest that is catching up (4x the messages, bench/telematics.py).
                    car.receipt_backoff = min(car.receipt_backoff * 2, MAX_RECEIPT_BACKOFF)
            seq = car.next_seq()
            self._send(car, seq, encode_sample(seq, ts, signals))
            return
        if client is not None:  # the server dropped us
            car.client = None
            self.stats.connected -= 1
            car.reconnect_at = time.perf_counter()
        car.backlog.append((ts, signals))
        self.stats.buffered += 1
        if len(car.backlog) > MAX_BACKLOG:
            car.backlog.popleft()
            car.dropped += 1
            self.stats.buffered -= 1
        in_gap = vehicle.sim_time < car.offline_until_s
        if not in_gap and not car.connecting and time.perf_counter() >= car.reconnect_at:
            if car.offline_until_s:
                car.offline_until_s = 0.0
                self.stats.offline -= 1
            # Marked now, not when the task starts: a late tick loop does not yield between
            # ticks, and each tick would start another connect (duplicate client ids).
            car.connecting = True
            self._spawn(self._connect(car))

    def _maybe_lose_network(self, car: SimulatedCar, dt_sim: float) -> None:
        model = self.connectivity
        if car.client is None or not model.gaps_per_hour:
            return
        if car.rng.random() >= model.gaps_per_hour * dt_sim / 3600.0:
            return
        car.offline_until_s = car.vehicle.sim_time + car.rng.uniform(
            model.min_gap_s, model.max_gap_s
        )
        self.stats.offline += 1
        self.stats.connected -= 1
        client, car.client = car.client, None
        self._spawn(client.abort())

    async def _close_all(self) -> None:
        # Let in-flight publishes finish so that PUBACKs (and receipts) are counted, then
        # say goodbye. Polling what the callbacks keep, bounded by the deadline.
        deadline = time.perf_counter() + 5.0
        while time.perf_counter() < deadline and (  # noqa: ASYNC110
            self.stats.pending > 0 or self._awaiting_receipts()
        ):
            await asyncio.sleep(0.05)
        for car in self.cars:
            if car.client is not None:
                await car.client.disconnect()
                car.client = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _awaiting_receipts(self) -> bool:
        if self.receipt_timeout_s is None:
            return False
        return any(car.unreceipted for car in self.cars if car.client is not None)

    async def go_offline(self, car: SimulatedCar, sim_seconds: float) -> None:
        """Cut one car off for `sim_seconds` of simulated time (used by tests and demos)."""
        car.offline_until_s = car.vehicle.sim_time + sim_seconds
        self.stats.offline += 1
        if car.client is not None:
            self.stats.connected -= 1
            client, car.client = car.client, None
            await client.abort()


def forget_receipted(unreceipted: dict[int, tuple[bytes, float]], ranges: list[SeqRange]) -> int:
    """Drop what a receipt names from a car's unreceipted messages; how many were dropped."""
    before = len(unreceipted)
    for first, last in ranges:
        if last - first < len(unreceipted):
            for seq in range(first, last + 1):
                unreceipted.pop(seq, None)
        else:  # a wide range: walk the few waiting messages instead
            for seq in [seq for seq in unreceipted if first <= seq <= last]:
                del unreceipted[seq]
    return before - len(unreceipted)


def next_sample(vehicle: SimVehicle, dt_sim: float) -> tuple[str, dict[str, object]]:
    """Advance a vehicle by `dt_sim` simulated seconds; its time stamp and signal values."""
    vehicle.step(dt_sim)
    return _iso(vehicle.epoch_s), dict(vehicle.signals())


_TS_CACHE: dict[int, str] = {}


def _iso(epoch_s: float) -> str:
    """RFC 3339 UTC with milliseconds."""
    whole = int(epoch_s)
    head = _TS_CACHE.get(whole)
    if head is None:
        if len(_TS_CACHE) > 4096:
            _TS_CACHE.clear()
        head = _TS_CACHE[whole] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{head}.{int((epoch_s - whole) * 1000):03d}Z"
