"""History upkeep: partitions made ahead of time and retention applied, by the ingest role.

Runs at start and then every `every_s`, in each ingest process; the backends make
concurrent passes of several processes safe (PostgreSQL: an advisory lock;
SQLite: one write transaction per chunk). `carcloud retention` runs one pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from carcloud.errors import CarcloudError
from carcloud.ingest.retention import RetentionPolicy, RetentionReport, days_to_prepare
from carcloud.ingest.store import TelemetryStore
from carcloud.timeutil import now_us

log = logging.getLogger(__name__)

MAINTENANCE_EVERY_S = 3600.0


@dataclass(frozen=True)
class MaintenanceReport:
    """What one pass did: partitions created and, with a policy, what retention removed."""

    partitions_created: int
    retention: RetentionReport | None


async def maintain_history(
    store: TelemetryStore, policy: RetentionPolicy, now: int | None = None
) -> MaintenanceReport:
    """One pass: prepare the coming days' history, then apply the retention policy."""
    at = now_us() if now is None else now
    created = await store.prepare_history(days_to_prepare(at))
    plan = policy.plan(at)
    if plan.full_rate_from is None and plan.downsampled_from is None:
        return MaintenanceReport(created, None)
    return MaintenanceReport(created, await store.expire_history(plan))


class HistoryMaintenance:
    """The periodic pass, as a role runner."""

    def __init__(
        self, store: TelemetryStore, policy: RetentionPolicy, every_s: float = MAINTENANCE_EVERY_S
    ) -> None:
        self.store, self.policy, self.every_s = store, policy, every_s

    async def run(self, stop: asyncio.Event) -> None:
        """Pass, then wait `every_s` (or until stop); a failed pass is logged and retried."""
        failing = False
        while not stop.is_set():
            try:
                report = await maintain_history(self.store, self.policy)
            except CarcloudError as exc:
                if not failing:
                    log.warning("history maintenance failed (will retry): %s", exc)
                failing = True
            else:
                if failing:
                    log.info("history maintenance recovered")
                failing = False
                if report.partitions_created or report.retention:
                    log.info("history maintenance: %s", report)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)
