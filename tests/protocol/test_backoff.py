"""The one backoff helper: full jitter under an exponential ceiling."""

from __future__ import annotations

import random

import pytest

from carcloud_agent.protocol.backoff import Backoff, backoff_ceiling, full_jitter


def test_the_ceiling_doubles_from_the_base_up_to_the_cap() -> None:
    assert [backoff_ceiling(0.5, 10.0, n) for n in range(7)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0,
    ]  # fmt: skip
    assert backoff_ceiling(0.5, 10.0, 10_000) == 10.0  # no overflow after a long outage


def test_full_jitter_spreads_waits_over_the_whole_window() -> None:
    rng = random.Random(1)
    waits = [full_jitter(1.0, 300.0, 4, rng) for _ in range(2000)]
    assert all(0.0 <= wait <= 16.0 for wait in waits)
    # Uniform over [0, 16]: each quarter of the window gets about a quarter of the fleet.
    quarters = [sum(1 for w in waits if q * 4 <= w < (q + 1) * 4) for q in range(4)]
    assert all(400 < count < 600 for count in quarters), quarters


def test_the_iterator_counts_failures_and_starts_over_after_a_success() -> None:
    backoff = Backoff(1.0, 8.0, random.Random(3))
    waits = [next(backoff) for _ in range(6)]
    assert [w <= c for w, c in zip(waits, [1, 2, 4, 8, 8, 8], strict=True)] == [True] * 6
    assert backoff.attempt == 6
    backoff.reset()
    assert backoff.attempt == 0 and backoff.next() <= 1.0


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.0)])
def test_bounds_that_cannot_work_are_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="above 0"):
        Backoff(base, cap)
    with pytest.raises(ValueError, match="attempt must be 0 or more"):
        backoff_ceiling(1.0, 2.0, -1)
