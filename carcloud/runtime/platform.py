"""Running carcloud: `carcloud up` (everything, embedded) and `carcloud worker` (some roles).

Each role is a long-running coroutine that stops when the shared `stop` event is
set. `up` starts the nats-server child first, then every role in this process;
`worker` runs the roles it is given against an already running platform, so
roles scale by process count.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import nats
import uvicorn
from nats.aio.client import Client as NatsClient

from carcloud import __version__
from carcloud.api.app import create_app
from carcloud.calls.rooms import RoomLimits
from carcloud.catalog import default_catalog
from carcloud.commands.events import CommandWatch
from carcloud.config import Settings, mask_url, mqtt_addresses, nats_servers
from carcloud.errors import CarcloudError, ConfigError, MessagingError
from carcloud.ingest.worker import consumer_config
from carcloud.media.audiobridge import AudioBridge
from carcloud.media.janus import MediaEndpoint, media_server
from carcloud.messaging.accounts import vehicle_accounts
from carcloud.messaging.natsserver import (
    MqttTls,
    NatsServer,
    ServerPorts,
    check_port_free,
    file_store_limit,
    render_config,
)
from carcloud.messaging.streams import TELEMETRY_STREAM, ensure_consumer, ensure_streams
from carcloud.messaging.tls import ClientTls, client_tls, connection_problem, readable_file
from carcloud.presence.service import ServerConnections
from carcloud.runtime.datadir import DataDir, PlatformSecrets, load_platform_secrets
from carcloud.runtime.role_names import USER_ROLES
from carcloud.runtime.roles import ROLES, RoleContext, Runner, check_roles
from carcloud.services import Services, build_services
from carcloud.storage import open_storage
from carcloud.telematics.models import DetectionSettings

log = logging.getLogger(__name__)


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


async def _connect(
    url: str, user: str, password: str, name: str, tls: ClientTls | None = None
) -> NatsClient:
    """A NATS connection that reconnects for ever, to any server of `url` (a list on a cluster).

    `tls` (see `carcloud.messaging.tls.client_tls`) for tls:// servers. The first
    connection is tried for ever too: see `_connect_unless_stopped` for giving up.
    """
    servers = nats_servers(url)
    state = {"down": False}

    async def on_error(exc: Exception) -> None:
        if not state["down"]:
            log.warning("%s: NATS connection problem: %s", name, connection_problem(exc, tls))
            state["down"] = True

    async def on_reconnect() -> None:
        log.info("%s: reconnected to NATS", name)
        state["down"] = False

    try:
        return await nats.connect(
            servers,
            user=user,
            password=password,
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            allow_reconnect=True,
            error_cb=on_error,
            reconnected_cb=on_reconnect,
            tls=None if tls is None else tls.context,
            tls_handshake_first=tls is not None and tls.handshake_first,
        )
    except (OSError, nats.errors.Error) as exc:
        raise MessagingError(f"cannot connect to NATS at {mask_url(url)} as {user}: {exc}") from exc


# How long a cancelled first connection may take to end before it is cancelled again.
CANCEL_AGAIN_S = 0.5


class StoppedConnecting(CarcloudError):
    """`stop` was set before the first connection to NATS was made."""


async def _connect_unless_stopped(
    stop: asyncio.Event, url: str, user: str, password: str, name: str, tls: ClientTls | None
) -> NatsClient:
    """`_connect`, given up (StoppedConnecting) as soon as `stop` is set (Ctrl-C, SIGTERM).

    A first connection is retried for ever (a server down, a CA that does not match);
    the process must still stop when asked.
    """
    connecting = asyncio.create_task(_connect(url, user, password, name, tls))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([connecting, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        # nats-py can lose a cancellation: when it comes as a TLS handshake fails
        # (asyncio.wait_for of Python 3.11 then raises the handshake's error instead), it
        # tries the next server. Cancel until it ends, its socket closed before we go on.
        while not connecting.done():
            connecting.cancel()
            await asyncio.wait([connecting], timeout=CANCEL_AGAIN_S)
    if connecting.cancelled():
        raise StoppedConnecting(
            f"asked to stop while {name} was still trying to connect to NATS at "
            f"{mask_url(url)}: stopped without having connected"
        )
    return connecting.result()


async def ensure_operator_key(services: Services, data_dir: DataDir) -> tuple[str | None, bool]:
    """Create the operator API key on first start; returns (key, newly_created)."""
    existing = data_dir.operator_key()
    if existing is not None:
        return existing, False
    if await services.registry.list_api_keys():
        return None, False
    _, made = await services.registry.create_api_key("operator", None)
    data_dir.save_operator_key(made.token)
    return made.token, True


class RoleCrashed(CarcloudError):
    """A role ended with an error; the process stops rather than run without it."""


async def _supervised(name: str, runner: Runner, stop: asyncio.Event) -> None:
    """Run a role; a crash is logged once with its cause and stops the whole process."""
    try:
        await runner(stop)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("role %s crashed; stopping this process", name)
        stop.set()
        raise RoleCrashed(f"role {name} crashed: {type(exc).__name__}: {exc}") from exc


def tls_settings(settings: Settings) -> MqttTls | None:
    """The MQTT listener's TLS files, checked; None for plain MQTT on localhost."""
    if settings.tls_cert is None and settings.tls_key is None:
        return None
    if settings.tls_cert is None or settings.tls_key is None:
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    return MqttTls(
        readable_file(settings.tls_cert, "--tls-cert"), readable_file(settings.tls_key, "--tls-key")
    )


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
            max_file_store=file_store_limit(data_dir.path / "nats"),
        ),
        encoding="utf-8",
    )
    server = NatsServer(
        config_file,
        data_dir.path / "nats.log",
        ServerPorts(settings.host, settings.nats_port, settings.mqtt_port),
        store_dir=data_dir.path / "nats",
    )
    await server.start()
    try:
        yield platform
    finally:
        await drop_vehicles(settings.nats_url, platform.passwords["sys"])
        await server.stop()


