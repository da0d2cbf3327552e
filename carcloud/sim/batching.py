"""A simulated car's backlog in messages the platform accepts.

After an outage a car sends what it recorded in batch messages. carcloud refuses
a message larger than its limit (64 KiB unpacked by default) as a dead letter, so
a batch is bounded by bytes as well as by samples: a simulated car reports 60-70
signals, about 3 KB a sample, so 60 samples would be three times the limit. The
bound is the edge agent's (`carcloud_agent.runtime.BATCH_MAX_BYTES`): 48 KiB.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import orjson

from carcloud_agent.protocol.telemetry import Sample

MAX_BATCH_BYTES = 48 * 1024
ENVELOPE_BYTES = 64  # {"seq":…,"samples":[…]} around the samples


def backlog_batches(
    backlog: deque[tuple[str, dict[str, object]]], max_samples: int, max_bytes: int
) -> Iterator[list[Sample]]:
    """Take the backlog from its oldest sample on, as batches within both bounds."""
    batch: list[Sample] = []
    size = ENVELOPE_BYTES
    while backlog:
        ts, signals = backlog[0]
        grows = len(orjson.dumps({"ts": ts, "signals": signals})) + 1
        if batch and (len(batch) >= max_samples or size + grows > max_bytes):
            yield batch
            batch, size = [], ENVELOPE_BYTES
        backlog.popleft()
        batch.append(Sample(ts, signals))
        size += grows
    if batch:
        yield batch
