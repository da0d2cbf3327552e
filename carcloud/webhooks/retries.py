"""When a failed delivery is tried again, and when it is given up.

Exponential backoff with jitter from the one backoff helper of the platform
(`carcloud_agent.protocol.backoff`): after the n-th failed attempt wait
`first + full_jitter(first, cap, n - 1)`, so never less than `first` and never in
lockstep with other deliveries. A delivery is retried until `give_up_after` has
passed since it was queued (24 hours by default, more than Smartcar's three
retries in three minutes); the first failure after that marks it failed, visible
in the API, never dropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from carcloud.webhooks.models import Delivery, DeliveryStatus, Outcome
from carcloud_agent.protocol.backoff import full_jitter

SECOND_US = 1_000_000


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff bounds and the retry window, in seconds."""

    first_delay_s: float = 5.0
    max_delay_s: float = 3600.0
    give_up_after_s: float = 24 * 3600.0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.first_delay_s <= self.max_delay_s:
            raise ValueError("need 0 < first_delay_s <= max_delay_s")
        if self.give_up_after_s <= 0:
            raise ValueError("give_up_after_s must be above 0")

    @property
    def window_us(self) -> int:
        """How long after queueing a delivery is still retried."""
        return int(self.give_up_after_s * SECOND_US)

    def delay_s(self, failed_attempts: int) -> float:
        """The wait after `failed_attempts` (1 or more) failures in a row."""
        jitter = full_jitter(self.first_delay_s, self.max_delay_s, failed_attempts - 1, self.rng)
        return self.first_delay_s + jitter

    def succeeded(self, delivery: Delivery, at: int, status_code: int) -> Outcome:
        """The receiver answered 2xx."""
        return Outcome(DeliveryStatus.SUCCEEDED, delivery.attempts + 1, at, None, status_code, None)

    def failed(
        self, delivery: Delivery, at: int, status_code: int | None, error: str, final: bool = False
    ) -> Outcome:
        """An attempt failed: retry later, or give up past the window (or when `final`)."""
        attempts = delivery.attempts + 1
        if final or at >= delivery.retry_until:
            return Outcome(DeliveryStatus.FAILED, attempts, at, None, status_code, error)
        due = at + int(self.delay_s(attempts) * SECOND_US)
        return Outcome(DeliveryStatus.PENDING, attempts, at, due, status_code, error)
