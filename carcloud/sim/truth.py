"""The simulator's ground truth: the trips and charging sessions its cars really had.

With `carcloud simulate --ground-truth FILE` every simulated car carries a
`TruthRecorder`, which the vehicle model calls after each of its substeps (1 s
while driving, at most 10 s parked), so the times are the model's own, not those
of the telemetry samples. Each trip and each plug-in is written as one JSON line
as soon as it is over, so that what the platform detects from the telemetry can
be measured against what happened:

    {"vin": "...", "kind": "trip", "start": "2025-03-03T07:12:31.000Z",
     "end": "...", "complete": true, "distance_km": 7.412, "energy_kwh": 1.234, ...}
    {"vin": "...", "kind": "charging", "start": "...", "end": "...", "complete": true,
     "plugged_in": "...", "plugged_out": "...", "energy_added_kwh": 8.51, "dc": false,
     "segments": [{"start": "...", "end": "...", "energy_kwh": 8.51}], ...}

A trip runs from drive-off to arrival; a breakdown (out of energy, standing until
roadside assistance comes) ends it where the car came to a standstill, and the
drive on afterwards is a new trip. Distance is the model's odometer, energy the
change of the energy stored in the traction battery (None for a car without one).
A charging session runs from plug-in to plug-out; its segments are the stretches
in which energy flowed. What was under way when recording began or is still under
way when it ends is written with `"complete": false` (its start or end is where
recording began or ended, not where the trip or session did).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from carcloud.sim.model import SimVehicle

__all__ = ["GroundTruth", "TruthRecorder", "format_ts", "read_ground_truth"]


def format_ts(epoch_s: float) -> str:
    """RFC 3339 UTC with milliseconds, as the simulator stamps its telemetry."""
    whole = int(epoch_s)
    millis = int((epoch_s - whole) * 1000)  # truncated, as the telemetry's `ts`
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{millis:03d}Z"


@dataclass
class _Open:
    """A trip or session under way: where it began."""

    epoch_s: float
    from_start: bool  # it was under way when recording began
    odometer_km: float
    battery_kwh: float | None
    segments: list[dict[str, Any]] = field(default_factory=list)
    segment: tuple[float, float] | None = None  # (epoch, battery kWh) of a charging stretch
    dc: bool = False


class GroundTruth:
    """Where ground truth goes: a JSON-lines file, appended one whole line per write.

    Several simulator processes may append to the same file: each record is one
    `write` on a file opened with O_APPEND, so lines never interleave.
    """

    def __init__(self, path: Path, *, truncate: bool = False) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        try:
            self._fd: int | None = os.open(path, flags, 0o644)
        except OSError as exc:
            raise OSError(f"cannot write the ground truth to {path}: {exc.strerror}") from exc
        self.written = 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a JSON line."""
        if self._fd is None:
            raise ValueError(f"the ground truth file {self.path} is closed")
        os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())
        self.written += 1

    def attach(self, vehicles: Iterable[SimVehicle]) -> list[TruthRecorder]:
        """Record every vehicle from now on (their model calls the recorder each substep)."""
        recorders = []
        for vehicle in vehicles:
            recorder = TruthRecorder(vehicle, self)
            vehicle.observer = recorder
            recorders.append(recorder)
        return recorders

    def close(self, recorders: Iterable[TruthRecorder] = ()) -> None:
        """Write what is still under way (incomplete) and close the file."""
        for recorder in recorders:
            recorder.finish()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> GroundTruth:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class TruthRecorder:
    """Follows one vehicle substep by substep and writes its trips and charging sessions."""

    def __init__(self, vehicle: SimVehicle, sink: GroundTruth) -> None:
        self.vehicle = vehicle
        self.sink = sink
        self.trip: _Open | None = None
        self.session: _Open | None = None
        if _drives(vehicle):
            self.trip = self._open(vehicle, from_start=True)
        if vehicle.is_plugged_in:
            self.session = self._open(vehicle, from_start=True)
            if vehicle.is_charging:
                self.session.segment = (vehicle.epoch_s, _stored(vehicle))

    @staticmethod
    def _open(vehicle: SimVehicle, from_start: bool) -> _Open:
        return _Open(
            vehicle.epoch_s,
            from_start,
            vehicle.odometer_km,
            vehicle.battery_kwh,
            dc=vehicle.is_dc_charging,
        )

    def __call__(self, vehicle: SimVehicle, dt_s: float) -> None:
        """After a substep of the model: note what began or ended during it."""
        driving = _drives(vehicle)
        if driving and self.trip is None:
            self.trip = self._open(vehicle, from_start=False)
        elif not driving and self.trip is not None:
            self._write_trip(self.trip, complete=not self.trip.from_start)
            self.trip = None
        plugged = vehicle.is_plugged_in
        if plugged and self.session is None:
            self.session = self._open(vehicle, from_start=False)
        session = self.session
        if session is None:
            return
        charging = plugged and vehicle.is_charging
        if charging and session.segment is None:
            # The charger started at the beginning of this substep and charged through it.
            charged_kwh = vehicle.traction_power_w * dt_s / 3.6e6
            session.segment = (vehicle.epoch_s - dt_s, _stored(vehicle) - charged_kwh)
        elif not charging and session.segment is not None:
            self._close_segment(session, vehicle.epoch_s - dt_s)  # nothing flowed in this one
        if not plugged:
            self._write_session(session, complete=not session.from_start)
            self.session = None

    def finish(self) -> None:
        """Recording ends: write what is under way as incomplete."""
        if self.trip is not None:
            self._write_trip(self.trip, complete=False)
            self.trip = None
        if self.session is not None:
            if self.session.segment is not None:
                self._close_segment(self.session, self.vehicle.epoch_s)
            self._write_session(self.session, complete=False)
            self.session = None

    def _close_segment(self, session: _Open, end_epoch_s: float) -> None:
        assert session.segment is not None
        began, stored = session.segment
        session.segments.append(
            {
                "start": format_ts(began),
                "end": format_ts(end_epoch_s),
                "energy_kwh": round(_stored(self.vehicle) - stored, 4),
            }
        )
        session.segment = None

    def _write_trip(self, trip: _Open, complete: bool) -> None:
        vehicle = self.vehicle
        now = vehicle.battery_kwh
        used = trip.battery_kwh - now if trip.battery_kwh is not None and now is not None else None
        self.sink.write(
            {
                "vin": vehicle.vin,
                "kind": "trip",
                "start": format_ts(trip.epoch_s),
                "end": format_ts(vehicle.epoch_s),
                "complete": complete,
                "distance_km": round(vehicle.odometer_km - trip.odometer_km, 4),
                "energy_kwh": round(used, 4) if used is not None else None,
                "start_odometer_km": round(trip.odometer_km, 3),
                "end_odometer_km": round(vehicle.odometer_km, 3),
                "powertrain": vehicle.spec.powertrain,
            }
        )

    def _write_session(self, session: _Open, complete: bool) -> None:
        vehicle = self.vehicle
        start, end = format_ts(session.epoch_s), format_ts(vehicle.epoch_s)
        self.sink.write(
            {
                "vin": vehicle.vin,
                "kind": "charging",
                "start": start,
                "end": end,
                "complete": complete,
                "plugged_in": start,
                "plugged_out": end,
                "energy_added_kwh": round(sum(s["energy_kwh"] for s in session.segments), 4),
                "dc": session.dc,
                "segments": session.segments,
            }
        )


def _drives(vehicle: SimVehicle) -> bool:
    """On a trip: driving, except standing broken down waiting for assistance."""
    return vehicle.is_driving and not (vehicle.is_broken_down and vehicle.speed_kmh == 0.0)


def _stored(vehicle: SimVehicle) -> float:
    return vehicle.battery_kwh or 0.0


def read_ground_truth(path: Path) -> list[dict[str, Any]]:
    """The records of a ground-truth file, with the line number of a malformed one."""
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not a JSON line: {exc}") from exc
            if not isinstance(record, dict) or record.get("kind") not in ("trip", "charging"):
                raise ValueError(f"{path}:{number}: not a trip or charging record")
            records.append(record)
    return records
