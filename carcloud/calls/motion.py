"""Audio only while moving: whether a car may show video and screen content now.

Decided by the cloud from the car's own committed telemetry, not left to the head
unit: video is allowed only when the car is known to stand still and be parked
(speed under 1 km/h, and the parking brake engaged or the gear in neutral). A car
that has not sent its speed is treated as moving. The decision goes to the car as
its desired twin property `calls.video_allowed` (delivered and re-synced like any
desired property), and into every call join action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from carcloud.ingest.store import TelemetryStore
from carcloud.twins.service import TwinService

SPEED = "Vehicle.Speed"
GEAR = "Vehicle.Powertrain.Transmission.CurrentGear"
PARKING_BRAKE = "Vehicle.Chassis.ParkingBrake.IsEngaged"
STANDSTILL_KMH = 1.0
TWIN_KEY = "calls"


@dataclass(frozen=True, slots=True)
class Motion:
    """What the policy looks at, from the newest values."""

    speed_kmh: float | None
    gear: int | None
    parking_brake: bool | None

    @property
    def video_allowed(self) -> bool:
        """Parked: standing still with the parking brake on or in neutral."""
        if self.speed_kmh is None or self.speed_kmh >= STANDSTILL_KMH:
            return False
        return self.parking_brake is True or self.gear == 0


def motion_of(values: Mapping[str, object]) -> Motion:
    """The motion of a car from its newest signal values by path."""
    speed, gear, brake = values.get(SPEED), values.get(GEAR), values.get(PARKING_BRAKE)
    return Motion(
        float(speed) if isinstance(speed, int | float) and not isinstance(speed, bool) else None,
        int(gear) if isinstance(gear, int) and not isinstance(gear, bool) else None,
        brake if isinstance(brake, bool) else None,
    )


class MotionWatch:
    """A deriver: after each commit of a car's telemetry, keeps `calls.video_allowed` right."""

    def __init__(self, telemetry: TelemetryStore, twins: TwinService) -> None:
        self.telemetry = telemetry
        self.twins = twins

    async def motion(self, vin: str) -> Motion:
        """The car's motion from its latest state."""
        latest = await self.telemetry.latest_state(vin)
        return motion_of({value.path: value.value for value in latest.values})

    async def derive(self, vin: str, since: int) -> bool:
        """Set the desired `calls.video_allowed` when it changes; the value."""
        allowed = (await self.motion(vin)).video_allowed
        twin = await self.twins.get(vin, None)
        current = twin.desired_own.get(TWIN_KEY)
        if not isinstance(current, dict) or current.get("video_allowed") is not allowed:
            await self.twins.patch_desired(vin, None, {TWIN_KEY: {"video_allowed": allowed}}, None)
        return allowed
