"""Running carcloud: `carcloud up` (everything, embedded) and `carcloud worker` (some roles).

Each role is a long-running coroutine that stops when the shared `stop` event is
set. `up` starts the nats-server child first, then every role in this process;
`worker` runs the roles it is given against an already running platform, so
roles scale by process count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import nats
import uvicorn
from nats.aio.client import Client as NatsClient

from carcloud import __version__
from carcloud.api.app import create_app
from carcloud.auth.callout import AuthCallout
from carcloud.catalog import default_catalog
from carcloud.commands.dispatcher import Dispatcher
from carcloud.commands.events import CommandWatch
from carcloud.config import Settings
from carcloud.errors import ConfigError, MessagingError
from carcloud.ingest.worker import IngestWorker, consumer_config
from carcloud.messaging.accounts import vehicle_accounts
from carcloud.messaging.natsserver import (
    MqttTls,
    NatsServer,
    ServerPorts,
    check_port_free,
    render_config,
)
from carcloud.messaging.streams import TELEMETRY_STREAM, ensure_consumer, ensure_streams
from carcloud.presence.service import PresenceTracker, ServerConnections
from carcloud.registry.secrets import new_api_key
from carcloud.runtime.datadir import DataDir, PlatformSecrets
from carcloud.services import Services
from carcloud.storage import Storage, open_storage

log = logging.getLogger(__name__)

ROLES = ("callout", "presence", "ingest", "control", "api")


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the platform owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class Started:
    """What a started platform tells its caller (printed by the CLI, read by tests)."""

    settings: Settings
    operator_key: str | None
    new_operator_key: bool
    info: dict[str, Any] = field(default_factory=dict)


async def _connect(url: str, user: str, password: str, name: str) -> NatsClient:
    state = {"down": False}

    async def on_error(exc: Exception) -> None:
        if not state["down"]:
            log.warning("%s: NATS connection problem: %s", name, exc or type(exc).__name__)
            state["down"] = True

    async def on_reconnect() -> None:
        log.info("%s: reconnected to NATS", name)
        state["down"] = False

    try:
        return await nats.connect(
            url,
            user=user,
            password=password,
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            allow_reconnect=True,
            error_cb=on_error,
            reconnected_cb=on_reconnect,
        )
    except (OSError, nats.errors.Error) as exc:
        raise MessagingError(f"cannot connect to NATS at {url} as {user}: {exc}") from exc


async def ensure_operator_key(storage: Storage, data_dir: DataDir) -> tuple[str | None, bool]:
    """Create the operator API key on first start; returns (key, newly_created)."""
    existing = data_dir.operator_key()
    if existing is not None:
        return existing, False
    if await storage.list_api_keys():
        return None, False
    made = new_api_key()
    await storage.create_api_key(made.key_id, "operator", None, made.key_hash)
    data_dir.save_operator_key(made.token)
    return made.token, True


def tls_settings(settings: Settings) -> MqttTls | None:
    """The MQTT listener's TLS files, checked; None for plain MQTT on localhost."""
    if settings.tls_cert is None and settings.tls_key is None:
        return None
    if settings.tls_cert is None or settings.tls_key is None:
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    for path, flag in ((settings.tls_cert, "--tls-cert"), (settings.tls_key, "--tls-key")):
        if not path.is_file():
            raise ConfigError(f"{flag} {path} is not a readable file")
    return MqttTls(settings.tls_cert.absolute(), settings.tls_key.absolute())


def internal_mqtt_ssl(settings: Settings) -> ssl.SSLContext | None:
    """Our own MQTT connection over loopback when the listener uses TLS."""
    if settings.tls_cert is None:
        return None
    context = ssl.create_default_context()
    # The platform talks to itself on 127.0.0.1, which a car-facing certificate does not
    # name; encryption stays, the name check does not apply to our own loopback.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@contextlib.asynccontextmanager
