"""Where a vehicle's derivation stopped, saved so that the next one goes on from there.

A checkpoint is the state of the trip and session scans after the last moment a
derivation read (`covered_ts`): the open trip's and plug-in's figures so far, each
signal's newest value (the timeline's forward fill), and the times of the last
rows read. The next derivation reads only the rows after `covered_ts` and feeds
them to the scans it resumes, so its cost does not grow with an open trip's or
plug-in's length. It is kept in the store, not in a process, because several
derive processes may derive the same vehicle: each reads it afresh and saves it
only if no other derivation saved one since (the store's version).

A checkpoint is a function of the committed history up to `covered_ts`; it may be
resumed only while that history is unchanged. Data older than `covered_ts` (a
backlog) is checked against the saved row times, or, older than those, by counting the
stored rows; if it adds rows the vehicle is derived again from the trip or plug-in it
falls in, which saves a new checkpoint.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from carcloud.ingest.models import SignalValue
from carcloud.telematics.charging import (
    PriceFor,
    SegmentTotals,
    SessionScan,
    SessionTotals,
)
from carcloud.telematics.models import ChargingSegment, DetectionSettings
from carcloud.telematics.timeline import Moment, Position
from carcloud.telematics.trips import TripScan, TripTotals

# Bump when the scans' state changes shape: older checkpoints are then ignored.
FORMAT = 2  # 2: the rows counted (`counted_from`, `count`)
# Row times kept, newest last, to check that a batch older than `covered_ts` adds no row.
RECENT_ROWS = 256


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The scans of one vehicle after its row at `covered_ts`."""

    covered_ts: int
    recent: tuple[int, ...]  # times of the last rows read (at most RECENT_ROWS), oldest first
    current: Mapping[str, SignalValue]  # each signal's newest value at covered_ts
    trips: TripScan
    sessions: SessionScan
    # How many rows the chain of derivations that led here read from `counted_from` to
    # `covered_ts`: data older than `recent` reaches is checked by counting the rows
    # stored in that range (a late row adds one), so a batch that ingest committed long
    # before derive got to it does not send the vehicle back to its whole history.
    counted_from: int
    count: int

    def holds(self, since: int) -> bool | None:
        """True if data from `since` on cannot be older than the checkpoint; None if the
        rows from `since` to `covered_ts` must be compared with `recent` (`unchanged`);
        False if the checkpoint cannot tell (the vehicle is derived from its history)."""
        if since > self.covered_ts:
            return True
        if not self.recent or since < self.recent[0]:
            return False
        return None

    def countable(self, since: int) -> bool:
        """Whether data from `since` on can be checked by counting (`count`)."""
        return since >= self.counted_from

    def unchanged(self, since: int, row_times: Sequence[int]) -> bool:
        """Whether the rows now stored from `since` to `covered_ts` are those it read."""
        return list(row_times) == [ts for ts in self.recent if ts >= since]


@functools.lru_cache(maxsize=64)
def _fingerprint(settings: DetectionSettings, usable_kwh: float | None) -> str:
    """What a checkpoint's figures depend on besides the history: another installation's
    settings or another battery capacity start from the history again."""
    return f"{FORMAT}:{settings!r}:{usable_kwh!r}"


def encode(checkpoint: Checkpoint) -> str:
    """The checkpoint as stored (JSON; the scans' dataclasses as orjson writes them)."""
    trips, sessions = checkpoint.trips, checkpoint.sessions
    return orjson.dumps(
        {
            "fingerprint": _fingerprint(trips.settings, trips.usable_kwh),
            "covered_ts": checkpoint.covered_ts,
            "recent": [checkpoint.covered_ts - ts for ts in checkpoint.recent],  # shorter
            "counted_from": checkpoint.counted_from,
            "count": checkpoint.count,
            "current": checkpoint.current,
            "trips": {
                "prev": trips.prev,
                "last_end_ts": trips.last_end_ts,
                "open": trips.open,
                "rest": trips.rest,
            },
            "session": _session_json(sessions.open),
        }
    ).decode()