@contextlib.asynccontextmanager
async def external_server(settings: Settings, data_dir: DataDir) -> AsyncIterator[PlatformSecrets]:
    """`carcloud up --nats URL`: an existing NATS server or cluster, no child of ours.

    That NATS must carry carcloud's accounts and auth callout with the passwords of
    this platform's secrets (`carcloud nats-config` writes such a config). It keeps
    running when carcloud stops, and so do the cars' connections to it.
    """
    if not settings.mqtt_url_given:
        raise ConfigError(
            "--nats needs --mqtt-url (CARCLOUD_MQTT_URL) too: the MQTT listener(s) of that "
            "NATS, where the control role reaches the cars"
        )
    check_port_free(settings.host, settings.http_port, "--http-port")
    yield service_secrets(settings, data_dir)


def service_secrets(settings: Settings, data_dir: DataDir) -> PlatformSecrets:
    """The services' NATS passwords: --secrets-file, else the data dir's secrets.json."""
    if settings.secrets_file is not None:
        return load_platform_secrets(settings.secrets_file)
    if data_dir.secrets_file.exists():
        return data_dir.platform_secrets(create=False)
    raise ConfigError(
        f"no platform secrets: {data_dir.secrets_file} does not exist; pass "
        "--secrets-file (CARCLOUD_SECRETS_FILE) with a copy of the platform's secrets.json"
    )


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


def freeze_startup_heap() -> None:
    """Leave what start-up made (modules, classes, the app: about 100,000 objects) out
    of the cyclic garbage collector's passes from now on.

    Ingest allocates tens of thousands of objects per batch, so the collector's full
    passes come every few batches; each walked the whole heap, about 45 ms in an ingest
    process, a fifth of its CPU while it stored (docs/benchmarks.md, "The ingest
    worker's CPU per message"). Garbage of start-up is collected first; objects made
    later are collected as before. `run_roles` unfreezes when it returns.
    """
    gc.collect()
    gc.freeze()


