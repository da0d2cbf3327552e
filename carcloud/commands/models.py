"""Commands and their lifecycle: queued -> delivered -> succeeded | failed | expired | cancelled."""

from __future__ import annotations

from dataclasses import dataclass

OPEN_STATUSES = ("queued", "delivered")
FINAL_STATUSES = ("succeeded", "failed", "expired", "cancelled")


@dataclass(frozen=True, slots=True)
class CommandTransition:
    """One step of a command's lifecycle."""

    status: str
    at: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command for one vehicle and where it stands."""

    id: str
    vin: str
    kind: str
    params: dict[str, object]
    status: str
    reason: str | None
    idempotency_key: str | None
    created_at: int
    expires_at: int
    delivered_at: int | None
    completed_at: int | None
    transitions: tuple[CommandTransition, ...] = ()

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


# Which status may follow which: a final status never changes again.
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "delivered": ("queued",),
    "succeeded": OPEN_STATUSES,
    "failed": OPEN_STATUSES,
    "expired": OPEN_STATUSES,
    "cancelled": OPEN_STATUSES,
}


def lifecycle_steps(
    current: str, status: str, at: int, reason: str | None = None
) -> tuple[CommandTransition, ...]:
    """The transitions that take a command from `current` to `status`; () if not allowed.

    A result proves delivery even when no 'received' came first, so a queued
    command that succeeds or fails passes through 'delivered' on the way.
    """
    allowed = ALLOWED_FROM.get(status)
    if allowed is None:
        raise ValueError(f"no transition into {status!r}")
    if current not in allowed:
        return ()
    step = CommandTransition(status, at, reason)
    if status in ("succeeded", "failed") and current == "queued":
        return (CommandTransition("delivered", at), step)
    return (step,)
