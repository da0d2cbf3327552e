"""The car side of remote control in the simulator: commands and desired properties.

What a real car (and the edge agent) must do, done for simulated cars:
- recognise a command delivered twice by its id and answer it once; if the answer
  may have been lost (the command came again), send the same answer again;
- refuse a command whose time to live has passed;
- answer `received` at once, then `succeeded` or `failed` with a reason;
- apply each desired document once (by version) and report what it applied;
- show each card (notification) once by its id, and drop one that has expired: the agent
  hands it to the head unit, a simulated driver follows a "navigate" card's destination.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from carcloud_agent.errors import ProtocolError
from carcloud_agent.protocol import topics
from carcloud_agent.protocol.commands import CommandResult, decode_command, encode_result
from carcloud_agent.protocol.notifications import Notification, decode_notification
from carcloud_agent.protocol.twin import Reported, decode_desired, encode_reported

REMEMBERED_COMMANDS = 256
REMEMBERED_CARDS = 256
RECEIVED = CommandResult("received")

Publish = Callable[[str, bytes], None]


class Commandable(Protocol):
    """What runs commands: a simulated vehicle, or an agent's signal source."""

    @property
    def vin(self) -> str: ...

    def apply_command(self, kind: str, params: Mapping[str, object]) -> tuple[bool, str | None]:
        """Run one command; (accepted, reason)."""
        ...


def apply_desired(vehicle: Commandable, desired: dict[str, Any]) -> dict[str, str]:
    """Apply the settings a simulated car understands; returns errors by property."""
    errors: dict[str, str] = {}
    limit = desired.get("charge_limit_percent")
    if limit is not None:
        accepted, reason = vehicle.apply_command("set_charge_limit", {"percent": limit})
        if not accepted:
            errors["charge_limit_percent"] = reason or "not accepted"
    return errors


def navigate_target(card: Notification) -> tuple[float, float] | None:
    """The destination of a card's "navigate" action (a `geo:lat,lon` URI), if it has one."""
    action = next((a for a in card.actions if a.id == "navigate" and a.uri), None)
    if action is None or action.uri is None or not action.uri.startswith("geo:"):
        return None
    try:
        lat, lon = (float(part) for part in action.uri[4:].split(";")[0].split(",")[:2])
    except ValueError:
        return None
    return (lat, lon) if -90 <= lat <= 90 and -180 <= lon <= 180 else None


def follow_navigation(vehicle: Commandable, card: Notification) -> None:
    """A simulated driver taps Navigate on a time-to-leave card: the car heads there."""
    target = navigate_target(card)
    if card.kind == "navigation" and target is not None:
        vehicle.apply_command(
            "navigate_to", {"latitude": target[0], "longitude": target[1], "name": card.title}
        )


def outcome_result(accepted: bool, reason: str | None) -> CommandResult:
    """The final answer to a command the car ran."""
    return CommandResult("succeeded") if accepted else CommandResult("failed", reason)


class AnswerStore(Protocol):
    """Where a car remembers the answers it gave, by command id."""

    def get(self, command_id: str) -> CommandResult | None: ...

    def __setitem__(self, command_id: str, answer: CommandResult) -> None: ...


class RecentAnswers:
    """The last few hundred answers, in memory (simulated cars)."""

    def __init__(self) -> None:
        self._answers: OrderedDict[str, CommandResult] = OrderedDict()

    def get(self, command_id: str) -> CommandResult | None:
        return self._answers.get(command_id)

    def __setitem__(self, command_id: str, answer: CommandResult) -> None:
        self._answers[command_id] = answer
        while len(self._answers) > REMEMBERED_COMMANDS:
            self._answers.popitem(last=False)


