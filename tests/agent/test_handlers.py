"""Command handlers on the car: a registry (plugins by entry point) and answers kept on disk."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from carcloud.timeutil import now_us
from carcloud_agent.buffer import AnswerMemory, Outbox
from carcloud_agent.carside import CarSide
from carcloud_agent.handlers import ENTRY_POINT_GROUP, HandledSource, load_plugins
from carcloud_agent.sources.simulator import SimulatorSource

VIN = "WVWZZZ1JZXW000001"


def command(
    command_id: str, kind: str, params: dict[str, object] | None = None
) -> tuple[str, bytes]:
    body = {"id": command_id, "kind": kind, "params": params or {}}
    return f"vehicles/{VIN}/commands/{command_id}", json.dumps(body).encode()


async def deliver(side: CarSide, topic: str, payload: bytes) -> list[dict[str, object]]:
    answers: list[dict[str, object]] = []
    side.on_message(topic, payload, lambda t, p: answers.append(json.loads(p)))
    for _ in range(50):
        if answers and answers[-1]["status"] != "received":
            break
        await asyncio.sleep(0.01)
    return answers


def test_a_registered_handler_runs_brand_specific_commands(tmp_path: Path) -> None:
    ran: list[Mapping[str, object]] = []

    async def flash_pattern(
        source: object, params: Mapping[str, object]
    ) -> tuple[bool, str | None]:
        ran.append(params)
        return True, None

    async def scenario() -> list[dict[str, object]]:
        handled = HandledSource(SimulatorSource(VIN), handlers={})
        handled.register("custom", lambda source, params: flash_pattern(source, params))
        side = CarSide(handled, now_us)
        return await deliver(
            side, *command("cmd_1", "custom", {"name": "flash", "parameters": {"n": 3}})
        )

    answers = asyncio.run(scenario())
    assert [a["status"] for a in answers] == ["received", "succeeded"]
    assert ran == [{"name": "flash", "parameters": {"n": 3}}]


def test_commands_without_a_handler_go_to_the_source() -> None:
    async def scenario() -> list[dict[str, object]]:
        source = SimulatorSource(VIN)
        side = CarSide(HandledSource(source, handlers={}), now_us)
        answers = await deliver(side, *command("cmd_2", "lock"))
        locked = source.vehicle.signals()["Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"]
        assert locked is True
        return answers

    assert [a["status"] for a in asyncio.run(scenario())] == ["received", "succeeded"]


def test_an_answer_survives_a_restart_and_the_command_does_not_run_twice(tmp_path: Path) -> None:
    runs: list[str] = []

    def count(source: object, params: Mapping[str, object]) -> tuple[bool, str | None]:
        runs.append("unlock")
        return True, None

    async def agent_life() -> list[dict[str, object]]:
        outbox = Outbox(tmp_path / "outbox.db")
        handled = HandledSource(SimulatorSource(VIN), handlers={"unlock": count})
        side = CarSide(handled, now_us, answers=AnswerMemory(outbox))
        answers = await deliver(side, *command("cmd_3", "unlock"))
        outbox.close()
        return answers

    first = asyncio.run(agent_life())
    again = asyncio.run(agent_life())  # a new process after a restart; the cloud resends
    assert first[-1]["status"] == "succeeded" and again == [{"status": "succeeded"}]
    assert runs == ["unlock"]


def test_plugins_are_found_by_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tiny installed distribution that declares one handler.
    (tmp_path / "acme_agent_plugin.py").write_text(
        "def honk(source, params):\n    return False, 'acme cars do not honk'\n"
    )
    info = tmp_path / "acme_agent_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-agent-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nhonk_flash = acme_agent_plugin:honk\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins = load_plugins()
    assert set(plugins) == {"honk_flash"}

    async def scenario() -> list[dict[str, object]]:
        side = CarSide(HandledSource(SimulatorSource(VIN)), now_us)
        return await deliver(side, *command("cmd_4", "honk_flash"))

    answers = asyncio.run(scenario())
    assert answers[-1] == {"status": "failed", "reason": "acme cars do not honk"}
