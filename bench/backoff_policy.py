"""Reconnect backoff policies after an outage: when would 10,000 cars be back?

    python bench/backoff_policy.py [--cars 10000] [--refusing 1.5]

A model, not a measurement of the platform: every car loses the platform at the
same moment, retries by its policy, and gets in with its first attempt after the
platform listens again and has stopped refusing (`--refusing` seconds after it
listens: nats-server listens a little before carcloud's auth callout answers).
For several outage lengths it prints when the cars are back (after the platform
listens) and how many connect attempts per second hit the platform while it was
down. It compares the simulator's policy (`carcloud/sim/link.py`) with the one
before it and with other caps; docs/benchmarks.md ("Reconnect storm") explains
the choice.
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections import Counter
from collections.abc import Callable

from carcloud.sim import link
from carcloud_agent.protocol.backoff import full_jitter

Policy = Callable[[int, random.Random], float]


def before(failures: int, rng: random.Random) -> float:
    """The simulator's policy before: 0.5 s doubling to 60 s, times a random 0.5-1."""
    return min(60.0, 0.5 * 2 ** min(failures, 7)) * rng.uniform(0.5, 1)


def full_jitter_capped(cap_s: float) -> Policy:
    return lambda failures, rng: full_jitter(link.RECONNECT_MIN_S, cap_s, failures, rng)


def half_jitter_capped(cap_s: float) -> Policy:
    return lambda failures, rng: min(cap_s, 0.5 * 2 ** min(failures, 60)) * rng.uniform(0.5, 1)


POLICIES: dict[str, Policy] = {
    "before: 0.5-1 x ceiling, cap 60 s": before,
    f"simulator: full jitter, cap {link.RECONNECT_MAX_S:.0f} s": link.reconnect_delay,
    "full jitter, cap 10 s": full_jitter_capped(10.0),
    "full jitter, cap 30 s": full_jitter_capped(30.0),
    "0.5-1 x ceiling, cap 15 s": half_jitter_capped(15.0),
}


def back_after_listen(
    policy: Policy, cars: int, down_s: float, refusing_s: float
) -> tuple[list[float], float]:
    """Seconds after the platform listens until each car is in; attempts/s while down."""
    rng = random.Random(1)
    back: list[float] = []
    attempts_down = 0
    for _ in range(cars):
        at, failures = rng.uniform(0.0, 0.5), 0  # the first retry after the drop
        while at < down_s + refusing_s:
            attempts_down += at < down_s
            failures += 1
            at += policy(failures, rng)
        back.append(at - down_s)
    return sorted(back), attempts_down / down_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cars", type=int, default=10_000)
    parser.add_argument("--refusing", type=float, default=1.5, help="seconds (default 1.5)")
    args = parser.parse_args()
    print(
        "| platform down | policy | back after it listens: p50 / p90 / last "
        "| busiest second after it listens | attempts/s while down |"
    )
    print("|---|---|---|---|---|")
    for down_s in (8.0, 15.0, 30.0, 60.0):
        for name, policy in POLICIES.items():
            back, rate = back_after_listen(policy, args.cars, down_s, args.refusing)
            p50, p90 = statistics.median(back), back[int(0.9 * (len(back) - 1))]
            # The storm the platform sees: cars arriving in its busiest second.
            peak = max(Counter(int(at) for at in back).values())
            print(
                f"| {down_s:.0f} s | {name} | {p50:.1f} / {p90:.1f} / {back[-1]:.1f} s "
                f"| {peak:,} cars | {rate:,.0f} |"
            )


if __name__ == "__main__":
    main()
