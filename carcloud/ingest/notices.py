"""Commit notices: what ingest tells the derivers after each commit.

After a batch's transaction commits, ingest publishes one notice on the
TELEMETRY_COMMITTED stream naming each vehicle the batch stored data of, with the
oldest and newest vehicle time (`ts`) of that data, and only then acknowledges the
batch's telemetry messages. The derive workers follow that stream, not the raw
telemetry: one small message per batch instead of a second delivery and
acknowledgement of every car message, and no waiting on ingest's progress, because a
notice exists only once its data is in the database.

Nothing is lost between the two: a crash after the commit and before the notice is
published leaves the telemetry unacknowledged, so it is delivered again, found to be
stored already (the (vin, seq) key), and notified then. A notice may therefore name
data that was notified before; deriving it again gives the same result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from carcloud.errors import ValidationError
from carcloud.ingest.models import TelemetryMessage

COMMITTED_SUBJECT = "carcloud.telemetry.committed"

# Vehicles in one notice at most: about 60 bytes each, well inside NATS's 1 MiB.
MAX_VEHICLES = 5_000

# vin -> (oldest, newest) vehicle time of its data, epoch microseconds.
VehicleTimes = dict[str, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class CommitNotice:
    """The vehicles a committed batch holds data of, and how many messages it covered."""

    vehicles: VehicleTimes
    messages: int

    def encode(self) -> bytes:
        return orjson.dumps({"vehicles": self.vehicles, "messages": self.messages})

    def parts(self, max_vehicles: int = MAX_VEHICLES) -> list[CommitNotice]:
        """The notice in parts of at most `max_vehicles` vehicles (a NATS message is at most
        1 MiB by default), the messages shared out among them."""
        if len(self.vehicles) <= max_vehicles:
            return [self]
        items = list(self.vehicles.items())
        chunks = [items[i : i + max_vehicles] for i in range(0, len(items), max_vehicles)]
        shares = [self.messages * len(chunk) // len(items) for chunk in chunks]
        shares[0] += self.messages - sum(shares)
        return [
            CommitNotice(dict(chunk), share) for chunk, share in zip(chunks, shares, strict=True)
        ]


def widen(times: VehicleTimes, vin: str, oldest: int, newest: int) -> None:
    """Add a vehicle's data from `oldest` to `newest` to `times`."""
    known = times.get(vin)
    if known is not None:
        oldest, newest = min(oldest, known[0]), max(newest, known[1])
    times[vin] = (oldest, newest)


def notice_of(messages: Iterable[TelemetryMessage], unknown_vins: Iterable[str]) -> CommitNotice:
    """The notice of a committed batch: every stored (or already stored) message's vehicle
    and sample times; vehicles nobody registered (kept as dead letters) are left out."""
    unknown = set(unknown_vins)
    vehicles: VehicleTimes = {}
    count = 0
    for message in messages:
        if message.vin in unknown or not message.samples:
            continue
        count += 1
        stamps = [sample[1] for sample in message.samples]
        widen(vehicles, message.vin, min(stamps), max(stamps))
    return CommitNotice(vehicles, count)


def decode_notice(data: bytes) -> CommitNotice:
    """A notice as published; ValidationError when it is not one."""
    try:
        document = orjson.loads(data)
        vehicles = {
            str(vin): (int(times[0]), int(times[1])) for vin, times in document["vehicles"].items()
        }
        return CommitNotice(vehicles, int(document["messages"]))
    except (orjson.JSONDecodeError, LookupError, TypeError, ValueError, AttributeError) as exc:
        raise ValidationError(f"not a commit notice: {exc}") from exc
