"""Presence from the server's own connect and disconnect events.

The server announces every client that connects to or leaves an account on
`$SYS.ACCOUNT.{account}.CONNECT` / `.DISCONNECT`; we follow the vehicle accounts'
(`carcloud.messaging.accounts`), including connections that simply
drop (the will message fires then too, but an event cannot be forgotten by a
client). For an MQTT vehicle the event's `client.user` is its VIN.

The same system connection can drop a live connection: find its connection id
with CONNZ, then ask the server that holds it to KICK it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from carcloud.messaging.accounts import is_vehicle_account, vehicle_account, vehicle_accounts
from carcloud.registry.service import RegistryService
from carcloud.timeutil import datetime_to_us, now_us
from carcloud.vin import is_valid_vin

log = logging.getLogger(__name__)

CONNECT_SUBJECT = "$SYS.ACCOUNT.*.CONNECT"
# Presence records written side by side (they share group-committed transactions).
MAX_CONCURRENT_RECORDS = 256
DISCONNECT_SUBJECT = "$SYS.ACCOUNT.*.DISCONNECT"


def vehicle_connection(msg: Msg) -> tuple[str, bool, dict[str, Any]] | None:
    """(VIN, online, event) of a connect or disconnect event of a car, else None."""
    _, _, account, kind = msg.subject.split(".", 3)
    if not is_vehicle_account(account):
        return None
    try:
        event = json.loads(msg.data)
    except ValueError:
        return None
    client = event.get("client", {})
    vin = client.get("user")
    if client.get("client_type") != "mqtt" or not isinstance(vin, str) or not is_valid_vin(vin):
        return None
    return vin, kind == "CONNECT", event


def _event_time(event: dict[str, Any], client: dict[str, Any], online: bool) -> int:
    """When a connect or disconnect happened, as the store compares them.

    A connect counts from when the server announced it (`timestamp`, after the auth
    callout said yes), not from the TCP accept (`client.start`): in a reconnect
    storm a car can be accepted over TCP before the reconciliation's snapshot time
    and authorized only after its CONNZ, and with the accept time its connect lost
    to the snapshot and the car stayed offline in the API (measured: 90 of 10,000).
    """
    raw = (
        event.get("timestamp") or client.get("start")
        if online
        else client.get("stop") or event.get("timestamp")
    )
    if not isinstance(raw, str):
        return now_us()
    # Go prints nanoseconds; Python's fromisoformat takes at most microseconds.
    head, _, rest = raw.partition(".")
    if rest:
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        raw = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime_to_us(datetime.fromisoformat(raw))
    except ValueError:
        return now_us()


class PresenceTracker:
    """Keeps vehicles' online status and last-seen time from server events.

    At start it also reconciles the stored status with the connections the
    servers actually hold: after a restart, cars that did not come back are not
    shown online, and cars that are connected are.
    """

    def __init__(self, sys_nc: NatsClient, registry: RegistryService) -> None:
        self.nc = sys_nc
        self.registry = registry
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_RECORDS)
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow connect and disconnect events until `stop` is set."""
        subs = [
            await self.nc.subscribe(CONNECT_SUBJECT, queue="carcloud-presence", cb=self._on_event),
            await self.nc.subscribe(
                DISCONNECT_SUBJECT, queue="carcloud-presence", cb=self._on_event
            ),
        ]
        log.info("presence: following %s and %s", CONNECT_SUBJECT, DISCONNECT_SUBJECT)
        try:
            await self.reconcile()
        except (nats.errors.Error, ValueError) as exc:
            log.warning("presence: cannot compare with the server's connections: %s", exc)
        try:
            await stop.wait()
        finally:
            for sub in subs:
                await sub.unsubscribe()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_event(self, msg: Msg) -> None:
        # Each event is recorded in its own task: one at a time, every record waited
        # for its own commit, and after a restart the API showed the last of 10,000
        # cars online 8 s after the server had accepted it. Side by side, the writes
        # share transactions; their order does not matter, the store compares times.
        await self._limit.acquire()  # the subscription's reader waits when too many run
        task = asyncio.create_task(self._record(msg))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._limit.release()
        if not task.cancelled() and task.exception() is not None:
            log.warning("presence: could not record an event: %s", task.exception())

    async def _record(self, msg: Msg) -> None:
        found = vehicle_connection(msg)
        if found is None:
            return
        vin, online, event = found
        at = _event_time(event, event["client"], online)
        await self.registry.record_presence(vin, online, at)
        log.info(
            "vehicle %s %s%s",
            vin,
            "online" if online else "offline",
            "" if online else f" ({event.get('reason', 'closed')})",
        )

    async def reconcile(self) -> int:
        """Make stored presence match the servers' connections now; how many changed.

        Events newer than the snapshot win (the store compares times), so a car
        that connects while this runs is not marked offline.
        """
        at = now_us()
        connected = await ServerConnections(self.nc).connected_vins(vehicle_accounts())
        changed = await self.registry.reconcile_presence(connected, at)
        if changed:
            log.info(
                "presence: %d vehicle(s) corrected to the server's connections (%d connected now)",
                len(changed),
                len(connected),
            )
        return len(changed)


