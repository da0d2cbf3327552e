"""What the productivity slice needs persisted: cards sent, pre-conditioning scheduled."""

from __future__ import annotations

from typing import Protocol

from carcloud.productivity.models import Precondition, PreconditionStatus, SentCard


class ProductivityStore(Protocol):
    """Cards sent to cars (each once) and pre-conditioning commands to come.

    `brand` None is an operator's view; a vehicle of another brand is NotFoundError.
    """

    async def driven_vehicles(self) -> list[str]:
        """VINs of vehicles that have a current driver."""
        ...

    async def record_card(self, card: SentCard) -> bool:
        """Remember a card as sent; False (and nothing stored) if its key was sent before."""
        ...

    async def list_cards(self, vin: str, brand: str | None, limit: int) -> list[SentCard]:
        """A vehicle's cards, newest first."""
        ...

    async def meeting_cards(self, vin: str) -> list[SentCard]:
        """Per meeting, the newest card of each purpose, oldest first (change detection)."""
        ...

    async def schedule(self, precondition: Precondition) -> Precondition:
        """Store a new pre-conditioning, or update the due time, reason and parameters of
        the scheduled one of the same vehicle, meeting and kind (one that was sent or
        cancelled is kept as it is and returned)."""
        ...

    async def preconditions(
        self, vin: str, brand: str | None, statuses: tuple[PreconditionStatus, ...] | None
    ) -> list[Precondition]:
        """A vehicle's pre-conditioning, by due time (all statuses for None)."""
        ...

    async def set_precondition_status(
        self, precondition_id: str, status: PreconditionStatus, command_id: str | None, at: int
    ) -> None:
        """Move a pre-conditioning to `status` (with the command it became, if sent)."""
        ...
