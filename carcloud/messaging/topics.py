"""The platform's NATS subjects: the vehicles' topic scheme (carcloud_agent.protocol.topics),
the wildcards the platform's streams capture, and platform-internal subjects.
"""

from __future__ import annotations

from carcloud_agent.protocol.topics import (
    COMMANDS,
    EVENTS,
    NOTIFICATIONS,
    RECEIPTS,
    ROOT,
    STATUS,
    TELEMETRY,
    TWIN_DESIRED,
    TWIN_REPORTED,
    command_topic,
    mqtt_topic,
    nats_subject,
    result_topic,
    vehicle_subtree,
    vin_from_subject,
)

__all__ = [
    "COMMANDS",
    "EVENTS",
    "NOTIFICATIONS",
    "RECEIPTS",
    "ROOT",
    "STATUS",
    "TELEMETRY",
    "TWIN_DESIRED",
    "TWIN_REPORTED",
    "command_topic",
    "mqtt_topic",
    "nats_subject",
    "result_topic",
    "vehicle_subtree",
    "vin_from_subject",
]

# Wildcards the platform's streams capture.
ALL_TELEMETRY = f"{ROOT}.*.{TELEMETRY}"
ALL_STATUS = f"{ROOT}.*.{STATUS}"
ALL_COMMAND_RESULTS = f"{ROOT}.*.{COMMANDS}.*.result"
ALL_TWIN_REPORTED = f"{ROOT}.*.twin.reported"
ALL_COMMANDS_TO_CARS = f"{ROOT}.*.{COMMANDS}.*"
ALL_TWIN_DESIRED = f"{ROOT}.*.twin.desired"
ALL_NOTIFICATIONS = f"{ROOT}.*.{NOTIFICATIONS}"

# Platform-internal subjects (plain NATS, never visible to vehicles).
DISPATCH = "carcloud.control.dispatch"
# Commit receipts on their way from APP to a vehicle account: RECEIPT_ROUTE.<account>.<vin>.
RECEIPT_ROUTE = "carcloud.receipts"


ALL_EVENTS = f"{ROOT}.*.{EVENTS}"

# What the services' account imports from every vehicle account: each channel of the
# scheme, but not the receipts, which travel the other way (see natsserver.py).
ALL_FROM_VEHICLE_ACCOUNTS = (
    ALL_TELEMETRY,
    ALL_EVENTS,
    ALL_STATUS,
    ALL_TWIN_REPORTED,
    ALL_COMMAND_RESULTS,
    ALL_COMMANDS_TO_CARS,
    ALL_TWIN_DESIRED,
    ALL_NOTIFICATIONS,
)