def parse(text: str) -> dict[str, Any]:
    """A stored checkpoint's fields (to `decode`)."""
    data: dict[str, Any] = orjson.loads(text)
    return data


def plugged_in(data: Mapping[str, Any]) -> bool:
    """Whether the checkpoint has a session open (decoding it needs the tariffs)."""
    return data.get("session") is not None


def decode(
    data: Mapping[str, Any],
    settings: DetectionSettings,
    usable_kwh: float | None,
    price_for: PriceFor,
) -> Checkpoint | None:
    """The parsed checkpoint, resumable with these settings and tariffs; None if it is not
    (other settings or capacity, or the open session's tariff changed)."""
    if data.get("fingerprint") != _fingerprint(settings, usable_kwh):
        return None
    trips = data["trips"]
    trip_scan = TripScan(
        settings,
        usable_kwh,
        prev=_moment_of(trips["prev"]),
        last_end_ts=trips["last_end_ts"],
        open=_trip_totals_of(trips["open"]),
        rest=_trip_totals_of(trips["rest"]),
    )
    session = _session_of(data["session"], price_for)
    if session is False:
        return None
    return Checkpoint(
        covered_ts=data["covered_ts"],
        recent=tuple(data["covered_ts"] - age for age in data["recent"]),
        current=data["current"],
        trips=trip_scan,
        sessions=SessionScan(settings, usable_kwh, price_for, session),
        counted_from=data["counted_from"],
        count=data["count"],
    )


def _position_of(data: dict[str, float] | None) -> Position | None:
    return Position(data["lat"], data["lon"]) if data is not None else None


def _moment_of(data: dict[str, Any] | None) -> Moment | None:
    if data is None:
        return None
    return Moment(**{**data, "position": _position_of(data["position"])})


def _trip_totals_of(data: dict[str, Any] | None) -> TripTotals | None:
    if data is None:
        return None
    return TripTotals(
        **{
            **data,
            "first": _moment_of(data["first"]),
            "last": _moment_of(data["last"]),
            "gps_last": _position_of(data["gps_last"]),
        }
    )


def _session_json(totals: SessionTotals | None) -> dict[str, Any] | None:
    if totals is None:
        return None
    charging = totals.charging
    tariff = totals.tariff
    return {
        "first": totals.first,
        "last": totals.last,
        "position": totals.position,
        "segments": [dataclasses.astuple(segment) for segment in totals.segments],
        "charging": dataclasses.astuple(charging) if charging is not None else None,
        "max_power_kw": totals.max_power_kw,
        "dc": totals.dc,
        "ac": totals.ac,
        "priced": totals.priced,
        "tariff": [tariff.id, tariff.updated_at] if tariff is not None else None,
        "cost": totals.cost,
        "unpriced": [list(interval) for interval in totals.unpriced],
    }


def _session_of(
    data: dict[str, Any] | None, price_for: PriceFor
) -> SessionTotals | None | Literal[False]:
    """The open session's figures; False if the tariff that priced them is no longer the
    one for its position (a tariff or geofence changed: it is derived from its start)."""
    if data is None:
        return None
    position = _position_of(data["position"])
    tariff = None
    if data["priced"]:
        tariff = price_for(position)
        key = [tariff.id, tariff.updated_at] if tariff is not None else None
        if key != data["tariff"]:
            return False
    first, last = _moment_of(data["first"]), _moment_of(data["last"])
    assert first is not None and last is not None
    return SessionTotals(
        first,
        last,
        position,
        segments=[ChargingSegment(*segment) for segment in data["segments"]],
        charging=SegmentTotals(*data["charging"]) if data["charging"] is not None else None,
        max_power_kw=data["max_power_kw"],
        dc=data["dc"],
        ac=data["ac"],
        priced=data["priced"],
        tariff=tariff,
        cost=data["cost"],
        unpriced=[(int(a), int(b), float(c)) for a, b, c in data["unpriced"]],
    )
