"""Pre-conditioning: what the car should do before the driver leaves for a meeting.

- `climate_start` early enough that the cabin reaches the driver's target temperature at
  leave-by: one minute per degree to go (from the cabin's latest temperature), at
  least 5 and at most 30 minutes; 15 when the cabin's temperature is unknown;
- `charge_start` at once when a trip in the plan needs a charging stop: charging while
  parked saves the stop.

Each carries the reason the driver sees with the command.
"""

from __future__ import annotations

import datetime as dt
import secrets

from carcloud.calendars.agenda import AgendaEntry
from carcloud.drivers.models import Driver
from carcloud.productivity.leaveby import CarSituation, LeaveBy
from carcloud.productivity.models import Precondition

MINUTE_US = 60_000_000
HORIZON_US = 12 * 60 * MINUTE_US  # pre-conditioning for the next 12 hours' meetings
UNKNOWN_WARMUP_MIN = 15.0


def warmup_min(cabin_c: float | None, target_c: float) -> float:
    """How long the cabin takes to reach `target_c`."""
    if cabin_c is None:
        return UNKNOWN_WARMUP_MIN
    return min(30.0, max(5.0, abs(target_c - cabin_c)))


def _clock(moment_us: int, driver: Driver) -> str:
    at = dt.datetime.fromtimestamp(moment_us / 1e6, dt.UTC).astimezone(driver.zone)
    return at.strftime("%H:%M")


def planned_preconditions(
    vin: str,
    driver: Driver,
    car: CarSituation | None,
    upcoming: list[AgendaEntry],
    plans: dict[str, LeaveBy],
    now: int,
) -> list[Precondition]:
    """The pre-conditioning the plans need (drafts; the store keeps one per meeting and kind)."""
    target = driver.preferences.precondition_target_c
    cabin = car.cabin_c if car is not None else None
    wanted: list[Precondition] = []
    for entry in upcoming:
        plan = plans.get(entry.id)
        if plan is None or plan.start - now > HORIZON_US:
            continue
        title = entry.title[:80]
        warm = warmup_min(cabin, target)
        wanted.append(Precondition(
            id=f"pre_{secrets.token_hex(8)}", vin=vin, meeting_id=entry.id, kind="climate_start",
            params={"target_temperature": float(target)},
            due_at=plan.leave_by - round(warm * MINUTE_US),
            reason=f"pre-conditioning to {target:g} °C by leave-by {_clock(plan.leave_by, driver)} "
            f"for {title!r}",
            created_at=now, updated_at=now,
        ))  # fmt: skip
        if plan.charging is not None:
            wanted.append(Precondition(
                id=f"pre_{secrets.token_hex(8)}", vin=vin, meeting_id=entry.id,
                kind="charge_start", params={}, due_at=now,
                reason=f"{plan.charging.reason} to {title!r}",
                created_at=now, updated_at=now,
            ))  # fmt: skip
    return wanted
