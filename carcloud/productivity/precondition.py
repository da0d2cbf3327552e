"""Pre-conditioning: what the car should do before the driver leaves for a meeting.

- `climate_start` early enough that the cabin reaches the driver's target temperature at
  leave-by: one minute per degree to go (from the cabin's latest temperature), at
  least 5 and at most 30 minutes; 15 when the cabin's temperature is unknown;
- `charge_start` at once when a trip in the plan needs a charging stop: charging while
  parked saves the stop (not sent to a car that is charging already);
- `set_charge_limit` at once, before it, when the car is plugged in but its charge limit
  is below what the trip needs: charging would stop short. The limit goes to what the
  most demanding of the next trips needs (a multiple of 5 %), and back to where it was
  once the meetings it was raised for are cancelled (`restore_percent`, not sent).

Each carries the reason the driver sees with the command.
"""

from __future__ import annotations

import datetime as dt
import secrets

from carcloud.calendars.agenda import AgendaEntry
from carcloud.drivers.models import Driver
from carcloud.productivity.energy import RangePolicy, limit_for, needed_km, range_at_limit_km
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
    policy: RangePolicy | None = None,
) -> list[Precondition]:
    """The pre-conditioning the plans need (drafts; the store keeps one per meeting and kind)."""
    target = driver.preferences.precondition_target_c
    cabin = car.cabin_c if car is not None else None
    rules = policy or RangePolicy()
    wanted: list[Precondition] = []
    raises = _limit_raises(car, upcoming, plans, now, rules)
    highest = max((percent for percent, _ in raises.values()), default=0)
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
        if entry.id in raises:
            assert car is not None and car.charge_limit_percent is not None
            previous = round(car.charge_limit_percent)
            wanted.append(Precondition(
                id=f"pre_{secrets.token_hex(8)}", vin=vin, meeting_id=entry.id,
                kind="set_charge_limit",
                params={"percent": highest, "restore_percent": previous}, due_at=now,
                reason=f"{raises[entry.id][1]} to {title!r}: limit {previous} % -> {highest} %",
                created_at=now, updated_at=now,
            ))  # fmt: skip
        if plan.charging is not None and not (car is not None and car.charging):
            wanted.append(Precondition(
                id=f"pre_{secrets.token_hex(8)}", vin=vin, meeting_id=entry.id,
                kind="charge_start", params={}, due_at=now,
                reason=f"{plan.charging.reason} to {title!r}",
                created_at=now, updated_at=now,
            ))  # fmt: skip
    return wanted


def _limit_raises(
    car: CarSituation | None,
    upcoming: list[AgendaEntry],
    plans: dict[str, LeaveBy],
    now: int,
    policy: RangePolicy,
) -> dict[str, tuple[int, str]]:
    """Per meeting whose trip a full battery at the car's charge limit does not cover (the
    car plugged in, its model known): the limit it needs and why."""
    if car is None or not car.plugged_in or car.model is None:
        return {}
    limit = car.charge_limit_percent
    if limit is None or limit >= 100:
        return {}
    found: dict[str, tuple[int, str]] = {}
    for entry in upcoming:
        plan = plans.get(entry.id)
        if plan is None or plan.charging is None or plan.start - now > HORIZON_US:
            continue
        trip_km = plan.travel.distance_m / 1000
        covered, needed = range_at_limit_km(limit, car.model), needed_km(trip_km, policy)
        percent = limit_for(trip_km, car.model, policy)
        if covered < needed and percent > limit:
            found[entry.id] = (percent, f"charge limit {limit:g} % gives {covered:.0f} km < "
                               f"{needed:.0f} km needed for {trip_km:.1f} km")  # fmt: skip
    return found