class ServerConnections:
    """Drops vehicles' live connections through the system account."""

    def __init__(self, sys_nc: NatsClient, timeout: float = 1.0) -> None:
        self.nc = sys_nc
        self.timeout = timeout

    async def _gather(self, subject: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Publish a request every server answers; collect answers for `timeout` seconds."""
        inbox = self.nc.new_inbox()
        answers: list[dict[str, Any]] = []
        sub = await self.nc.subscribe(inbox)
        try:
            await self.nc.publish(subject, json.dumps(body).encode(), reply=inbox)
            deadline = asyncio.get_running_loop().time() + self.timeout
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                try:
                    msg = await sub.next_msg(timeout=left)
                except nats.errors.TimeoutError:
                    break
                answers.append(json.loads(msg.data))
        finally:
            await sub.unsubscribe()
        return answers

    async def _servers(self) -> list[str]:
        """The ids of every server that answers (one, or each node of a cluster)."""
        answers = await self._gather("$SYS.REQ.SERVER.PING", {})
        return [str(a["server"]["id"]) for a in answers if a.get("server", {}).get("id")]

    async def connected_vins(self, accounts: list[str], page: int = 1024) -> set[str]:
        """The VINs with a live MQTT connection in `accounts`, on every server."""
        found: set[str] = set()
        for server_id in await self._servers():
            for account in accounts:
                offset = 0
                while True:
                    reply = await self.nc.request(
                        f"$SYS.REQ.SERVER.{server_id}.CONNZ",
                        json.dumps(
                            {"acc": account, "limit": page, "offset": offset, "auth": True}
                        ).encode(),  # fmt: skip
                        timeout=self.timeout * 5,
                    )
                    data = json.loads(reply.data).get("data") or {}
                    connections = data.get("connections") or []
                    for conn in connections:
                        user = conn.get("authorized_user")
                        if isinstance(user, str) and is_valid_vin(user):
                            found.add(user)
                    if len(connections) < page:
                        break
                    offset += page
        return found

    async def disconnect_accounts(self, accounts: list[str], batch: int = 1024) -> int:
        """Kick every live connection in `accounts` of the server we talk to; how many.

        For the embedded server (one server answers). Asks again until none is left:
        a connection that comes back needs the auth callout, so once that is gone,
        none does.
        """
        kicked = 0
        for account in accounts:
            while True:
                reply = await self.nc.request(
                    "$SYS.REQ.SERVER.PING.CONNZ",
                    json.dumps({"acc": account, "limit": batch}).encode(),
                    timeout=self.timeout,
                )
                answer = json.loads(reply.data)
                server_id = str(answer.get("server", {}).get("id"))
                connections = (answer.get("data") or {}).get("connections") or []
                if not connections:
                    break
                await asyncio.gather(*(self._kick(server_id, int(c["cid"])) for c in connections))
                kicked += len(connections)
        return kicked

    async def _kick(self, server_id: str, cid: int) -> None:
        try:
            await self.nc.request(
                f"$SYS.REQ.SERVER.{server_id}.KICK",
                json.dumps({"cid": cid}).encode(),
                timeout=self.timeout,
            )
        except nats.errors.Error as exc:
            log.warning("cannot drop connection %s: %s", cid, exc)

    async def disconnect_vehicle(self, vin: str) -> int:
        """Kick every live connection of `vin` on every server; returns how many."""
        answers = await self._gather(
            "$SYS.REQ.SERVER.PING.CONNZ", {"acc": vehicle_account(vin), "user": vin, "auth": True}
        )
        kicked = 0
        for answer in answers:
            server_id = answer.get("server", {}).get("id")
            for conn in (answer.get("data") or {}).get("connections") or []:
                if conn.get("authorized_user") != vin:
                    continue
                await self._kick(str(server_id), int(conn["cid"]))
                kicked += 1
        return kicked