async def embedded_server(settings: Settings, data_dir: DataDir) -> AsyncIterator[PlatformSecrets]:
    """Start the nats-server child for `carcloud up`, stop it on exit."""
    check_port_free(settings.host, settings.http_port, "--http-port")
    check_port_free(settings.host, settings.mqtt_port, "--mqtt-port")
    check_port_free(settings.host, settings.nats_port, "--nats-port")
    platform = data_dir.platform_secrets()
    config_file = data_dir.path / "nats.conf"
    config_file.write_text(
        render_config(
            ServerPorts(settings.host, settings.nats_port, settings.mqtt_port),
            data_dir.path / "nats",
            platform,
            tls=tls_settings(settings),
        ),
        encoding="utf-8",
    )
    server = NatsServer(
        config_file,
        data_dir.path / "nats.log",
        ServerPorts(settings.host, settings.nats_port, settings.mqtt_port),
    )
    await server.start()
    try:
        yield platform
    finally:
        await drop_vehicles(settings.nats_url, platform.passwords["sys"])
        await server.stop()


async def drop_vehicles(url: str, sys_password: str) -> None:
    """Disconnect every car before the embedded server stops.

    nats-server stops JetStream before it closes client connections, and in between
    it still acknowledges cars' QoS 1 messages that no stream stores any more
    (measured: over a thousand messages of a fast car). With the cars gone first, and
    unable to come back (the auth callout has stopped), every acknowledged message is
    stored; cars keep the rest and send it to the next server.
    """
    try:
        nc = await _connect(url, "sys", sys_password, "carcloud-stop")
    except MessagingError as exc:
        log.warning("cannot disconnect vehicles before stopping: %s", exc)
        return
    try:
        kicked = await ServerConnections(nc).disconnect_accounts(vehicle_accounts())
        log.info("stopping: disconnected %d vehicle connection(s) before nats-server", kicked)
    except (nats.errors.Error, ValueError) as exc:
        log.warning("could not disconnect every vehicle before stopping: %s", exc)
    finally:
        await nc.close()


