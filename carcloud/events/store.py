"""What the events slice needs persisted: the outbox, read in order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from carcloud.events.models import DomainEvent, NewEvent


class EventStore(Protocol):
    """The outbox table: events appended by other stores' transactions, relayed once."""

    async def append(self, events: Sequence[NewEvent]) -> list[DomainEvent]:
        """Store events on their own (a change whose store writes none itself)."""
        ...

    async def list_events(
        self,
        after: int,
        brand: str | None,
        types: Sequence[str] = (),
        vin: str | None = None,
        limit: int = 100,
    ) -> list[DomainEvent]:
        """Events with id > `after`, oldest first; `brand` None sees every brand."""
        ...

    async def last_id(self) -> int:
        """The newest event id (0 when there is none)."""
        ...

    async def unrelayed(
        self, limit: int, ids: Sequence[int] | None = None, before: int | None = None
    ) -> list[DomainEvent]:
        """Events not yet published, oldest first; only these ids, or only older ones."""
        ...

    def take_committed(self) -> list[DomainEvent]:
        """Events that this process's transactions committed since the last call."""
        ...

    async def mark_relayed(self, ids: Sequence[int], at: int) -> None:
        """Record that these events are in the EVENTS stream."""
        ...

    async def prune(self, before: int) -> int:
        """Delete relayed events older than `before`; how many."""
        ...

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from any thread) after a transaction that wrote events commits."""
        ...
