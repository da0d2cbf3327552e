"""Health and platform status."""

from __future__ import annotations

from typing import Any

import nats.errors
from fastapi import APIRouter
from nats.aio.client import Client as NatsClient

from carcloud import __version__
from carcloud.api.security import CurrentPrincipal, CurrentServices
from carcloud.ingest.worker import INGEST_CONSUMER
from carcloud.messaging.streams import TELEMETRY_COMMITTED_STREAM, TELEMETRY_STREAM
from carcloud.telematics.role import DERIVE_CONSUMER, gather_backlog

router = APIRouter()


@router.get("/status", tags=["system"])
async def platform_status(who: CurrentPrincipal, svc: CurrentServices) -> dict[str, Any]:
    """Vehicles registered and online, ingest and derive backlogs, and where to connect."""
    registered, online = await svc.registry.count_vehicles(who.brand)
    result: dict[str, Any] = {
        "version": __version__,
        "vehicles": {"registered": registered, "online": online},
        "mqtt_url": svc.mqtt_url,
        "schema_version": await svc.stores.engine.schema_version(),
    }
    if who.is_operator and svc.nats is not None and svc.nats.is_connected:
        try:
            js = svc.nats.jetstream()
            stream = await js.stream_info(TELEMETRY_STREAM)
            consumer = await js.consumer_info(TELEMETRY_STREAM, INGEST_CONSUMER)
            result["ingest"] = {
                "stream_messages": stream.state.messages,
                "pending": consumer.num_pending,
                "ack_pending": consumer.num_ack_pending,
                "redelivered": consumer.num_redelivered,
            }
        except nats.errors.Error as exc:
            result["ingest"] = {"error": str(exc)}
        result["derive"] = await _derive_backlog(svc.nats)
        result.update({key: value for key, value in svc.info.items()})
    return result


async def _derive_backlog(nc: NatsClient) -> dict[str, Any]:
    """Vehicles waiting to be derived (the derive workers' own count, summed) and commit
    notices no derive worker has acknowledged yet (JetStream's count)."""
    try:
        found: dict[str, Any] = (await gather_backlog(nc)).document()
    except nats.errors.Error as exc:
        return {"error": str(exc)}
    try:
        info = await nc.jetstream().consumer_info(TELEMETRY_COMMITTED_STREAM, DERIVE_CONSUMER)
        found["notices_waiting"] = info.num_pending + info.num_ack_pending
    except nats.errors.Error:
        found["notices_waiting"] = None  # no derive worker has started yet
    return found
