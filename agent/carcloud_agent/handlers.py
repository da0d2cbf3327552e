"""Command handlers of the agent: a registry, extended by plugins through entry points.

A handler takes the signal source and the command's parameters and answers
`(accepted, reason)`, directly or as an awaitable. Built in: every kind goes to
the source (`apply_command`, or `apply_command_async` for sources that need a
round trip). A package adds or replaces handlers by declaring an entry point in
the group `carcloud.agent.handlers` whose name is the command kind:

    [project.entry-points."carcloud.agent.handlers"]
    custom = "mybrand.agent:handle_custom"
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from carcloud_agent.sources import SignalSource

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "carcloud.agent.handlers"
Outcome = tuple[bool, str | None]
Handler = Callable[[SignalSource, Mapping[str, object]], Outcome | Awaitable[Outcome]]


def load_plugins() -> dict[str, Handler]:
    """Handlers installed packages declare, by command kind."""
    found: dict[str, Handler] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[entry.name] = entry.load()
        except Exception as exc:  # a broken plugin must not stop the car's agent
            log.error("agent: handler plugin %s could not be loaded: %s", entry.value, exc)
    return found


class HandledSource:
    """A signal source whose commands go through the handler registry first."""

    def __init__(self, source: SignalSource, handlers: Mapping[str, Handler] | None = None) -> None:
        self.source = source
        self.handlers = dict(load_plugins() if handlers is None else handlers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)

    @property
    def vin(self) -> str:
        return self.source.vin

    def register(self, kind: str, handler: Handler) -> None:
        """Add or replace the handler of one command kind."""
        self.handlers[kind] = handler

    async def apply_command_async(self, kind: str, params: Mapping[str, object]) -> Outcome:
        """Run a command through its handler, or the source."""
        handler = self.handlers.get(kind)
        if handler is not None:
            outcome = handler(self.source, params)
            return await outcome if inspect.isawaitable(outcome) else outcome
        run_async = getattr(self.source, "apply_command_async", None)
        if run_async is not None:
            result: Outcome = await run_async(kind, params)
            return result
        return self.source.apply_command(kind, params)

    def apply_command(self, kind: str, params: Mapping[str, object]) -> Outcome:
        """Desired properties use this path: only synchronous handling."""
        return self.source.apply_command(kind, params)
