"""The worker roles, declared once: what each needs and how it starts.

`carcloud up` starts every role in one process; `carcloud worker ROLE...` starts
some of them. Both go through `ROLES`, so a new role is one declaration here.
Every process also runs the event relay (`events`): a commit's events are
relayed by the process that wrote them, at once.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient

from carcloud.auth.callout import AuthCallout
from carcloud.calendars.sync import CalendarSyncWorker
from carcloud.calls.role import CallReports, RoomSweeper
from carcloud.commands.dispatcher import Dispatcher
from carcloud.config import Settings
from carcloud.errors import ConfigError
from carcloud.events.relay import EventRelay
from carcloud.ingest.maintenance import HistoryMaintenance
from carcloud.ingest.retention import RetentionPolicy
from carcloud.ingest.worker import IngestWorker
from carcloud.presence.service import PresenceTracker
from carcloud.productivity.role import ProductivityWorker
from carcloud.runtime.datadir import PlatformSecrets
from carcloud.runtime.role_names import ROLE_DESCRIPTIONS, USER_ROLES
from carcloud.services import Services
from carcloud.telematics.role import Deriver, DeriveWorker
from carcloud.webhooks.role import webhook_runners

# A started role: a coroutine that runs until the stop event is set.
Runner = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class RoleContext:
    """What a role may use to start: settings, secrets, services and NATS connections."""

    settings: Settings
    secrets: PlatformSecrets
    services: Services
    nats: dict[str, NatsClient]
    mqtt_addresses: list[tuple[str, int]]  # the MQTT listener(s), tried in turn
    mqtt_ssl: ssl.SSLContext | None


@dataclass(frozen=True)
class Role:
    """A kind of worker: its name, the NATS identities it needs, how it starts."""

    name: str
    description: str
    needs: tuple[str, ...]
    start: Callable[[RoleContext], Awaitable[list[Runner]]]


async def _callout(ctx: RoleContext) -> list[Runner]:
    callout = AuthCallout(
        ctx.nats["auth"],
        ctx.services.registry,
        ctx.secrets.issuer_seed,
        ctx.secrets.passwords["dispatch"],
    )
    await callout.start()  # before any role of ours connects over MQTT
    return [callout.run]


async def _presence(ctx: RoleContext) -> list[Runner]:
    return [PresenceTracker(ctx.nats["sys"], ctx.services.registry).run]


async def _control(ctx: RoleContext) -> list[Runner]:
    dispatcher = Dispatcher(
        ctx.nats["svc"],
        ctx.services.commands,
        ctx.services.twins,
        ctx.mqtt_addresses,
        ctx.secrets.passwords["dispatch"],
        sys_nc=ctx.nats["sys"],
        ssl_context=ctx.mqtt_ssl,
        cards=ctx.services.productivity.cards_to_resend,
    )
    return [dispatcher.run]


async def _ingest(ctx: RoleContext) -> list[Runner]:
    interval_ms = ctx.settings.receipt_interval_ms
    policy = RetentionPolicy(
        ctx.settings.retention_days, ctx.settings.downsampled_retention_days
    )  # fmt: skip
    maintenance = HistoryMaintenance(ctx.services.stores.telemetry, policy)
    runners: list[Runner] = [maintenance.run]
    runners.extend(
        IngestWorker(
            ctx.nats["svc"],
            ctx.services.stores.telemetry,
            ctx.services.catalog,
            batch_size=ctx.settings.ingest_batch,
            max_message_bytes=ctx.settings.max_message_bytes,
            name=f"ingest-{os.getpid()}-{index}",
            receipt_every_s=interval_ms / 1000 if interval_ms else None,
        ).run
        for index in range(ctx.settings.ingest_workers)
    )
    return runners


async def _derive(ctx: RoleContext) -> list[Runner]:
    services = ctx.services
    derivers: list[Deriver] = [services.telematics, services.geofences, services.alerts]
    derivers.append(services.motion)  # calls: video allowed only when parked
    worker = DeriveWorker(ctx.nats["svc"], derivers, services.catalog)
    return [worker.run, services.alerts.run_offline_checks]


async def _webhooks(ctx: RoleContext) -> list[Runner]:
    allow_private = ctx.settings.webhook_allow_private
    return webhook_runners(ctx.nats["svc"], ctx.services.webhooks, allow_private)


async def _calendar(ctx: RoleContext) -> list[Runner]:
    return [CalendarSyncWorker(ctx.services.calendars.syncer).run]


async def _productivity(ctx: RoleContext) -> list[Runner]:
    return [ProductivityWorker(ctx.services.productivity).run]


async def _api(ctx: RoleContext) -> list[Runner]:
    # The HTTP server is started by the platform, which owns its lifecycle; this process
    # also holds the media server's session, so it follows call reports and closes rooms.
    calls = CallReports(ctx.nats["svc"], ctx.services.calls)
    return [calls.run, RoomSweeper(ctx.services.rooms).run]


async def _events(ctx: RoleContext) -> list[Runner]:
    return [EventRelay(ctx.nats["svc"], ctx.services.stores.events).run]


# The API is started by the platform itself (it needs the HTTP server's lifecycle).
_STARTS: dict[str, tuple[tuple[str, ...], Callable[[RoleContext], Awaitable[list[Runner]]]]] = {
    "callout": (("auth",), _callout),
    "presence": (("sys",), _presence),
    "control": (("sys",), _control),
    "ingest": ((), _ingest),
    "derive": ((), _derive),
    "events": ((), _events),
    "webhooks": ((), _webhooks),
    "calendar": ((), _calendar),
    "productivity": ((), _productivity),
    "api": (("sys",), _api),
}
# In start order (role_names.ROLE_DESCRIPTIONS): the callout first, so that our own MQTT
# connections are accepted.
ROLES: dict[str, Role] = {
    name: Role(name, description, *_STARTS[name]) for name, description in ROLE_DESCRIPTIONS.items()
}


def check_roles(names: tuple[str, ...]) -> tuple[str, ...]:
    """The roles to run, in start order, with the relay; ConfigError for an unknown name."""
    unknown = set(names) - set(USER_ROLES)
    if unknown:
        raise ConfigError(
            f"unknown role(s) {', '.join(sorted(unknown))}; roles: {', '.join(USER_ROLES)}"
        )
    return tuple(name for name in ROLES if name in names or name == "events")
