"""Backoff with jitter for at least 24 hours, then failed; never dropped."""

from __future__ import annotations

import random

import pytest

from carcloud.webhooks.models import Delivery, DeliveryStatus
from carcloud.webhooks.retries import SECOND_US, RetryPolicy

HOUR_US = 3600 * SECOND_US


def queued(at: int = 0) -> Delivery:
    return Delivery("msg_1", "whk_1", 1, "trip.completed", "{}", DeliveryStatus.PENDING, 0, at,
                    at, at + 24 * HOUR_US)  # fmt: skip


def test_a_dead_endpoint_is_retried_for_24_hours_then_marked_failed() -> None:
    policy = RetryPolicy(rng=random.Random(7))
    delivery, now, waits = queued(), 0, []
    while True:
        outcome = policy.failed(delivery, now, 500, "answered HTTP 500")
        if outcome.status is DeliveryStatus.FAILED:
            break
        assert outcome.next_attempt_at is not None
        waits.append(outcome.next_attempt_at - now)
        now = outcome.next_attempt_at
        delivery = Delivery(**{**_fields(delivery), "attempts": outcome.attempts})
    assert now >= 24 * HOUR_US  # retried for at least a day
    assert now < 26 * HOUR_US  # and given up soon after
    assert outcome.attempts == len(waits) + 1 and outcome.error == "answered HTTP 500"
    assert 5 * SECOND_US <= waits[0] <= 10 * SECOND_US
    assert all(wait <= 3605 * SECOND_US for wait in waits)  # capped at an hour (+ first)
    assert sum(waits[:8]) < sum(waits[8:16])  # it backs off


def test_jitter_spreads_retries() -> None:
    policy = RetryPolicy(rng=random.Random(1))
    delays = {round(policy.delay_s(6), 3) for _ in range(50)}
    assert len(delays) > 40 and all(5.0 <= d <= 165.0 for d in delays)


def test_success_and_final_failures() -> None:
    policy = RetryPolicy()
    ok = policy.succeeded(queued(), 10, 200)
    assert (ok.status, ok.attempts, ok.status_code, ok.next_attempt_at) == (
        DeliveryStatus.SUCCEEDED, 1, 200, None)  # fmt: skip
    refused = policy.failed(queued(), 10, None, "not a public address", final=True)
    assert refused.status is DeliveryStatus.FAILED
    with pytest.raises(ValueError):
        RetryPolicy(first_delay_s=0)


def _fields(delivery: Delivery) -> dict[str, object]:
    return {name: getattr(delivery, name) for name in Delivery.__slots__}
