"""The auth-callout service: NATS asks it whether a connecting vehicle may connect.

nats-server sends every connection that is not a platform service user to
`$SYS.REQ.USER.AUTH` as a signed authorization request. We answer with a signed
user JWT that places a vehicle in its vehicle account (see
`carcloud.messaging.accounts`) with publish and subscribe rights on
`vehicles.{vin}` and `vehicles.{vin}.>` only, and only for MQTT connections;
anything else gets an error, which MQTT clients see as CONNACK "not authorized".

A reconnect storm after a restart is every car at once, so each request is
answered in its own task and the check itself is cheap: a keyed hash
(`RegistryService.check_secret`, microseconds). A flood of wrong passwords must
not delay the good ones, so:

- the same wrong secret for the same stored hash is refused from a short
  negative cache, without a database read or a hash;
- hashes of the older scrypt form (tens of ms each, until the car's next good
  connect upgrades them) are checked a few at a time, and when too many wait,
  more are refused at once ("busy", the car retries) rather than queued in front
  of every other car.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from carcloud.auth import nkeyjwt
from carcloud.errors import AuthError
from carcloud.messaging import topics
from carcloud.messaging.accounts import VEHICLE_ACCOUNTS, shard_account, vehicle_account
from carcloud.registry.service import RegistryService
from carcloud.vin import is_valid_vin

log = logging.getLogger(__name__)

AUTH_SUBJECT = "$SYS.REQ.USER.AUTH"
MAX_CONCURRENT_CHECKS = 64
# Legacy scrypt checks: this many at once (each takes a core for tens of ms), and
# at most this many waiting; beyond that a car with a legacy hash is told "busy".
SLOW_CHECKS = 2
SLOW_CHECKS_WAITING = 16
# A refused (VIN, stored hash, secret) is refused again without a check this long.
NEGATIVE_TTL_S = 30.0
NEGATIVE_ENTRIES = 50_000
_RESPONSE_TTL_S = 10


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one connection attempt."""

    vin: str
    allowed: bool
    reason: str = ""
    account: str = ""  # where an allowed connection is placed


DISPATCH_USER = "carcloud-dispatch"


def dispatch_client_id(shard: int, suffix: str) -> str:
    """The MQTT client id of the cloud's connection into vehicle account `shard`."""
    return f"{DISPATCH_USER}-{shard}-{suffix}"


def dispatch_shard(client_id: str) -> int | None:
    """The vehicle account a dispatch client id names, or None if it names none."""
    head, _, rest = client_id.partition(f"{DISPATCH_USER}-")
    number = rest.split("-", 1)[0]
    if head or not number.isdigit() or int(number) >= VEHICLE_ACCOUNTS:
        return None
    return int(number)


def vehicle_permissions(vin: str) -> dict[str, Any]:
    """NATS permissions of a vehicle: its own subtree, nothing else."""
    own = [f"{topics.ROOT}.{vin}", topics.vehicle_subtree(vin)]
    return {"pub": {"allow": own}, "sub": {"allow": own}}


def dispatch_permissions() -> dict[str, Any]:
    """The cloud's MQTT identity: it may publish what goes to cars, and subscribe to nothing."""
    return {
        "pub": {
            "allow": [
                topics.ALL_COMMANDS_TO_CARS,
                topics.ALL_TWIN_DESIRED,
                topics.ALL_NOTIFICATIONS,
            ]
        },
        "sub": {"deny": [">"]},
    }


def _refusal_key(vin: str, password: str) -> bytes:
    """What a refusal is remembered by: never the password itself."""
    return hashlib.sha256(f"{vin}\n{password}".encode()).digest()


