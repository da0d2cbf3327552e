"""Backoff with full jitter: how long to wait before the next attempt at something that failed.

Exponential backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff
And Jitter"): before attempt n (0-based) wait a uniformly random time between 0 and
min(cap, base × 2^n). Without the jitter a fleet that lost its cloud at the same
moment comes back at the same moments, in waves; with it, reconnects spread evenly
over the window, which is what the server's connection storm needs.

Every retry loop of the car and of the platform uses this module: the agent's and
the simulator's reconnects, the control role's MQTT connection and the agent's loop
supervisor (which uses the ceiling without jitter: it restarts one local loop, there
is no herd to spread).
"""

from __future__ import annotations

import random

__all__ = ["Backoff", "backoff_ceiling", "full_jitter"]

_MAX_DOUBLINGS = 60  # 2**60 × any sane base is far beyond any cap: no float overflow


def backoff_ceiling(base_s: float, cap_s: float, attempt: int) -> float:
    """The longest wait before attempt `attempt` (0-based): min(cap, base × 2^attempt)."""
    if base_s <= 0 or cap_s <= 0:
        raise ValueError(f"backoff needs base_s and cap_s above 0, got {base_s} and {cap_s}")
    if attempt < 0:
        raise ValueError(f"attempt must be 0 or more, got {attempt}")
    return min(cap_s, base_s * 2.0 ** min(attempt, _MAX_DOUBLINGS))


def full_jitter(
    base_s: float, cap_s: float, attempt: int, rng: random.Random | None = None
) -> float:
    """A random wait before attempt `attempt` (0-based): uniform in [0, backoff_ceiling]."""
    ceiling = backoff_ceiling(base_s, cap_s, attempt)
    return (rng or _shared).uniform(0.0, ceiling)


_shared = random.Random()


class Backoff:
    """The waits of one retry loop: `next()` after each failure, `reset()` after a success."""

    def __init__(self, base_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        backoff_ceiling(base_s, cap_s, 0)  # checks the bounds once, at creation
        self.base_s, self.cap_s = base_s, cap_s
        self.rng = rng or random.Random()
        self.attempt = 0

    def __repr__(self) -> str:
        return f"Backoff(base_s={self.base_s}, cap_s={self.cap_s}, attempt={self.attempt})"

    def next(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        delay = full_jitter(self.base_s, self.cap_s, self.attempt, self.rng)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """It worked: the next failure starts over from the shortest window."""
        self.attempt = 0

    def __iter__(self) -> Backoff:
        return self

    def __next__(self) -> float:
        return self.next()
