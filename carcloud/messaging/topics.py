"""The MQTT topic scheme, one namespace per vehicle, and its NATS subjects.

NATS maps MQTT's `/` to `.`, so `vehicles/{vin}/telemetry` is the NATS subject
`vehicles.{vin}.telemetry`. VINs never contain dots, so a VIN is one token.
"""

from __future__ import annotations

from carcloud.errors import ValidationError
from carcloud.vin import is_valid_vin

ROOT = "vehicles"

# Suffixes under vehicles/{vin}/ (MQTT form).
TELEMETRY = "telemetry"
EVENTS = "events"
STATUS = "status"
TWIN_REPORTED = "twin/reported"
TWIN_DESIRED = "twin/desired"
NOTIFICATIONS = "notifications"
COMMANDS = "commands"
RECEIPTS = "receipts"  # commit receipts, cloud → car (carcloud/ingest/receipts.py)


def mqtt_topic(vin: str, suffix: str) -> str:
    """The MQTT topic of one of a vehicle's channels, e.g. vehicles/VIN/telemetry."""
    return f"{ROOT}/{vin}/{suffix}"


def nats_subject(vin: str, suffix: str) -> str:
    """The NATS subject of one of a vehicle's channels, e.g. vehicles.VIN.telemetry."""
    return f"{ROOT}.{vin}.{suffix.replace('/', '.')}"


def vehicle_subtree(vin: str) -> str:
    """The NATS subject wildcard covering everything a vehicle may touch."""
    return f"{ROOT}.{vin}.>"


def vin_from_subject(subject: str) -> str:
    """The VIN in a subject of the scheme; ValidationError if the subject is not one."""
    parts = subject.split(".", 2)
    if len(parts) < 3 or parts[0] != ROOT or not is_valid_vin(parts[1]):
        raise ValidationError(f"subject {subject!r} is not vehicles.<VIN>.<channel>")
    return parts[1]


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
