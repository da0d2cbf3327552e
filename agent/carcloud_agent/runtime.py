"""The agent's main loop: sample, keep, connect, drain, obey.

    source ──sample──▶ outbox (disk) ──drain in order──▶ MQTT ──▶ carcloud
                          ▲                                 │
           results, reported twin ◀── commands, desired ◀───┘

Samples go to the outbox first, whether the car is online or not; a separate
loop drains the outbox in order whenever a connection is up. Telemetry is
forgotten only when a commit receipt (`vehicles/{vin}/receipts`) names the seq it
was sent under: a PUBACK only marks it sent, because nats-server acknowledges
before the TELEMETRY stream has stored it. What no receipt names is sent again
after a reconnect, or when it has waited `receipt_timeout_s` for its receipt, then
twice that, up to 8 times that (15, 30, 60, 120 s by default: the simulator's policy),
so a car does not resend its whole window every 15 s into a platform that is behind;
a receipt that names something starts the wait over (carcloud stores a (vin, seq) once).
Other messages (status, results, reported twin) are forgotten at their PUBACK:
they are state the car sends again anyway, and the cloud keeps no seq for them.
Connection attempts back off exponentially with full jitter, so a fleet coming
back after an outage does not arrive all at once. After every (re)connect the
agent subscribes again and announces itself online, and the cloud re-sends its
open commands and full desired document.

Each of these loops (sampling, connection, drain, health) runs under a Supervisor:
one that raises is logged, counted in the agent's health and started again after
a short backoff, so no error ends the car's sampling for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

from carcloud_agent import __version__
from carcloud_agent.buffer import (
    PRIORITY_CONTROL,
    PRIORITY_LIVE,
    PRIORITY_TELEMETRY,
    AnswerMemory,
    Outbox,
    Outgoing,
)
from carcloud_agent.calljoin import CallJoiner, HeadUnitReplies
from carcloud_agent.carside import CarSide, apply_desired
from carcloud_agent.collector import Collector
from carcloud_agent.config import AgentConfig
from carcloud_agent.errors import ConfigError, ProtocolError
from carcloud_agent.handlers import HandledSource
from carcloud_agent.headunit import HeadUnitFeed
from carcloud_agent.mqtt import MqttClient, MqttError, Will
from carcloud_agent.protocol import topics
from carcloud_agent.protocol.backoff import Backoff, backoff_ceiling
from carcloud_agent.protocol.calls import CallReport, encode_call_report
from carcloud_agent.protocol.receipts import SeqRange, decode_receipt
from carcloud_agent.protocol.status import OFFLINE, ONLINE
from carcloud_agent.protocol.telemetry import (
    Sample,
    TelemetryBatch,
    decode_envelope,
    decode_telemetry,
    encode_batch,
    encode_sample,
    pack,
    unpacked_size,
)
from carcloud_agent.protocol.twin import Reported, encode_reported
from carcloud_agent.sources import SignalSource
from carcloud_agent.supervise import Supervisor
from carcloud_agent.timeutil import now_us, parse_rfc3339_us

log = logging.getLogger(__name__)

DRAIN_WINDOW = 256
# The longest wait for a receipt before sending again, as a multiple of the receipt timeout.
MAX_RECEIPT_WAITS = 8


BATCH_FROM = 8  # consecutive telemetry messages waiting before they travel together
BATCH_MAX = 60
BATCH_MAX_BYTES = 48 * 1024  # unpacked: well inside carcloud's 64 KiB message limit


def group_backlog(messages: list[Outgoing], telemetry_topic: str) -> list[list[Outgoing]]:
    """Runs of telemetry that wait together become one batch; everything else goes alone.

    Live data (a message or two waiting) is sent as it is; a backlog after an outage
    travels BATCH_MAX samples per message, which costs fewer packets and compresses
    better. Order is kept: a run is never reordered and never crosses another message.
    """
    groups: list[list[Outgoing]] = []
    run: list[Outgoing] = []

    def close_run() -> None:
        if len(run) < BATCH_FROM:
            groups.extend([message] for message in run)
            run.clear()
            return
        group: list[Outgoing] = []
        size = 0
        for message in run:
            grows = unpacked_size(message.payload)
            if group and (len(group) >= BATCH_MAX or size + grows > BATCH_MAX_BYTES):
                groups.append(group)
                group, size = [], 0
            group.append(message)
            size += grows
        if group:
            groups.append(group)
        run.clear()

    for message in messages:
        if message.topic == telemetry_topic:
            run.append(message)
        else:
            close_run()
            groups.append([message])
    close_run()
    return groups


def batch_payload(group: list[Outgoing], seq: int) -> bytes:
    """One batch message of the samples of several, under a seq of its own.

    A fresh seq, never one of the grouped messages': if one of them had already
    arrived alone (its acknowledgement lost), reusing its seq would make carcloud
    skip the whole batch as a repeat. A batch lost on the way is regrouped under
    another fresh seq; a sample that arrives twice is the same history row, because
    history is keyed by vehicle and vehicle time.
    """
    samples: list[Sample] = []
    for message in group:
        decoded = decode_telemetry(message.payload)
        if isinstance(decoded, TelemetryBatch):
            samples.extend(decoded.samples)
        else:
            samples.append(decoded.sample)
    return encode_batch(seq, samples)


def message_seq(payload: bytes) -> int:
    """The seq of one telemetry message of the outbox (gzip-compressed or not)."""
    return decode_envelope(payload).seq


def make_source(config: AgentConfig, resume_epoch_s: float | None = None) -> SignalSource:
    """The signal source the configuration names."""
    source = config.source
    kind = source.get("kind", "simulator")
    if kind == "can":
        from carcloud_agent.sources.can import CanSource

        return CanSource.from_config(config.vin, source, config.config_dir)
    if kind == "kuksa":
        from carcloud_agent.sources.kuksa import KuksaSource

        return KuksaSource.from_config(config.vin, source)
    try:
        # Only a car that runs the simulator loads it: it is the server's (carcloud.sim).
        from carcloud_agent.sources.simulator import SimulatorSource
    except ImportError as exc:
        raise ConfigError(
            "the simulator source needs the carcloud server package (pip install carcloud); "
            'a car uses kind = "can" or "kuksa"'
        ) from exc
    return SimulatorSource(
        config.vin,
        brand=str(source.get("brand", "volta")),
        seed=int(source.get("seed", 1)),
        speedup=float(source.get("speedup", 1.0)),
        start_epoch_s=resume_epoch_s,
    )


class Agent:
    """One car's agent."""

    def __init__(self, config: AgentConfig, source: SignalSource | None = None) -> None:
        self.config = config
        self.outbox = Outbox(config.buffer_path, config.max_bytes, config.max_age_s)
        self.interval_s = float(config.source.get("interval_s", 1.0))
        # A sped-up simulated clock runs ahead of the wall clock; after a restart it goes on
        # from where it was rather than jumping back (which would reuse vehicle times).
        last_ms = self.outbox.recall("source_clock_ms")
        resume = None if last_ms is None else max(time.time(), last_ms / 1000.0)
        self.source = source or make_source(config, resume)
        self.handlers = HandledSource(self.source)
        self.collector = Collector()
        self.headunit = HeadUnitFeed(config.headunit_path)
        self.side = CarSide(
            self.handlers,
            now_us,
            on_desired=self._apply_desired,
            extra_report=self._report,
            answers=AnswerMemory(self.outbox),
            on_card=self.headunit.deliver,
        )
        # call_join: a carcloud room joined here (the `call` extra), other meetings handed
        # to the head unit; the car reports the call on vehicles/{vin}/events.
        self.calls = CallJoiner(
            self._report_call,
            self.headunit,
            HeadUnitReplies(config.headunit_replies_path),
            config.call_confirm_s,
            config.call_microphone,
            config.call_speaker,
        )
        self.handlers.register("call_join", self.calls.handle)
        self.health_every_s = float(config.source.get("health_every_s", 60.0))
        self.last_error: str | None = None
        self.client: MqttClient | None = None
        self.connected = asyncio.Event()
        self._queued = asyncio.Event()
        self.sent = 0
        self.connects = 0
        self._acked_ids: list[int] = []
        self.telemetry_topic = topics.mqtt_topic(config.vin, topics.TELEMETRY)
        self.receipts_topic = topics.mqtt_topic(config.vin, topics.RECEIPTS)
        self._in_flight: set[int] = set()
        # Telemetry acknowledged (PUBACK) but not yet marked sent on disk: (seq, ids).
        self._acked_telemetry: list[tuple[int, list[int]]] = []
        # Telemetry on the wire, by the seq it was sent under: a receipt may beat the PUBACK.
        self._sent_seqs: dict[int, list[int]] = {}
        self.receipted = 0
        self.resent = 0
        # Resends since a receipt last named something: each waits twice as long.
        self.receipt_attempt = 0
        self.loops = Supervisor(log)

    def __repr__(self) -> str:
        return f"Agent({self.config!r})"

    # ---- the outbox ---------------------------------------------------------------------

    def keep(self, topic: str, payload: bytes, priority: int = 0) -> None:
        """Put a message in the outbox and wake the drain."""
        self.outbox.put(topic, payload, priority)
        self._queued.set()

    def sample(self) -> None:
        """Take one sample of the source and keep it as a telemetry message."""
        due = self.source.sample(self.interval_s)
        if due is None:
            return
        ts, signals = due
        messages = []
        for at, chosen in self.collector.process(ts, parse_rfc3339_us(ts) // 1000, signals):
            seq = self.outbox.next_sequence()
            messages.append(
                (
                    self.telemetry_topic,
                    encode_sample(seq, at, chosen, compress=True),
                )
            )
        # The simulated clock is kept with the messages of its sample, in one transaction:
        # a power loss between the two would otherwise resume past a sample never kept.
        memos = {}
        clock_s = getattr(self.source, "epoch_s", None)  # a simulated clock (SimulatorSource)
        if isinstance(clock_s, float | int):
            memos["source_clock_ms"] = int(clock_s * 1000)
        # Live data goes ahead of a backlog being drained, so a long outage does not
        # delay what the car does now; the backlog keeps its own order behind it.
        priority = PRIORITY_LIVE if self.connected.is_set() else PRIORITY_TELEMETRY
        if messages or memos:
            self.outbox.put_many(messages, priority, memos)
            self._queued.set()

    # ---- desired properties, campaigns and health ------------------------------------

    def _apply_desired(self, desired: dict[str, Any]) -> dict[str, str]:
        campaigns = desired.get("campaigns") or {}
        errors: dict[str, str] = {}
        if not isinstance(campaigns, dict):
            errors["campaigns"] = "campaigns must be an object of name to definition"
        else:
            failed = self.collector.update(campaigns)
            if failed:
                errors["campaigns"] = "; ".join(f"{n}: {r}" for n, r in sorted(failed.items()))
        errors.update(apply_desired(self.source, desired))
        return errors

    def health(self) -> dict[str, Any]:
        """The agent's own state, reported to the cloud (visible in the twin)."""
        stats = self.outbox.stats()
        return {
            "version": __version__,
            "buffer_depth": stats.depth,
            "buffer_bytes": stats.bytes,
            "buffer_oldest_age_s": round(stats.oldest_age_s, 1) if stats.oldest_age_s else None,
            "dropped_for_size": stats.dropped_for_size,
            "dropped_for_age": stats.dropped_for_age,
            "active_campaigns": sorted(self.collector.campaigns),
            "connects": self.connects,
            "last_error": self.last_error,
            "loop_failures": self.loops.failures,
            "last_loop_error": self.loops.last_error,
        }

    def _report(self) -> dict[str, Any]:
        return {"agent": self.health(), "campaign_status": self.collector.status() or None}

    def _report_call(self, report: CallReport) -> None:
        events = topics.mqtt_topic(self.config.vin, topics.EVENTS)
        self.keep(events, encode_call_report(report), PRIORITY_CONTROL)

    def report_health(self) -> None:
        """Send the agent's state as reported properties (through the outbox)."""
        body = encode_reported(Reported(self._report()))
        self.keep(topics.mqtt_topic(self.config.vin, topics.TWIN_REPORTED), body, PRIORITY_CONTROL)

    # ---- running ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Sample and stay connected until `stop` is set."""
        start = getattr(self.source, "start", None)
        if start is not None:
            await start()  # sources with a connection of their own (KUKSA)
        tasks = [
            asyncio.create_task(self.loops.run("sample", lambda: self._sample_loop(stop))),
            asyncio.create_task(self.loops.run("connection", lambda: self._connection_loop(stop))),
            asyncio.create_task(self.loops.run("health", lambda: self._health_loop(stop))),
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.calls.close()  # before the outbox closes: their 'left' goes in it
            if self.client is not None:
                await self.client.disconnect()
            self.outbox.close()
            aclose = getattr(self.source, "aclose", None)
            if aclose is not None:
                await aclose()
            else:
                self.source.close()

    async def _health_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.connected.wait()
            self.report_health()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.health_every_s)

    async def _sample_loop(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            self.sample()
            next_at += self.interval_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.config.tls_ca is None:
            return None
        return ssl.create_default_context(cafile=str(self.config.tls_ca))

    async def _connection_loop(self, stop: asyncio.Event) -> None:
        backoff = Backoff(self.config.reconnect_min_s, self.config.reconnect_max_s)
        while not stop.is_set():
            client = MqttClient(
                self.config.host,
                self.config.port,
                self.config.vin,
                self.config.vin,
                self.config.secret,
                will=Will(topics.mqtt_topic(self.config.vin, topics.STATUS), OFFLINE),
                keepalive_s=self.config.keepalive_s,
                on_message=self._on_message,
                ssl_context=self._ssl_context(),
                # Nothing is kept for the car in the server: what it must get (open
                # commands, the desired twin, cards) comes from the cloud's database when
                # it says it is online, after these subscriptions (docs/protocol.md).
                clean_session=True,
            )
            try:
                await client.connect()
                for topic in self.side.subscriptions():
                    if await client.subscribe(topic, qos=0) == 0x80:
                        raise MqttError(f"subscription to {topic} refused")
                # QoS 0: receipts come from a plain NATS publish; a lost one costs a resend.
                if self.config.receipts and await client.subscribe(self.receipts_topic, 0) == 0x80:
                    raise MqttError(f"subscription to {self.receipts_topic} refused")
            except (MqttError, TimeoutError) as exc:
                await client.abort()
                if backoff.attempt == 0:
                    log.warning("agent: cannot connect (%s); retrying with backoff", exc)
                wait = backoff.next()
                self.last_error = str(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
                continue
            backoff.reset()
            self.connects += 1
            self.client = client
            self.connected.set()
            log.info("agent: connected to %s:%s", self.config.host, self.config.port)
            status = topics.mqtt_topic(self.config.vin, topics.STATUS)
            drain: asyncio.Task[None] | None = None
            try:
                await client.publish(status, ONLINE)
                drain = asyncio.create_task(
                    self.loops.run("drain", functools.partial(self._drain, client))
                )
                await client.closed.wait()
            except MqttError:
                pass  # lost as soon as it came up: the same as any lost connection
            except BaseException:
                # Unexpected, or the agent stopping (cancelled): drop this connection and
                # stop its drain here, so that the loop, restarted by its supervisor, begins
                # with a fresh one rather than beside a live one, and no drain outlives the
                # outbox it writes to (it marks what was sent as it stops).
                await self._lose(client, drain)
                raise
            await self._lose(client, drain)
            if not stop.is_set():
                log.warning("agent: connection lost; buffering")

    async def _lose(self, client: MqttClient, drain: asyncio.Task[None] | None) -> None:
        """Close a connection that ended or failed, and stop its drain."""
        if not client.closed.is_set():
            await client.abort()
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
        self.connected.clear()
        self.client = None

    async def _drain(self, client: MqttClient) -> None:
        """Send the outbox in order; forget each message once the cloud has it.

        Everything sent before this connection and not named by a receipt goes again
        first: its receipt may have been lost with the link, or the cloud lost the
        message itself in a crash after acknowledging it.
        """
        self._in_flight.clear()
        self._sent_seqs.clear()
        if self.config.receipts:
            self.resent += self.outbox.requeue()
        loop = asyncio.get_running_loop()
        next_timeout_check = loop.time() + 1.0
        window = asyncio.Semaphore(DRAIN_WINDOW)
        try:
            while client.connected:
                self._forget_acknowledged()
                if self.config.receipts and loop.time() >= next_timeout_check:
                    next_timeout_check = loop.time() + 1.0
                    self._requeue_overdue()
                self._queued.clear()
                batch = [
                    m for m in self.outbox.peek(DRAIN_WINDOW * 2) if m.id not in self._in_flight
                ]
                if not batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._queued.wait(), 0.05)
                    continue
                for group in group_backlog(batch, self.telemetry_topic):
                    await window.acquire()
                    topic, payload = group[0].topic, group[0].payload
                    seq: int | None = None
                    if len(group) > 1:
                        seq = self.outbox.next_sequence()
                        payload = pack(batch_payload(group, seq))
                    elif topic == self.telemetry_topic:
                        seq = message_seq(payload)
                    try:
                        done = client.publish_nowait(topic, payload)
                    except MqttError:
                        window.release()
                        return
                    ids = [message.id for message in group]
                    self._in_flight.update(ids)
                    if seq is not None and self.config.receipts:
                        self._sent_seqs[seq] = ids
                    done.add_done_callback(self._acked(ids, window, seq))
        finally:
            self._forget_acknowledged()

    def receipt_wait_s(self) -> float:
        """How long telemetry waits for its receipt before it is sent again (backing off)."""
        timeout = self.config.receipt_timeout_s
        return backoff_ceiling(timeout, timeout * MAX_RECEIPT_WAITS, self.receipt_attempt)

    def _requeue_overdue(self, now: float | None = None) -> None:
        """Send again what waited longer than `receipt_wait_s` for its receipt."""
        oldest = self.outbox.oldest_unreceipted()
        if oldest is None:
            return
        cutoff = (time.time() if now is None else now) - self.receipt_wait_s()
        if oldest < cutoff:
            requeued = self.outbox.requeue(cutoff)
            self.resent += requeued
            log.info("agent: no receipt for %d messages; sending them again", requeued)
            # Still no receipt: the platform is behind, not the link; wait longer next time.
            self.receipt_attempt += 1
            self._queued.set()

    def _forget_acknowledged(self) -> None:
        # One transaction for many: a disk sync per message would cap the drain rate.
        ids, self._acked_ids = self._acked_ids, []
        self.outbox.acknowledge(ids)
        self._in_flight.difference_update(ids)
        telemetry, self._acked_telemetry = self._acked_telemetry, []
        self.outbox.mark_sent(telemetry)
        for seq, sent_ids in telemetry:
            self._in_flight.difference_update(sent_ids)
            self._sent_seqs.pop(seq, None)

    def _acked(
        self, message_ids: list[int], window: asyncio.Semaphore, seq: int | None
    ) -> Callable[[asyncio.Future[list[int] | None]], None]:
        def done(future: asyncio.Future[list[int] | None]) -> None:
            window.release()
            if future.cancelled():
                # Lost with the connection: sent again after the next connect.
                self._in_flight.difference_update(message_ids)
                if seq is not None:
                    self._sent_seqs.pop(seq, None)
                return
            self.sent += len(message_ids)
            if seq is not None and self.config.receipts:
                self._acked_telemetry.append((seq, message_ids))
            else:
                self._acked_ids.extend(message_ids)

        return done

    def on_receipt(self, ranges: list[SeqRange]) -> None:
        """Forget the telemetry sent under the seqs a commit receipt names."""
        named = self.outbox.receipted(ranges)
        self.receipted += named
        for seq in [seq for seq in self._sent_seqs if any(a <= seq <= b for a, b in ranges)]:
            # Its PUBACK is still to come: delete the messages now, the PUBACK finds none.
            ids = self._sent_seqs.pop(seq)
            self.outbox.acknowledge(ids)
            self.receipted += len(ids)
            named += len(ids)
        if named:
            self.receipt_attempt = 0  # the platform keeps up again: the shortest wait

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self.receipts_topic:
            try:
                self.on_receipt(decode_receipt(payload))
            except ProtocolError as exc:
                log.warning("agent: ignoring a malformed receipt: %s", exc)
            return
        # Results and reported properties go through the outbox too: they survive a drop.
        self.side.on_message(topic, payload, lambda t, p: self.keep(t, p, PRIORITY_CONTROL))
