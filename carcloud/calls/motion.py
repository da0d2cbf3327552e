"""Audio only while moving: whether a car may show video and screen content now.

Decided by the cloud from the car's own committed telemetry, not left to the head
unit: video is allowed only when the car is known to stand still and be parked
(speed under 1 km/h, and the parking brake engaged or the gear in neutral). A car
that has not sent its speed is treated as moving. The decision goes to the car as
its desired twin property `calls.video_allowed` (delivered and re-synced like any
desired property), and into every call join action.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from carcloud.ingest.store import TelemetryStore
from carcloud.twins.service import TwinService

SPEED = "Vehicle.Speed"
GEAR = "Vehicle.Powertrain.Transmission.CurrentGear"
PARKING_BRAKE = "Vehicle.Chassis.ParkingBrake.IsEngaged"
STANDSTILL_KMH = 1.0
POLICY_SIGNALS = (SPEED, GEAR, PARKING_BRAKE)
TWIN_KEY = "calls"
# Write-and-check passes a derivation makes before it gives up and writes False.
SETTLE_PASSES = 4

log = logging.getLogger(__name__)


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
    """A deriver: after each commit of a car's telemetry, keeps `calls.video_allowed` right.

    A derivation reads what it needs and no more: the three signals of the policy
    (`latest_values`) and the `calls` property of the car's own desired document
    (`own_desired_value`), and writes only when the stored flag differs. A parked car
    sending the same values costs two small reads.

    No cache. Derive processes on several hosts derive the same car, and operators set
    desired properties through the API, so what this process last wrote or read says
    nothing about the twin now: with a per-car memo, process A remembers False, process
    B then writes True for a parked car, the car drives off and A, deciding False again,
    skips the write and leaves `video_allowed=True` on a moving car. A memo is only as
    good as a re-check of the twin, and that re-check is the one small read done here.

    Concurrent derivations settle: each write is followed by reading the motion again,
    and a derivation ends only when the flag it read equals the motion it read after
    its last write. So a stale `True` (decided from motion read before the car moved,
    written after another process had checked the twin) cannot outlive the car's next
    commit: telemetry committed before the re-read is seen by the re-read, telemetry
    committed after it is derived after it, and that derivation reads the `True` and
    corrects it.
    """

    def __init__(self, telemetry: TelemetryStore, twins: TwinService) -> None:
        self.telemetry = telemetry
        self.twins = twins

    async def motion(self, vin: str) -> Motion:
        """The car's motion from the newest values of the policy's signals."""
        latest = await self.telemetry.latest_values(vin, POLICY_SIGNALS)
        return motion_of({value.path: value.value for value in latest.values})

    async def stored(self, vin: str) -> bool | None:
        """The `calls.video_allowed` of the car's own desired document (None: not set)."""
        calls = await self.twins.own_desired_value(vin, TWIN_KEY)
        flag = calls.get("video_allowed") if isinstance(calls, dict) else None
        return flag if isinstance(flag, bool) else None

    async def derive(self, vin: str, since: int) -> bool:
        """Set the desired `calls.video_allowed` when it changes; the value."""
        for _ in range(SETTLE_PASSES):
            allowed = (await self.motion(vin)).video_allowed
            if await self.stored(vin) is allowed:
                return allowed
            await self.twins.patch_desired(vin, None, {TWIN_KEY: {"video_allowed": allowed}}, None)
        # Still changing under us after every pass (the car flips faster than we write):
        # leave the safe value; the car's next commit derives it again.
        log.warning("calls.video_allowed of %s did not settle; set to false", vin)
        await self.twins.patch_desired(vin, None, {TWIN_KEY: {"video_allowed": False}}, None)
        return False
