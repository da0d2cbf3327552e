"""The JetStream streams carcloud keeps, declared as data and created idempotently."""

from __future__ import annotations

import logging

import nats.js.errors
from nats.js.api import ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext

from carcloud.events.models import SUBJECT_PREFIX
from carcloud.messaging import topics

log = logging.getLogger(__name__)

TELEMETRY_STREAM = "TELEMETRY"
VEHICLE_EVENTS_STREAM = "VEHICLE_EVENTS"
EVENTS_STREAM = "EVENTS"

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


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create each stream, or update it to the declared config."""
    for config in stream_configs(replicas):
        try:
            await js.add_stream(config)
            log.info("created stream %s", config.name)
        except nats.js.errors.BadRequestError:
            await js.update_stream(config)


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """Create a durable consumer if it is missing (its position is kept otherwise)."""
    assert config.durable_name is not None
    try:
        await js.consumer_info(stream, config.durable_name)
    except nats.js.errors.NotFoundError:
        await js.add_consumer(stream, config)
