"""A car's backlog travels in batch messages the platform accepts (not dead letters)."""

from __future__ import annotations

from collections import deque

from carcloud.sim.batching import MAX_BATCH_BYTES, backlog_batches
from carcloud.sim.runner import BACKLOG_BATCH, next_sample
from carcloud_agent.protocol.telemetry import DEFAULT_MAX_MESSAGE_BYTES, encode_batch
from tests.sim.vehicles import make_vehicle


def test_a_backlog_of_full_samples_is_sent_in_messages_under_the_limit() -> None:
    vehicle = make_vehicle("nordwind", "Kombi", seed=4, first_departure_s=0.0)
    recorded = [next_sample(vehicle, 1.0) for _ in range(300)]  # 5 minutes offline at 1 Hz
    backlog = deque(recorded)
    batches = list(backlog_batches(backlog, BACKLOG_BATCH, MAX_BATCH_BYTES))
    assert not backlog
    # Every sample once, in order.
    assert [(s.ts, dict(s.signals)) for batch in batches for s in batch] == recorded
    for seq, batch in enumerate(batches, 1):
        size = len(encode_batch(seq, batch))
        assert size <= MAX_BATCH_BYTES < DEFAULT_MAX_MESSAGE_BYTES
        assert len(batch) <= BACKLOG_BATCH
    # A PHEV reports ~70 signals: 60 samples would be ~3 times the platform's limit, so the
    # bytes decide, and the batches are still well filled.
    assert len(encode_batch(0, [s for batch in batches[:2] for s in batch])) > MAX_BATCH_BYTES
    assert all(len(encode_batch(0, batch)) > MAX_BATCH_BYTES * 0.9 for batch in batches[:-1])
