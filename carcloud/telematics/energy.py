"""Energy measured by the car, interval by interval.

Best are the battery's lifetime energy counters (VSS `AccumulatedConsumedEnergy`,
`AccumulatedChargedEnergy`, and `AccumulatedBrakingEnergy` for what braking put
back) where the car reports them: their difference is exact however sparse the
samples and across a gap. Otherwise the car's own traction battery power is
integrated, each sample held until the next; that is what makes consumption
measured rather than guessed from range lost, but a car that samples every 10 s
in city traffic is off by 10-20 % on a short trip (bench/telematics.py). Where
the car was offline (an interval longer than the gap), a held sample would be a
guess; there the change in state of charge times the usable capacity is used
when both are known.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from carcloud.telematics.models import SECOND
from carcloud.telematics.timeline import Moment

J_PER_KWH = 3_600_000.0


def power_intervals(
    moments: Sequence[Moment], first: int, last: int
) -> Iterator[tuple[Moment, Moment, float]]:
    """(sample, next sample, seconds) for each interval of moments[first..last]."""
    for index in range(first, last):
        here, there = moments[index], moments[index + 1]
        yield here, there, (there.ts - here.ts) / SECOND


def interval_energy_kwh(
    here: Moment, there: Moment, seconds: float, gap_s: float, usable_kwh: float | None
) -> float | None:
    """Energy into the battery over one interval (negative when drawn); None if unknown."""
    counted = counted_kwh(here, there)
    if counted is not None:
        return counted
    if seconds > gap_s and usable_kwh and here.soc is not None and there.soc is not None:
        return (there.soc - here.soc) / 100.0 * usable_kwh
    if here.battery_power_w is None:
        return None
    return here.battery_power_w * seconds / J_PER_KWH


def counted_kwh(here: Moment, there: Moment) -> float | None:
    """Energy into the battery between two moments by its counters; None if not reported."""
    consumed = _delta(here.consumed_kwh, there.consumed_kwh)
    charged = _delta(here.charged_kwh, there.charged_kwh)
    if consumed is None or charged is None:
        return None
    return charged + (_delta(here.braking_kwh, there.braking_kwh) or 0.0) - consumed


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before
