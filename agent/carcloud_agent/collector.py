"""The agent's side of campaigns: over every sample, send exactly what they ask for."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from carcloud_agent.campaigns import (
    CampaignDefinition,
    Condition,
    compile_condition,
    parse_campaign,
)
from carcloud_agent.errors import ValidationError

Output = tuple[str, dict[str, object]]


@dataclass
class _Running:
    definition: CampaignDefinition
    condition: Condition | None
    last_sent_ms: int | None = None
    last_fired_ms: int | None = None
    was_true: bool = False
    post_until_ms: int = -1
    sent_until_ms: int = -1  # a pre-trigger window never re-sends what was sent
    fired: int = 0


@dataclass
class Collector:
    """Active campaigns, the latest value of every signal, and a short history."""

    campaigns: dict[str, _Running] = field(default_factory=dict)
    latest: dict[str, object] = field(default_factory=dict)
    history: deque[tuple[int, str, dict[str, object]]] = field(default_factory=deque)

    def update(self, documents: Mapping[str, Any]) -> dict[str, str]:
        """Replace the campaigns with those in the desired document; errors by name."""
        errors: dict[str, str] = {}
        running: dict[str, _Running] = {}
        for name, body in documents.items():
            try:
                definition = parse_campaign(name, body if isinstance(body, dict) else {})
            except ValidationError as exc:
                errors[name] = str(exc)
                continue
            if not definition.active:
                continue
            previous = self.campaigns.get(name)
            if previous is not None and previous.definition == definition:
                running[name] = previous  # unchanged: keep its timing state
                continue
            condition = compile_condition(definition.condition)[0] if definition.condition else None
            running[name] = _Running(definition, condition)
        self.campaigns = running
        return errors

    def status(self) -> dict[str, dict[str, object]]:
        """What each campaign is doing, for the reported twin."""
        return {
            name: {"running": True, "triggered": state.fired}
            for name, state in self.campaigns.items()
        }

    def process(self, ts: str, t_ms: int, values: Mapping[str, object]) -> list[Output]:
        """Messages to send for this sample, oldest first."""
        self.latest.update(values)
        if not self.campaigns:
            return [(ts, dict(values))]  # no campaign: the car's default, everything
        keep_ms = max((c.definition.pre_trigger_ms for c in self.campaigns.values()), default=0)
        self.history.append((t_ms, ts, dict(values)))
        while self.history and self.history[0][0] < t_ms - keep_ms:
            self.history.popleft()
        out: dict[str, tuple[int, dict[str, object]]] = {}

        def emit(
            at_ms: int, at: str, source: Mapping[str, object], wanted: tuple[str, ...]
        ) -> None:
            chosen = {path: source[path] for path in wanted if path in source}
            if chosen:
                out.setdefault(at, (at_ms, {}))[1].update(chosen)

        for state in self.campaigns.values():
            definition = state.definition
            if state.condition is None:
                if state.last_sent_ms is None or t_ms - state.last_sent_ms >= definition.period_ms:
                    state.last_sent_ms = t_ms
                    emit(t_ms, ts, self.latest, definition.signals)
                continue
            holds = state.condition(self.latest)
            edge = holds and (definition.mode == "always" or not state.was_true)
            state.was_true = holds
            spaced = (
                state.last_fired_ms is None
                or t_ms - state.last_fired_ms >= definition.min_interval_ms
            )
            if edge and spaced:
                state.last_fired_ms = t_ms
                state.fired += 1
                state.post_until_ms = t_ms + definition.post_trigger_ms
                for at_ms, at, past in self.history:
                    if (
                        max(t_ms - definition.pre_trigger_ms, state.sent_until_ms + 1)
                        <= at_ms
                        < t_ms
                    ):
                        emit(at_ms, at, past, definition.signals)
                emit(t_ms, ts, self.latest, definition.signals)
                state.sent_until_ms = t_ms
            elif t_ms <= state.post_until_ms:
                emit(t_ms, ts, self.latest, definition.signals)
                state.sent_until_ms = t_ms
        return [(at, chosen) for at, (_, chosen) in sorted(out.items(), key=lambda kv: kv[1][0])]
