"""The MQTT topic scheme of the car↔cloud link, one namespace per vehicle, and its NATS subjects.

NATS maps MQTT's `/` to `.`, so `vehicles/{vin}/telemetry` is the NATS subject
`vehicles.{vin}.telemetry`. VINs never contain dots, so a VIN is one token.
"""

from __future__ import annotations

from carcloud_agent.errors import ValidationError
from carcloud_agent.vin import is_valid_vin

ROOT = "vehicles"

# Suffixes under vehicles/{vin}/ (MQTT form).
TELEMETRY = "telemetry"
EVENTS = "events"
STATUS = "status"
TWIN_REPORTED = "twin/reported"
TWIN_DESIRED = "twin/desired"
NOTIFICATIONS = "notifications"
COMMANDS = "commands"
RECEIPTS = "receipts"  # commit receipts, cloud → car (protocol/receipts.py)


def mqtt_topic(vin: str, suffix: str) -> str:
    """The MQTT topic of one of a vehicle's channels, e.g. vehicles/VIN/telemetry."""
    return f"{ROOT}/{vin}/{suffix}"


def nats_subject(vin: str, suffix: str) -> str:
    """The NATS subject of one of a vehicle's channels, e.g. vehicles.VIN.telemetry."""
    return f"{ROOT}.{vin}.{suffix.replace('/', '.')}"


def command_topic(vin: str, command_id: str) -> str:
    """Where the cloud sends one command: vehicles/VIN/commands/ID."""
    return f"{ROOT}/{vin}/{COMMANDS}/{command_id}"


def result_topic(vin: str, command_id: str) -> str:
    """Where the car answers one command: vehicles/VIN/commands/ID/result."""
    return f"{ROOT}/{vin}/{COMMANDS}/{command_id}/result"


def vehicle_subtree(vin: str) -> str:
    """The NATS subject wildcard covering everything a vehicle may touch."""
    return f"{ROOT}.{vin}.>"


def vin_from_subject(subject: str) -> str:
    """The VIN in a subject of the scheme; ValidationError if the subject is not one."""
    parts = subject.split(".", 2)
    if len(parts) < 3 or parts[0] != ROOT or not is_valid_vin(parts[1]):
        raise ValidationError(f"subject {subject!r} is not vehicles.<VIN>.<channel>")
    return parts[1]