class CarSide:
    """Handles what the cloud sends one simulated car."""

    def __init__(
        self,
        vehicle: Commandable,
        clock_us: Callable[[], int],
        on_desired: Callable[[dict[str, Any]], dict[str, str]] | None = None,
        extra_report: Callable[[], dict[str, Any]] | None = None,
        answers: AnswerStore | None = None,
        on_card: Callable[[Notification], None] | None = None,
    ) -> None:
        self.vehicle = vehicle
        self.on_card = on_card
        self.cards: OrderedDict[str, Notification] = OrderedDict()
        self.clock_us = clock_us
        self.on_desired = on_desired
        self.extra_report = extra_report
        self.answers: AnswerStore = answers if answers is not None else RecentAnswers()
        self.applied_version = 0
        self.applied: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.executed = 0

    @property
    def vin(self) -> str:
        return self.vehicle.vin

    def subscriptions(self) -> list[str]:
        """The topics a car subscribes to (QoS 0, clean session: the cloud resends on online)."""
        return [
            topics.mqtt_topic(self.vin, f"{topics.COMMANDS}/+"),
            topics.mqtt_topic(self.vin, topics.TWIN_DESIRED),
            topics.mqtt_topic(self.vin, topics.NOTIFICATIONS),
        ]

    def on_message(self, topic: str, payload: bytes, publish: Publish) -> None:
        """Dispatch one message from the cloud."""
        suffix = topic.removeprefix(f"{topics.ROOT}/{self.vin}/")
        if suffix.startswith(f"{topics.COMMANDS}/"):
            self._on_command(suffix.split("/", 1)[1], payload, publish)
        elif suffix == topics.TWIN_DESIRED:
            self._on_desired(payload, publish)
        elif suffix == topics.NOTIFICATIONS:
            self._on_card(payload)

    def _on_card(self, payload: bytes) -> None:
        try:
            card = decode_notification(payload)
        except ProtocolError:
            return  # a card that breaks the protocol's rules is not shown
        if card.id in self.cards or card.expired(self.clock_us()):
            return  # QoS 1 may deliver it twice; an expired card is not shown
        self.cards[card.id] = card
        while len(self.cards) > REMEMBERED_CARDS:
            self.cards.popitem(last=False)
        if self.on_card is not None:
            self.on_card(card)
        else:
            follow_navigation(self.vehicle, card)

    def _answer(self, command_id: str, answer: CommandResult, publish: Publish) -> None:
        publish(topics.result_topic(self.vin, command_id), encode_result(answer))

    def _on_command(self, command_id: str, payload: bytes, publish: Publish) -> None:
        known = self.answers.get(command_id)
        if known is not None:
            self._answer(command_id, known, publish)  # a duplicate: the same answer, not a rerun
            return
        answer: CommandResult
        try:
            command = decode_command(payload)
        except ProtocolError as exc:
            answer = CommandResult("failed", f"malformed command: {exc}")
        else:
            self._answer(command_id, RECEIVED, publish)
            run_async = getattr(self.vehicle, "apply_command_async", None)
            if command.expired(self.clock_us()):
                answer = CommandResult("failed", "expired before it reached the car")
            elif run_async is not None:
                # The source answers later (a network round trip): a duplicate meanwhile
                # gets 'received' again, and the final answer when it is known.
                self.answers[command_id] = RECEIVED
                task = asyncio.get_running_loop().create_task(
                    self._finish(command_id, run_async(command.kind, command.params), publish)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return
            else:
                accepted, reason = self.vehicle.apply_command(command.kind, command.params)
                self.executed += 1
                answer = outcome_result(accepted, reason)
        self.answers[command_id] = answer
        self._answer(command_id, answer, publish)

    async def _finish(
        self,
        command_id: str,
        outcome: Awaitable[tuple[bool, str | None]],
        publish: Publish,
    ) -> None:
        accepted, reason = await outcome
        self.executed += 1
        answer = outcome_result(accepted, reason)
        self.answers[command_id] = answer
        self._answer(command_id, answer, publish)

    def _on_desired(self, payload: bytes, publish: Publish) -> None:
        try:
            message = decode_desired(payload)
        except ProtocolError:
            return
        version, desired = message.version, dict(message.desired)
        if version <= self.applied_version:
            return  # already applied (a re-sync after reconnect)
        errors = (
            self.on_desired(desired)
            if self.on_desired is not None
            else apply_desired(self.vehicle, desired)
        )
        patch: dict[str, Any] = {key: None for key in self.applied if key not in desired}
        patch.update({key: value for key, value in desired.items() if key not in errors})
        patch["errors"] = errors or None
        if self.extra_report is not None:
            patch.update(self.extra_report())
        self.applied = {key: value for key, value in desired.items() if key not in errors}
        self.applied_version = version
        publish(
            topics.mqtt_topic(self.vin, topics.TWIN_REPORTED),
            encode_reported(Reported(patch, version)),
        )
