"""The JetStream streams carcloud keeps, declared as data and created idempotently."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

import nats.errors
import nats.js.errors
from nats.js.api import (
    ConsumerConfig,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext

from carcloud.errors import ConfigError, MessagingError
from carcloud.events.models import SUBJECT_PREFIX
from carcloud.ingest.notices import COMMITTED_SUBJECT
from carcloud.messaging import topics

log = logging.getLogger(__name__)

TELEMETRY_STREAM = "TELEMETRY"
TELEMETRY_COMMITTED_STREAM = "TELEMETRY_COMMITTED"
VEHICLE_EVENTS_STREAM = "VEHICLE_EVENTS"
EVENTS_STREAM = "EVENTS"
VEHICLE_REPORTS_STREAM = "VEHICLE_REPORTS"

DAY = 86_400.0


def stream_configs(replicas: int = 1) -> list[StreamConfig]:
    """Every stream the platform needs; replicas > 1 on a NATS cluster."""
    return [
        StreamConfig(
            name=TELEMETRY_STREAM,
            description="Telemetry published by vehicles, kept until ingested and a day after",
            subjects=[topics.ALL_TELEMETRY],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=DAY,
            max_bytes=8 * 1024**3,
            duplicate_window=120.0,
            num_replicas=replicas,
        ),
        StreamConfig(
            name=TELEMETRY_COMMITTED_STREAM,
            description="Ingest's commit notices (ingest/notices.py): what derive re-derives",
            subjects=[COMMITTED_SUBJECT],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=DAY,
            max_bytes=2 * 1024**3,
            # Full (derive down for long): refuse new notices rather than drop the oldest
            # not yet derived; ingest then keeps the telemetry unacknowledged.
            discard=DiscardPolicy.NEW,
            num_replicas=replicas,
        ),
        StreamConfig(
            name=VEHICLE_EVENTS_STREAM,
            description="Command results, reported twins and status messages from vehicles",
            subjects=[
                topics.ALL_COMMAND_RESULTS,
                topics.ALL_TWIN_REPORTED,
                topics.ALL_STATUS,
            ],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=7 * DAY,
            max_bytes=1024**3,
            num_replicas=replicas,
        ),
        StreamConfig(
            name=VEHICLE_REPORTS_STREAM,
            description="Reports vehicles publish on vehicles/{vin}/events (call states)",
            subjects=[topics.ALL_EVENTS],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=7 * DAY,
            max_bytes=256 * 1024**2,
            num_replicas=replicas,
        ),
        StreamConfig(
            name=EVENTS_STREAM,
            description="Domain events of every slice, relayed once each from the outbox",
            subjects=[f"{SUBJECT_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=7 * DAY,
            max_bytes=4 * 1024**3,
            # A relay that published but died before recording it retries within this.
            duplicate_window=600.0,
            num_replicas=replicas,
        ),
    ]


def reserved_bytes() -> int:
    """The file storage nats-server sets aside for carcloud's streams: their max_bytes."""
    return sum(config.max_bytes or 0 for config in stream_configs())


# A NATS cluster that has just started elects its JetStream leader first; meanwhile
# stream requests time out or get 503. Retried for this long.
JETSTREAM_READY_S = 30.0


async def ensure_streams(
    js: JetStreamContext, replicas: int = 1, ready_s: float = JETSTREAM_READY_S
) -> None:
    """Create each stream with `replicas` copies, or update it to the declared config.

    ConfigError when the server cannot keep that many copies (a single server, or a
    cluster smaller than `replicas`); MessagingError when JetStream does not answer.
    """
    for config in stream_configs(replicas):
        await _while_electing(functools.partial(_ensure_stream, js, config), config.name, ready_s)


class _TooFewPeers(Exception):
    """A replicated stream finds too few cluster peers online to be placed, so far.

    Seen while a cluster is still forming (its servers listen, but the JetStream meta
    group has not heard from all of them yet: "peer offline") and while a node is down
    after a restart of the cluster. Asked again until the setup's deadline, then `final`
    is raised: a cluster smaller than the replicas asked for ends there too.
    """

    def __init__(self, reason: str, final: ConfigError) -> None:
        super().__init__(reason)
        self.final = final


async def _while_electing(
    request: Callable[[], Awaitable[None]], what: str | None, ready_s: float
) -> None:
    """Run a JetStream request again while the cluster answers 'no leader yet' or has
    too few peers online to place a replicated stream."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ready_s
    waiting_for_peers = False
    while True:
        try:
            await request()
            return
        except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError) as exc:
            if loop.time() > deadline:
                raise MessagingError(
                    f"JetStream did not set up {what} within {ready_s:.0f} s: "
                    f"{exc or type(exc).__name__}"
                ) from exc
        except _TooFewPeers as exc:
            if loop.time() > deadline:
                raise exc.final from exc.__cause__
            if not waiting_for_peers:
                log.info(
                    "%s: waiting up to %.0f s for the NATS cluster's peers to come online (%s)",
                    what,
                    ready_s,
                    exc,
                )
                waiting_for_peers = True
        await asyncio.sleep(0.5)


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    assert config.name is not None  # every config of stream_configs() is named
    try:
        # Asked first rather than creating and falling back to an update: nats-server
        # checks a create against the storage still free before it sees that the stream
        # exists, counting the existing stream's max_bytes twice. With less than about
        # twice TELEMETRY's limit free, a restart would fail with "insufficient storage
        # resources available".
        try:
            await js.stream_info(config.name)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
            log.info("created stream %s with %d replica(s)", config.name, config.num_replicas)
            return
        await js.update_stream(config)
    except nats.js.errors.ServiceUnavailableError:
        raise  # no leader yet: asked again
    except nats.js.errors.APIError as exc:
        if config.num_replicas is not None and config.num_replicas > 1:
            error = ConfigError(
                f"NATS cannot keep stream {config.name} with {config.num_replicas} replicas "
                f"({exc.description}); --stream-replicas (CARCLOUD_STREAM_REPLICAS) needs a "
                "NATS cluster of at least that many servers"
            )
            if "no suitable peers" in (exc.description or ""):
                raise _TooFewPeers(exc.description or "", error) from exc
            raise error from exc
        raise MessagingError(f"cannot set up stream {config.name}: {exc.description}") from exc


async def ensure_consumer(
    js: JetStreamContext,
    stream: str,
    config: ConsumerConfig,
    ready_s: float = JETSTREAM_READY_S,
) -> None:
    """Create a durable consumer if it is missing (its position is kept otherwise)."""
    assert config.durable_name is not None
    durable = config.durable_name

    async def ensure() -> None:
        try:
            await js.consumer_info(stream, durable)
        except nats.js.errors.NotFoundError:
            await js.add_consumer(stream, config)

    await _while_electing(ensure, f"consumer {stream}/{durable}", ready_s)
