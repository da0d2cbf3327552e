"""Domain events: what happened, to which vehicle of which brand, with a typed payload.

A slice's service says which events a change produces (`NewEvent`); the store
writes them in the same transaction as the change (the transactional outbox),
where each gets its id. The relay then publishes each stored `DomainEvent` to
the JetStream stream `EVENTS` with that id as the message id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from carcloud.errors import ValidationError
from carcloud.timeutil import format_us

SUBJECT_PREFIX = "carcloud.events"
# The VIN token of a fleet-level event (a brand, a configuration, a campaign).
FLEET = "_"
# The brand token of a platform-wide event (an operator's configuration for every brand).
ALL_BRANDS = "_"

# Every event type, with what it means (docs/events.md explains each payload).
EVENT_TYPES: dict[str, str] = {
    "brand.created": "a brand was created",
    "vehicle.registered": "a vehicle was registered",
    "vehicle.updated": "a vehicle's tags, model or model year changed",
    "vehicle.secret_rotated": "a vehicle got a new MQTT secret (revocation lifted)",
    "vehicle.revoked": "a vehicle's credentials were revoked",
    "vehicle.deleted": "a vehicle and its data were deleted",
    "vehicle.online": "a vehicle connected",
    "vehicle.offline": "a vehicle disconnected",
    "command.status_changed": "a command was queued or moved on (the whole command)",
    "twin.desired_changed": "a vehicle's effective desired properties got a new version",
    "twin.reported_changed": "a vehicle reported properties",
    "configuration.saved": "a fleet configuration was created or changed",
    "configuration.deleted": "a fleet configuration was removed",
    "configuration.applied": "a configuration change reached the vehicles' desired documents",
    "campaign.changed": "a data-collection campaign was created, paused, resumed or deleted",
    "dead_letter.recorded": "input that could not be stored was kept with its reason",
    "trip.completed": "a vehicle finished a trip (the whole trip)",
    "trip.updated": "late data changed a completed trip (the trip as it is now)",
    "trip.removed": "late data showed a completed trip was not one, or part of another",
    "charging.session_completed": "a charging session ended: the cable was removed",
    "charging.session_updated": "late data changed a completed charging session",
    "charging.session_removed": "late data showed a completed session was part of another",
    "geofence.entered": "a vehicle entered a geofence (after the fence's minimum dwell)",
    "geofence.exited": "a vehicle left a geofence, with its dwell time",
    "alert.raised": "an alert rule's condition held (for its `for_s`): a new active alert",
    "alert.acknowledged": "someone acknowledged an active alert (who and when)",
    "alert.cleared": "an alert's clear condition held, the car came back, or its rule went",
    "agenda.changed": "a calendar sync changed a driver's meetings (added, edited or removed)",
}


def check_event_type(name: str) -> str:
    """A known event type, or a type prefix such as `command` or `vehicle.*`."""
    prefix = name.removesuffix(".*")
    if name in EVENT_TYPES or any(t.startswith(prefix + ".") for t in EVENT_TYPES):
        return name
    known = ", ".join(sorted(EVENT_TYPES))
    raise ValidationError(f"unknown event type {name!r}; known types: {known}")


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event a service wants written with its change; the store gives it an id.

    `brand` None means: the brand of `vin`, looked up in the same transaction.
    """

    type: str
    vin: str | None = None
    brand: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {self.type!r}")


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """A stored event: its id orders events and is their identity for the relay."""

    id: int
    type: str
    brand: str | None
    vin: str | None
    at: int
    data: dict[str, Any]

    @property
    def subject(self) -> str:
        """carcloud.events.{brand}.{vin}.{type} (`_` for no brand or no vehicle)."""
        return f"{SUBJECT_PREFIX}.{self.brand or ALL_BRANDS}.{self.vin or FLEET}.{self.type}"

    def to_json(self) -> dict[str, Any]:
        """The event's one public shape: in the stream, `GET /events` and the SSE stream."""
        return {
            "id": self.id,
            "type": self.type,
            "brand": self.brand,
            "vin": self.vin,
            "at": format_us(self.at),
            "data": self.data,
        }

    @property
    def message_id(self) -> str:
        """The JetStream message id: a retried publish of the same event is dropped."""
        return f"evt-{self.id}"


def events_subject(brand: str = "*", vin: str = "*", event_type: str = ">") -> str:
    """A subject filter over the event subjects, e.g. every command event of one brand."""
    return f"{SUBJECT_PREFIX}.{brand}.{vin}.{event_type}"
