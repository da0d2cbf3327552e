"""The calls slice's workers, run by the process that serves the API (it holds the media
server's session): cars' call reports from the VEHICLE_REPORTS stream, and the closing
of rooms that stayed empty."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from carcloud.calls.rooms import RoomService
from carcloud.calls.service import CallService
from carcloud.errors import CarcloudError, ProtocolError
from carcloud.messaging.puller import BatchPuller
from carcloud.messaging.streams import VEHICLE_REPORTS_STREAM, ensure_consumer
from carcloud_agent.protocol.calls import decode_call_report

log = logging.getLogger(__name__)

REPORTS_CONSUMER = "calls"
SWEEP_S = 1.0


def reports_consumer_config() -> ConsumerConfig:
    """The durable consumer of vehicles' reports shared by every API process."""
    return ConsumerConfig(
        durable_name=REPORTS_CONSUMER,
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=10.0,
        max_deliver=-1,
        max_ack_pending=10_000,
    )


class CallReports:
    """Follows what cars report about their calls."""

    def __init__(self, nc: NatsClient, calls: CallService) -> None:
        self.nc = nc
        self.calls = calls

    async def handle(self, msg: Msg) -> None:
        """One report; a malformed one is dropped with a log line, a storage error retried."""
        vin = msg.subject.split(".")[1]
        try:
            await self.calls.record_report(vin, decode_call_report(msg.data))
        except ProtocolError as exc:
            log.info("calls: %s sent a report that is not a call report: %s", vin, exc)
        except CarcloudError as exc:
            log.warning("calls: cannot store %s's report, will retry: %s", vin, exc)
            await msg.nak(delay=1.0)
            return
        await msg.ack()

    async def run(self, stop: asyncio.Event) -> None:
        """Pull reports until `stop`."""
        await ensure_consumer(
            self.nc.jetstream(), VEHICLE_REPORTS_STREAM, reports_consumer_config()
        )
        puller = BatchPuller(self.nc, VEHICLE_REPORTS_STREAM, REPORTS_CONSUMER, 100)
        await puller.start()
        try:
            while not stop.is_set():
                try:
                    batch = await puller.next_batch(wait_s=0.5)
                except nats.errors.Error as exc:
                    log.warning("calls: cannot pull reports: %s", exc)
                    await asyncio.sleep(0.5)
                    continue
                for msg in batch:
                    await self.handle(msg)
        finally:
            await puller.stop()


class RoomSweeper:
    """Marks gone the participants the media server no longer has (whichever API process
    held their connection), and closes rooms that stayed empty for their time
    (`--room-close-after-s`)."""

    def __init__(self, rooms: RoomService, every_s: float = SWEEP_S) -> None:
        self.rooms = rooms
        self.every_s = every_s

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until `stop`; a failure is logged once, and once when it recovers."""
        failing = False
        while not stop.is_set():
            try:
                await self.rooms.reconcile()
                await self.rooms.close_idle()
                if failing:
                    log.info("rooms: closing empty rooms works again")
                failing = False
            except CarcloudError as exc:
                if not failing:
                    log.warning(
                        "rooms: cannot follow the media server or close empty rooms: %s", exc
                    )
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)
