"""The worker roles by name, in start order, with what each does.

Apart from `carcloud.runtime.roles` (which imports every slice to start them) so that the
CLI can offer and explain the roles without that import.
"""

from __future__ import annotations

# In start order: the callout first, so that our own MQTT connections are accepted.
ROLE_DESCRIPTIONS: dict[str, str] = {
    "callout": "NATS auth callout: per-vehicle MQTT permissions",
    "presence": "online/offline from the server's connect events",
    "control": "delivers commands and twins, follows cars' answers",
    "ingest": "stores telemetry from the TELEMETRY stream",
    "derive": "trips, charging, geofences, alerts from committed data",
    "events": "relays committed domain events to the EVENTS stream",
    "webhooks": "signed deliveries of events to subscribed URLs",
    "calendar": "syncs drivers' calendar accounts, with backoff",
    "productivity": "leave-by, cards to cars, pre-conditioning",
    "api": "the REST API and the web page (served by the platform)",
}

# Roles a user names; `events` runs in every process anyway.
USER_ROLES = tuple(name for name in ROLE_DESCRIPTIONS if name != "events")
