"""The control role: gets commands and desired twins to cars, and follows what cars answer.

To the car: the cloud holds its own MQTT connections (identity `carcloud-dispatch`,
one into each vehicle account, see `carcloud.messaging.accounts`) and publishes
QoS 1 into the vehicle's persistent session, so a message for a car
that is offline waits in the session until it is back. The database is the
durable truth: every time a car says it is online (its `status` message, or the
server's connect event), its open commands and its full desired document are
sent again, so nothing is missed even if the session was lost. Cars recognise
duplicates by command id and desired version.

From the car: command results, reported properties and status messages are
captured by the VEHICLE_EVENTS stream and pulled here with a durable consumer:
nothing a car answers is lost while this role is down.

Every command status change is a durable `command.status_changed` event, written
by the commands service together with the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import ssl
from collections.abc import Awaitable, Callable, Sequence

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from carcloud.auth.callout import DISPATCH_USER, dispatch_client_id
from carcloud.commands.models import CommandRecord
from carcloud.commands.redelivery import Unanswered
from carcloud.commands.service import CommandService
from carcloud.errors import CarcloudError, ProtocolError
from carcloud.messaging import topics
from carcloud.messaging.accounts import VEHICLE_ACCOUNTS, vehicle_shard
from carcloud.messaging.dispatch import command_message, desired_message
from carcloud.messaging.puller import BatchPuller
from carcloud.messaging.streams import VEHICLE_EVENTS_STREAM, ensure_consumer
from carcloud.presence.service import CONNECT_SUBJECT, vehicle_connection
from carcloud.twins.models import Twin
from carcloud.twins.service import TwinService
from carcloud.vin import is_valid_vin
from carcloud_agent.mqtt import MqttClient, MqttError
from carcloud_agent.protocol.backoff import Backoff
from carcloud_agent.protocol.commands import ResultStatus, decode_result
from carcloud_agent.protocol.status import decode_status
from carcloud_agent.protocol.twin import decode_reported

log = logging.getLogger(__name__)

CONTROL_CONSUMER = "control"
# What each answer of the car makes of the command.
RESULT_STATUSES: dict[ResultStatus, str] = {
    "received": "delivered",
    "succeeded": "succeeded",
    "failed": "failed",
}
# The cards (notifications) a car should still show, for its resync: e.g.
# ProductivityService.cards_to_resend.
CardSource = Callable[[str], Awaitable[list[bytes]]]
# A car that just connected subscribes again within milliseconds; give it this long.
RESYNC_DELAY_S = 1.0


def control_consumer_config() -> ConsumerConfig:
    """The durable consumer of vehicle events shared by every control process."""
    return ConsumerConfig(
        durable_name=CONTROL_CONSUMER,
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=10.0,
        max_deliver=-1,
        max_ack_pending=10_000,
    )


class Dispatcher:
    """Sends to cars and follows their answers; run one or several."""

    def __init__(
        self,
        nc: NatsClient,
        commands: CommandService,
        twins: TwinService,
        mqtt_addresses: Sequence[tuple[str, int]],
        dispatch_password: str,
        sweep_s: float = 1.0,
        sys_nc: NatsClient | None = None,
        ssl_context: ssl.SSLContext | None = None,
        cards: CardSource | None = None,
    ) -> None:
        self.nc = nc
        self.cards = cards
        self.ssl_context = ssl_context
        self.sys_nc = sys_nc
        self.commands = commands
        self.twins = twins
        if not mqtt_addresses:
            raise ValueError("the control role needs at least one MQTT listener")
        # Several on a NATS cluster: a connection that fails or is lost tries the next.
        self.mqtt_addresses = list(mqtt_addresses)
        self.password = dispatch_password
        self.sweep_s = sweep_s
        # One MQTT connection per vehicle account: a car's session lives in its own.
        self.clients: dict[int, MqttClient] = {}
        self._pending: set[asyncio.Task[None]] = set()
        # Vehicle accounts whose delivery connection came up and awaits one resend pass.
        self._to_resend: set[int] = set()
        self._resending = asyncio.Lock()
        self.sent = 0
        # Commands sent to a car that is there, sent again while nothing final is heard.
        self.unanswered = Unanswered()
        self._nats_reconnects = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set."""
        js = self.nc.jetstream()
        await ensure_consumer(js, VEHICLE_EVENTS_STREAM, control_consumer_config())
        dispatch_sub = await self.nc.subscribe(
            topics.DISPATCH, queue="carcloud-control", cb=self._on_dispatch
        )
        connects = None
        if self.sys_nc is not None:
            connects = await self.sys_nc.subscribe(
                CONNECT_SUBJECT, queue="carcloud-control", cb=self._on_connect
            )
        tasks = [
            *(
                asyncio.create_task(self._keep_connected(stop, shard))
                for shard in range(VEHICLE_ACCOUNTS)
            ),
            asyncio.create_task(self._follow_vehicles(stop)),
            asyncio.create_task(self._sweep(stop)),
        ]
        log.info("control: dispatching commands and twins")
        try:
            await stop.wait()
        finally:
            await dispatch_sub.unsubscribe()
            if connects is not None:
                await connects.unsubscribe()
            for task in [*tasks, *self._pending]:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for client in list(self.clients.values()):
                await client.disconnect()

    # ---- the cloud's MQTT connection ---------------------------------------------------

    async def _keep_connected(self, stop: asyncio.Event, shard: int) -> None:
        backoff = Backoff(0.5, 10.0)
        # Vehicle accounts start on different listeners of a cluster, spreading the load.
        attempt = shard
        while not stop.is_set():
            host, port = self.mqtt_addresses[attempt % len(self.mqtt_addresses)]
            attempt += 1
            client = MqttClient(
                host,
                port,
                dispatch_client_id(shard, f"{os.getpid()}-{secrets.token_hex(3)}"),
                DISPATCH_USER,
                self.password,
                clean_session=True,
                ssl_context=self.ssl_context,
            )
            try:
                await client.connect()
            except MqttError as exc:
                if attempt % len(self.mqtt_addresses) != shard % len(self.mqtt_addresses):
                    continue  # another listener of the cluster first, at once
                delay = backoff.next()
                log.warning(
                    "control: cannot connect to MQTT %s:%d (vehicle account %d: %s); "
                    "retry in %.1f s",
                    host, port, shard, exc, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            self.clients[shard] = client
            log.debug("control: MQTT delivery into vehicle account %d is up", shard)
            await self._resend_all(shard)
            await client.closed.wait()
            self.clients.pop(shard, None)
            if not stop.is_set():
                log.warning("control: MQTT connection (vehicle account %d) lost", shard)

    async def _publish(self, vin: str, topic: str, payload: bytes) -> bool:
        """Hand a QoS 1 message to the server without waiting for its PUBACK.

        Waiting would put one round trip per command in series. A message the server
        never took is not lost: the database keeps it open, and the car's next
        'online' or our own reconnect sends it again.
        """
        client = self.clients.get(vehicle_shard(vin))
        if client is None:
            return False
        try:
            done = await client.publish(topic, payload, qos=1)
        except MqttError as exc:
            log.warning("control: could not hand %s to the server: %s", topic, exc)
            return False

        def taken(future: asyncio.Future[list[int] | None]) -> None:
            if future.cancelled():
                log.warning("control: connection lost before the server took %s", topic)
            else:
                self.sent += 1

        done.add_done_callback(taken)
        return True

    async def send_command(self, command: CommandRecord) -> bool:
        """Publish one command into its vehicle's session."""
        if command.is_final:
            return False
        topic = topics.mqtt_topic(command.vin, f"{topics.COMMANDS}/{command.id}")
        return await self._publish(command.vin, topic, command_message(command))

    async def send_desired(self, twin: Twin) -> bool:
        """Publish a vehicle's full desired document."""
        if twin.desired_version == 0:
            return False
        return await self._publish(
            twin.vin, topics.mqtt_topic(twin.vin, topics.TWIN_DESIRED), desired_message(twin)
        )

    async def resync(self, vin: str) -> None:
        """Everything a vehicle should have: open commands in order, then its desired twin,
        then the cards it should still show (sent while it was away, or shown already:
        the car drops an id it has)."""
        for command in await self.commands.open_commands(vin):
            if await self.send_command(command):
                self.unanswered.sent(vin, command.id)
        with contextlib.suppress(CarcloudError):
            await self.send_desired(await self.twins.get(vin, None))
        if self.cards is not None:
            with contextlib.suppress(CarcloudError):
                topic = topics.mqtt_topic(vin, topics.NOTIFICATIONS)
                for card in await self.cards(vin):
                    await self._publish(vin, topic, card)

    async def _redeliver(self) -> None:
        """Send again what a car was sent and never answered for good (see redelivery.py).

        One read for every command due: most are final by then (answered through
        another control process), and are forgotten.
        """
        due = self.unanswered.due()
        if not due:
            return
        still_open = await self.commands.open_commands(ids=[command_id for _, command_id in due])
        for command in still_open:
            await self.send_command(command)
        open_ids = {command.id for command in still_open}
        for _, command_id in due:
            if command_id not in open_ids:
                self.unanswered.forget(command_id)

    async def _resend_all(self, *shards: int) -> None:
        """After our own (re)connect into vehicle accounts (MQTT, or NATS where dispatch
        requests arrive): what may not have got there.

        Accounts that connect together (all of them at start) share one read of the
        database: a pass takes every account that has come up while the one before ran.
        """
        self._to_resend.update(shards)
        async with self._resending:
            taken, self._to_resend = self._to_resend, set()
            if not taken:
                return  # an earlier pass took this account along
            for command in await self.commands.open_commands():
                if vehicle_shard(command.vin) in taken:
                    await self.send_command(command)
            for twin in await self.twins.unsynced():
                if vehicle_shard(twin.vin) in taken:
                    await self.send_desired(twin)

    async def _on_connect(self, msg: Msg) -> None:
        """A vehicle connected: resync it shortly (after it has subscribed again)."""
        found = vehicle_connection(msg)
        if found is None:
            return
        vin = found[0]

        async def later() -> None:
            await asyncio.sleep(RESYNC_DELAY_S)
            with contextlib.suppress(CarcloudError):
                await self.resync(vin)

        task = asyncio.create_task(later())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # ---- requests from the API ---------------------------------------------------------

    async def _on_dispatch(self, msg: Msg) -> None:
        try:
            request = json.loads(msg.data)
            vin = str(request["vin"])
            if request.get("notification"):
                # A card for the driver (carcloud.productivity): published as it comes.
                topic = topics.mqtt_topic(vin, topics.NOTIFICATIONS)
                await self._publish(vin, topic, str(request["notification"]).encode())
            elif request.get("command_id"):
                command_id = str(request["command_id"])
                topic = topics.mqtt_topic(vin, f"{topics.COMMANDS}/{command_id}")
                if request.get("message"):
                    await self._publish(vin, topic, str(request["message"]).encode())
                else:
                    await self.send_command(await self.commands.record(vin, command_id))
                self.unanswered.sent(vin, command_id)
            else:
                await self.send_desired(await self.twins.get(vin, None))
        except (ValueError, KeyError, CarcloudError) as exc:
            log.warning("control: bad dispatch request %r: %s", msg.data[:200], exc)

    # ---- answers from vehicles ---------------------------------------------------------

    async def _follow_vehicles(self, stop: asyncio.Event) -> None:
        puller = BatchPuller(self.nc, VEHICLE_EVENTS_STREAM, CONTROL_CONSUMER, 200)
        await puller.start()
        try:
            while not stop.is_set():
                try:
                    batch = await puller.next_batch(wait_s=0.5)
                except nats.errors.Error as exc:
                    log.warning("control: cannot pull vehicle events: %s", exc)
                    await asyncio.sleep(0.5)
                    continue
                # Each car's messages in order; different cars' side by side, so that
                # their writes share transactions.
                by_vin: dict[str, list[Msg]] = {}
                for msg in batch:
                    by_vin.setdefault(msg.subject.split(".", 2)[1], []).append(msg)
                await asyncio.gather(*(self._handle_in_order(msgs) for msgs in by_vin.values()))
        finally:
            await puller.stop()

    async def _handle_in_order(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            try:
                await self.handle_vehicle_message(msg.subject, msg.data)
            except CarcloudError as exc:
                log.error("control: cannot store %s, will retry: %s", msg.subject, exc)
                await msg.nak(delay=1.0)
                continue
            await msg.ack()

    async def handle_vehicle_message(self, subject: str, data: bytes) -> None:
        """A command result, reported properties, or a status message from a car."""
        parts = subject.split(".")
        if len(parts) < 3 or not is_valid_vin(parts[1]):
            return
        vin, channel = parts[1], parts[2:]
        try:
            if len(channel) == 3 and channel[0] == topics.COMMANDS and channel[2] == "result":
                result = decode_result(data)
                await self.commands.record_answer(
                    vin, channel[1], RESULT_STATUSES[result.status], result.reason
                )
                if result.status != "received":
                    self.unanswered.forget(channel[1])  # final: nothing to send again
            elif channel == ["twin", "reported"]:
                report = decode_reported(data)
                await self.twins.record_reported(vin, dict(report.reported), report.desired_version)
            elif channel == [topics.STATUS] and decode_status(data).online:
                await self.resync(vin)
        except ProtocolError as exc:
            # Decoding failed before anything was stored: nothing to retry, say it once.
            log.info("control: %s sent a malformed message on %s: %s", vin, subject, exc)

    # ---- time to live ------------------------------------------------------------------

    async def _sweep(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.commands.expire_due()
                await self._redeliver()
            except CarcloudError as exc:
                log.warning("control: expiry sweep failed: %s", exc)
            reconnects = int(self.nc.stats["reconnects"])
            if reconnects != self._nats_reconnects:
                # Dispatch requests published while we were away reached nobody.
                self._nats_reconnects = reconnects
                await self._resend_all(*range(VEHICLE_ACCOUNTS))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.sweep_s)
