"""History upkeep by the ingest role: minute rollups, partitions ahead of time, retention.

The rollup pass runs at start and then every `rollup_every_s` (a minute) where the
store needs one (SQLite; PostgreSQL folds each write's rows into their minutes in the
write itself: `TelemetryStore.folds_at_write`); partitions and retention every
`every_s` (an hour), after a rollup, so that retention finds the days it drops already
folded. Each ingest process runs it; the backends make concurrent passes of several
processes safe (PostgreSQL: an advisory lock; SQLite: one write transaction per chunk).
`carcloud retention` runs one full pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from carcloud.errors import CarcloudError
from carcloud.ingest.retention import RetentionPolicy, RetentionReport, days_to_prepare
from carcloud.ingest.rollup import ROLLUP_EVERY_S, RollupReport, rollup_until
from carcloud.ingest.store import TelemetryStore
from carcloud.timeutil import now_us

log = logging.getLogger(__name__)

MAINTENANCE_EVERY_S = 3600.0


@dataclass(frozen=True)
class MaintenanceReport:
    """What one pass did: partitions created, minutes rolled up and, with a policy, what
    retention removed."""

    partitions_created: int
    retention: RetentionReport | None
    rollup: RollupReport | None = None


async def maintain_history(
    store: TelemetryStore, policy: RetentionPolicy, now: int | None = None
) -> MaintenanceReport:
    """One pass: prepare the coming days' history, fold closed minutes, apply retention."""
    at = now_us() if now is None else now
    created = await store.prepare_history(days_to_prepare(at))
    rollup = await store.roll_up_history(rollup_until(at))
    plan = policy.plan(at)
    if plan.full_rate_from is None and plan.downsampled_from is None:
        return MaintenanceReport(created, None, rollup)
    return MaintenanceReport(created, await store.expire_history(plan), rollup)


async def roll_up(store: TelemetryStore, now: int | None = None) -> RollupReport:
    """Fold the minutes closed since the last pass (and those late rows made dirty)."""
    return await store.roll_up_history(rollup_until(now_us() if now is None else now))


class HistoryMaintenance:
    """The periodic passes, as a role runner."""

    def __init__(
        self,
        store: TelemetryStore,
        policy: RetentionPolicy,
        every_s: float = MAINTENANCE_EVERY_S,
        rollup_every_s: float = ROLLUP_EVERY_S,
    ) -> None:
        self.store, self.policy, self.every_s = store, policy, every_s
        self.rollup_every_s = rollup_every_s

    async def run(self, stop: asyncio.Event) -> None:
        """A full pass every `every_s`, a rollup every `rollup_every_s` between (until stop);
        a failed pass is logged and retried."""
        failing = False
        full_due = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                report: MaintenanceReport | RollupReport | None = None
                if loop.time() >= full_due:
                    report = await maintain_history(self.store, self.policy)
                    full_due = loop.time() + self.every_s
                elif not self.store.folds_at_write:
                    report = await roll_up(self.store)
            except CarcloudError as exc:
                if not failing:
                    log.warning("history maintenance failed (will retry): %s", exc)
                failing = True
            else:
                if failing:
                    log.info("history maintenance recovered")
                failing = False
                if isinstance(report, MaintenanceReport) and (
                    report.partitions_created or report.retention
                ):
                    log.info("history maintenance: %s", report)
            pause = self.every_s
            if not self.store.folds_at_write:
                pause = min(pause, self.rollup_every_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