async def run_roles(
    settings: Settings,
    roles: tuple[str, ...],
    stop: asyncio.Event,
    platform: PlatformSecrets,
    on_ready: Callable[[Started], None] | None = None,
    nats_url: str | None = None,
    mqtt_port: int | None = None,
) -> None:
    """Run `roles` against NATS and storage until `stop` is set."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ConfigError(
            f"unknown role(s) {', '.join(sorted(unknown))}; roles: {', '.join(ROLES)}"
        )
    url = nats_url or settings.nats_url
    data_dir = DataDir(settings.data_dir)
    storage = open_storage(settings.resolved_database_url())
    await storage.open()
    catalog = default_catalog()
    clients: list[NatsClient] = []
    tasks: list[asyncio.Task[None]] = []
    server: _QuietServer | None = None
    try:
        svc_nc = await _connect(url, "svc", platform.passwords["svc"], f"carcloud-{os.getpid()}")
        clients.append(svc_nc)
        js = svc_nc.jetstream()
        await ensure_streams(js)
        await ensure_consumer(js, TELEMETRY_STREAM, consumer_config())
        services = Services(
            storage=storage, catalog=catalog, nats=svc_nc, mqtt_url=settings.mqtt_url
        )
        if "callout" in roles:
            auth_nc = await _connect(url, "auth", platform.passwords["auth"], "carcloud-auth")
            clients.append(auth_nc)
            callout = AuthCallout(
                auth_nc, storage, platform.issuer_seed, platform.passwords["dispatch"]
            )
            await callout.start()  # before any role of ours connects over MQTT
            tasks.append(asyncio.create_task(callout.run(stop)))
        sys_nc = None
        if {"presence", "api", "control"} & set(roles):
            sys_nc = await _connect(url, "sys", platform.passwords["sys"], "carcloud-presence")
            clients.append(sys_nc)
            services.connections = ServerConnections(sys_nc)
            if "presence" in roles:
                tasks.append(asyncio.create_task(PresenceTracker(sys_nc, storage).run(stop)))
        if "control" in roles:
            dispatcher = Dispatcher(
                svc_nc,
                storage,
                settings.host,
                mqtt_port or settings.mqtt_port,
                platform.passwords["dispatch"],
                sys_nc=sys_nc,
                ssl_context=internal_mqtt_ssl(settings),
            )
            tasks.append(asyncio.create_task(dispatcher.run(stop)))
        if "ingest" in roles:
            for index in range(settings.ingest_workers):
                worker = IngestWorker(
                    svc_nc,
                    storage,
                    catalog,
                    batch_size=settings.ingest_batch,
                    max_message_bytes=settings.max_message_bytes,
                    name=f"ingest-{os.getpid()}-{index}",
                )
                tasks.append(asyncio.create_task(worker.run(stop)))
        operator_key, new_key = await ensure_operator_key(storage, data_dir)
        if "api" in roles:
            services.commands = CommandWatch(svc_nc)
            await services.commands.start()
            config = uvicorn.Config(
                create_app(services),
                host=settings.host,
                port=settings.http_port,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
            server = _QuietServer(config)
            tasks.append(asyncio.create_task(server.serve()))
            while not server.started:
                if tasks[-1].done():
                    await tasks[-1]
                    raise ConfigError(f"HTTP server could not listen on port {settings.http_port}")
                await asyncio.sleep(0.02)
        info = {
            "version": __version__,
            "pid": os.getpid(),
            "http_url": settings.http_url,
            "nats_url": url,
            "mqtt_url": settings.mqtt_url,
            "roles": list(roles),
        }
        if "api" in roles:
            data_dir.write_runtime(info)
        if on_ready is not None:
            on_ready(Started(settings, operator_key, new_key, info))
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        waiter.cancel()
    finally:
        stop.set()
        if server is not None:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            with contextlib.suppress(Exception):
                await client.drain()
        await storage.close()
        if "api" in roles:
            data_dir.clear_runtime()


def install_stop_signals(stop: asyncio.Event) -> None:
    """Ctrl-C and SIGTERM set `stop`; the platform then shuts down in order."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


Alongside = Callable[[Started, asyncio.Event], Awaitable[None]]


async def run_up(
    settings: Settings,
    on_ready: Callable[[Started], None] | None = None,
    alongside: Alongside | None = None,
) -> None:
    """`carcloud up`: the embedded nats-server and every role, until Ctrl-C.

    `alongside` runs once the platform is ready (the demo's simulator) and is
    stopped with it.
    """
    data_dir = DataDir(settings.data_dir)
    data_dir.ensure()
    stop = asyncio.Event()
    install_stop_signals(stop)
    companions: list[asyncio.Task[None]] = []

    def ready(started: Started) -> None:
        if on_ready is not None:
            on_ready(started)
        if alongside is not None:
            companions.append(asyncio.create_task(_companion(alongside(started, stop), stop)))

    try:
        async with embedded_server(settings, data_dir) as platform:
            await run_roles(settings, ROLES, stop, platform, ready)
    finally:
        await asyncio.gather(*companions, return_exceptions=True)


async def _companion(work: Awaitable[None], stop: asyncio.Event) -> None:
    """Run `work`; if it fails, say why and stop the platform rather than hide it."""
    try:
        await work
    except Exception:
        log.exception("the companion task failed; stopping")
        stop.set()


async def run_worker(
    settings: Settings, roles: tuple[str, ...], on_ready: Callable[[Started], None] | None = None
) -> None:
    """`carcloud worker`: some roles, against the platform whose data dir is given."""
    data_dir = DataDir(settings.data_dir)
    runtime = data_dir.read_runtime()
    stop = asyncio.Event()
    install_stop_signals(stop)
    await run_roles(
        settings,
        roles,
        stop,
        data_dir.platform_secrets(create=False),
        on_ready,
        nats_url=str(runtime["nats_url"]),
        mqtt_port=int(str(runtime["mqtt_url"]).rsplit(":", 1)[1]),
    )