class AuthCallout:
    """Answers NATS authorization requests for vehicles."""

    def __init__(
        self,
        nc: NatsClient,
        registry: RegistryService,
        issuer_seed: str,
        dispatch_password: str = "",
    ) -> None:
        self.nc = nc
        self.dispatch_password = dispatch_password
        self.registry = registry
        self.issuer_seed = issuer_seed
        self._refused: OrderedDict[bytes, float] = OrderedDict()
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_CHECKS)
        self._slow = asyncio.Semaphore(SLOW_CHECKS)
        self._slow_waiting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None
        self.allowed = 0
        self.refused = 0

    async def start(self) -> None:
        """Begin answering (before anything that connects over MQTT starts)."""
        if self._subscription is None:
            self._subscription = await self.nc.subscribe(
                AUTH_SUBJECT, queue="carcloud-auth", cb=self._on_request
            )
            log.info("auth callout: answering %s", AUTH_SUBJECT)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve authorization requests until `stop` is set (queue group: run many)."""
        await self.start()
        try:
            await stop.wait()
        finally:
            if self._subscription is not None:
                await self._subscription.unsubscribe()
                self._subscription = None
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_request(self, msg: Msg) -> None:
        # Checks run concurrently: one slow check or database read must not hold up
        # every other car.
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        async with self._limit:
            try:
                request = nkeyjwt.decode(msg.data.decode())
                details = request.get("nats", {})
                if details.get("type") != "authorization_request":
                    raise AuthError("not an authorization request")
                if request.get("iss") != details.get("server_id", {}).get("id"):
                    raise AuthError("request not signed by the server that sent it")
            except (AuthError, UnicodeDecodeError) as exc:
                log.warning("auth callout: ignoring a request that does not verify: %s", exc)
                return
            decision = await self.decide(request["nats"])
            await msg.respond(self.response(request, decision).encode())
            if decision.allowed:
                self.allowed += 1
                log.debug("auth callout: %s allowed", decision.vin)
            else:
                self.refused += 1
                log.info("auth callout: %r refused: %s", decision.vin, decision.reason)

    async def decide(self, request: dict[str, Any]) -> Decision:
        """Whether the connection in an authorization request may connect."""
        options = request.get("connect_opts", {})
        client = request.get("client_info", {})
        vin = str(options.get("user") or "")
        password = str(options.get("pass") or "")
        if vin == DISPATCH_USER:
            return self._decide_dispatch(client, password)
        if not is_valid_vin(vin):
            return Decision(vin, False, "username is not a registered VIN")
        if client.get("type") != "mqtt":
            return Decision(vin, False, "vehicle credentials are only accepted over MQTT")
        if client.get("mqtt_id") != vin:
            # Otherwise one car could take over another car's persistent session.
            return Decision(vin, False, "the MQTT client id must be the VIN")
        refusal = _refusal_key(vin, password)
        if self._recently_refused(refusal):
            return Decision(vin, False, "wrong secret (repeated)")
        credentials = await self.registry.credentials(vin)
        if credentials is None:
            return Decision(vin, False, "unknown VIN")
        if credentials.revoked:
            return Decision(vin, False, "credentials revoked")
        if self.registry.secret_check_is_slow(credentials):
            if self._slow_waiting >= SLOW_CHECKS_WAITING:
                return Decision(vin, False, "busy: too many checks of old-format secrets")
            self._slow_waiting += 1
            try:
                async with self._slow:
                    ok = await self.registry.check_secret(credentials, password)
            finally:
                self._slow_waiting -= 1
        else:
            ok = await self.registry.check_secret(credentials, password)
        if not ok:
            self._remember_refusal(refusal)
            return Decision(vin, False, "wrong secret")
        return Decision(vin, True, account=vehicle_account(vin))

    def _recently_refused(self, key: bytes) -> bool:
        until = self._refused.get(key)
        if until is None:
            return False
        if until < time.monotonic():
            del self._refused[key]
            return False
        return True

    def _remember_refusal(self, key: bytes) -> None:
        self._refused[key] = time.monotonic() + NEGATIVE_TTL_S
        self._refused.move_to_end(key)
        while len(self._refused) > NEGATIVE_ENTRIES:
            self._refused.popitem(last=False)

    def _decide_dispatch(self, client: dict[str, Any], password: str) -> Decision:
        shard = dispatch_shard(str(client.get("mqtt_id") or ""))
        ok = (
            bool(self.dispatch_password)
            and hmac.compare_digest(password.encode(), self.dispatch_password.encode())
            and client.get("type") == "mqtt"
            and shard is not None
        )
        if not ok or shard is None:
            return Decision(DISPATCH_USER, False, "wrong credentials for the dispatch identity")
        return Decision(DISPATCH_USER, True, account=shard_account(shard))

    def response(self, request: dict[str, Any], decision: Decision) -> str:
        """The signed authorization response for a decision."""
        details = request["nats"]
        user_nkey = details["user_nkey"]
        body: dict[str, Any] = {"type": "authorization_response", "version": 2}
        if decision.allowed:
            body["jwt"] = nkeyjwt.encode(
                {
                    "aud": decision.account,
                    "sub": user_nkey,
                    "name": decision.vin,
                    "nats": {
                        **(
                            dispatch_permissions()
                            if decision.vin == DISPATCH_USER
                            else vehicle_permissions(decision.vin)
                        ),
                        "allowed_connection_types": ["MQTT"],
                        "subs": -1,
                        "data": -1,
                        "payload": -1,
                        "type": "user",
                        "version": 2,
                    },
                },
                self.issuer_seed,
            )
        else:
            body["error"] = decision.reason
        claims = {
            "aud": details["server_id"]["id"],
            "sub": user_nkey,
            "exp": int(time.time()) + _RESPONSE_TTL_S,
            "nats": body,
        }
        return nkeyjwt.encode(claims, self.issuer_seed)
