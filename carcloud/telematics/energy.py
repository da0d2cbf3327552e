"""Energy from measured power, sample by sample: each power sample holds until the next.

Integrating the car's own traction battery power is what makes consumption
measured rather than guessed from range lost. Where the car was offline (an
interval longer than the gap), a held sample would be a guess; there the change
in state of charge times the usable capacity is used when both are known.
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
    if seconds > gap_s and usable_kwh and here.soc is not None and there.soc is not None:
        return (there.soc - here.soc) / 100.0 * usable_kwh
    if here.battery_power_w is None:
        return None
    return here.battery_power_w * seconds / J_PER_KWH
