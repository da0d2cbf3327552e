"""What telemetry needs persisted: history, latest state, dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from carcloud.events.models import NewEvent
from carcloud.ingest.models import (
    DeadLetter,
    HistoryPoint,
    IngestResult,
    LatestState,
    TelemetryMessage,
)
from carcloud.ingest.retention import RetentionPlan, RetentionReport
from carcloud.ingest.rollup import RollupReport
from carcloud.registry.models import Vehicle


class IngestPolicy(Protocol):
    """The ingest slice's rules that a write applies inside its transaction."""

    def unknown_vin(self, message: TelemetryMessage) -> DeadLetter:
        """The dead letter for a message of a VIN nobody registered."""
        ...

    def dead_letter_events(self, letter: DeadLetter) -> Sequence[NewEvent]:
        """The events a stored dead letter produces."""
        ...


class TelemetryStore(Protocol):
    """Telemetry history and latest state, idempotent by (vin, seq)."""

    # True: every write folds its rows into the minute aggregates in its own transaction
    # (PostgreSQL), so `roll_up_history` has nothing to do; False: a periodic pass folds
    # closed minutes behind a watermark (SQLite). Bucketed answers are the same either way.
    folds_at_write: bool

    async def write_telemetry(
        self,
        messages: Sequence[TelemetryMessage],
        dead_letters: Sequence[DeadLetter],
        policy: IngestPolicy | None = None,
    ) -> IngestResult:
        """Store messages (deduplicated by vin and seq) and dead letters in one transaction.

        Messages of unknown VINs become dead letters by `policy`; without one they are
        only counted in the result.
        """
        ...

    async def latest_state(self, vin: str) -> LatestState:
        """The newest value of every signal the vehicle has reported."""
        ...

    async def latest_values(self, vin: str, paths: Sequence[str]) -> LatestState:
        """The newest value of a few signals of one vehicle, in the order of `paths` (those
        it has reported; a path outside the catalog is none of them). Reads only those
        signals, so a caller that needs three of them does not decode the whole state."""
        ...

    async def fleet_overview(
        self, brand: str | None, paths: Sequence[str], limit: int = 1000, offset: int = 0
    ) -> list[tuple[Vehicle, LatestState]]:
        """Vehicles with the newest value of a few signals each, in one query (dashboards)."""
        ...

    async def history(
        self,
        vin: str,
        path: str,
        start: int | None,
        end: int | None,
        limit: int,
        bucket_us: int | None = None,
    ) -> list[HistoryPoint]:
        """Values of one signal in [start, end), oldest first, optionally averaged per bucket."""
        ...

    async def count_samples(self, vin: str | None = None) -> int:
        """How many history rows (vehicle, time) are stored, for one vehicle or all."""
        ...

    async def prepare_history(self, days: Sequence[int]) -> int:
        """Make room for the history of these days (day starts, UTC) ahead of time.

        PostgreSQL creates the days' partitions (and moves rows of those days out of
        the default partition); SQLite needs nothing. Returns how many were created.
        """
        ...

    async def roll_up_history(self, until: int) -> RollupReport:
        """Fold every vehicle's closed minutes before `until` into per-minute aggregates:
        the minutes after its watermark, and again those that got rows after they were
        folded. Bucketed history reads the aggregates up to each vehicle's clean watermark
        and the raw rows after it (`carcloud.ingest.rollup`)."""
        ...

    async def expire_history(self, plan: RetentionPlan) -> RetentionReport:
        """Apply a retention plan: fold what the rollup has not folded yet of full-rate
        history before `plan.full_rate_from` (when `plan.downsample`), remove it, and remove
        aggregates before `plan.downsampled_from`. Bucketed history keeps answering
        from the aggregates."""
        ...

    async def list_dead_letters(
        self, vin: str | None, brand: str | None, limit: int, before_id: int | None = None
    ) -> list[DeadLetter]:
        """Dead letters, newest first."""
        ...