async def run_roles(
    settings: Settings,
    roles: tuple[str, ...],
    stop: asyncio.Event,
    platform: PlatformSecrets,
    on_ready: Callable[[Started], None] | None = None,
    media: MediaEndpoint | None = None,
) -> None:
    """Run `roles` (see `carcloud.runtime.roles`) until `stop` is set.

    The API process reaches the media server of `media` (or of --janus-url) for the
    audio rooms; without one, rooms answer 503 saying how to get one.

    NATS and MQTT are where `settings` says (`nats_url`, `mqtt_url`: one server, or
    every server of a cluster); streams keep `settings.stream_replicas` copies.

    Every role runs in one task group: a role that crashes is logged once, stops
    the others, and ends the process with a message that names it.
    """
    names = check_roles(roles)
    url = settings.nats_url
    listeners = mqtt_addresses(settings.mqtt_url)
    data_dir = DataDir(settings.data_dir)
    stores = open_storage(settings.resolved_database_url())
    await stores.open()
    catalog = default_catalog()
    clients: list[NatsClient] = []
    tasks: list[asyncio.Task[None]] = []
    server: _QuietServer | None = None
    services: Services | None = None
    bridge: AudioBridge | None = None
    if media is None and settings.janus_url is not None:
        media = MediaEndpoint(settings.janus_url, settings.janus_secret)
    try:
        tls = client_tls(settings)
        svc_nc = await _connect_unless_stopped(
            stop, url, "svc", platform.passwords["svc"], f"carcloud-{os.getpid()}", tls
        )
        clients.append(svc_nc)
        js = svc_nc.jetstream()
        await ensure_streams(js, settings.stream_replicas)
        await ensure_consumer(js, TELEMETRY_STREAM, consumer_config())
        connections: dict[str, NatsClient] = {"svc": svc_nc}
        for identity in sorted({need for name in names for need in ROLES[name].needs}):
            client = await _connect_unless_stopped(
                stop,
                url,
                identity,
                platform.passwords[identity],
                f"carcloud-{identity}-{os.getpid()}",
                tls,
            )
            clients.append(client)
            connections[identity] = client
        watch = CommandWatch(svc_nc) if "api" in names else None
        services = build_services(
            stores,
            catalog,
            nats=svc_nc,
            connections=ServerConnections(connections["sys"]) if "sys" in connections else None,
            watch=watch,
            mqtt_url=settings.mqtt_url,
            vehicle_pepper=platform.vehicle_pepper,
            room_limits=RoomLimits(
                settings.max_rooms_per_brand,
                settings.max_participants_per_brand,
                settings.rejoin_grace_s,
                settings.room_close_after_s,
            ),
            detection=DetectionSettings.of(settings),
        )
        if media is not None and "api" in names:
            bridge = AudioBridge(media, on_hangup=services.rooms.media_hangup)
            services.rooms.attach(bridge, settings.http_url)
        context = RoleContext(
            settings,
            platform,
            services,
            connections,
            listeners,
            internal_mqtt_ssl(settings),
        )
        for name in names:
            for runner in await ROLES[name].start(context):
                tasks.append(asyncio.create_task(_supervised(name, runner, stop)))
        # The process that serves the API keeps the first operator key in its data dir;
        # a worker on another host has no data dir of its own to keep it in.
        operator_key, new_key = (
            await ensure_operator_key(services, data_dir) if "api" in names else (None, False)
        )
        if watch is not None:
            await watch.start()
            await services.events.start(svc_nc)
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
            "roles": [name for name in names if name in USER_ROLES],
        }
        if "api" in names:
            data_dir.write_runtime(info)
        freeze_startup_heap()
        if on_ready is not None:
            on_ready(Started(settings, operator_key, new_key, info))
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        waiter.cancel()
    except StoppedConnecting as exc:
        log.warning("%s", exc)
    finally:
        gc.unfreeze()
        stop.set()
        if server is not None:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            with contextlib.suppress(Exception):
                await client.drain()
        if bridge is not None:
            await bridge.close()
        if services is not None:
            await services.events.stop()
        await stores.close()
        if "api" in names:
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
    """`carcloud up`: the embedded nats-server (or the one of --nats) and every role, until Ctrl-C.

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

    server = (
        external_server(settings, data_dir)
        if settings.nats_url_given
        else embedded_server(settings, data_dir)
    )
    try:
        async with server as platform, media_server(settings, data_dir.path) as media:
            await run_roles(settings, USER_ROLES, stop, platform, ready, media)
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
    """`carcloud worker`: some roles, against a running platform.

    A NATS URL and a secrets file given in `settings` (flags or CARCLOUD_* variables)
    are used as they are: a worker on another host needs no data dir. What is not
    given comes from the data dir of a platform on this host (runtime.json,
    secrets.json), as before.
    """
    data_dir = DataDir(settings.data_dir)
    nats_url, mqtt_url = settings.nats_url, settings.mqtt_url
    if not settings.nats_url_given:
        if not data_dir.runtime_file.exists():
            raise ConfigError(
                f"no platform has run in {data_dir.path}: pass --nats URL (CARCLOUD_NATS_URL) "
                "for a platform elsewhere, or --data-dir of a platform on this host"
            )
        runtime = data_dir.read_runtime()
        nats_url = str(runtime["nats_url"])
        if not settings.mqtt_url_given:
            mqtt_url = str(runtime["mqtt_url"])
    platform = service_secrets(settings, data_dir)
    if settings.database_url is None and not (data_dir.path / "carcloud.db").exists():
        # Without this, SQLite would quietly make an empty database of the worker's own
        # and ingest would acknowledge telemetry into it.
        raise ConfigError(
            f"no database: {data_dir.path} has no carcloud.db; "
            "pass --database URL (CARCLOUD_DATABASE_URL)"
        )
    mqtt = urlsplit(mqtt_url)
    if "control" in roles and mqtt.scheme == "mqtts" and settings.tls_cert is None:
        # The control role's MQTT connection takes its TLS from --tls-cert.
        raise ConfigError(
            f"the control role needs --tls-cert (CARCLOUD_TLS_CERT) to connect to {mqtt_url}"
        )
    if "api" in roles:
        data_dir.ensure()  # the API process records where it listens for the CLI
    log.info("worker %s: NATS %s, MQTT %s", ",".join(roles), mask_url(nats_url), mqtt_url)
    stop = asyncio.Event()
    install_stop_signals(stop)
    await run_roles(
        dataclasses.replace(settings, nats_url=nats_url, mqtt_url=mqtt_url),
        roles,
        stop,
        platform,
        on_ready,
    )
