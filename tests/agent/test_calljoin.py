"""The head unit's replies file as the agent follows it: only what was written after the
agent started, lines completed across reads, a rotated file read from its start, and a
malformed line skipped with a warning; and a join action with nothing to join refused."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from carcloud_agent.calljoin import CallJoiner, HeadUnitReplies
from carcloud_agent.headunit import HeadUnitFeed
from carcloud_agent.protocol.calls import CallReport


def reply(call_id: str, state: str) -> str:
    return json.dumps({"type": "call", "call_id": call_id, "state": state, "reason": None})


def test_replies_are_followed_from_where_the_file_ended(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "replies.jsonl"
    path.write_text(reply("call_old", "joined") + "\n")  # before the agent started
    replies = HeadUnitReplies(path)
    assert replies.read_new() == []

    with path.open("a") as out:
        out.write(reply("call_1", "joined") + "\n" + reply("call_1", "left")[:20])
    assert replies.read_new() == [CallReport("call_1", "joined")]
    with path.open("a") as out:
        out.write(reply("call_1", "left")[20:] + "\nnot json\n")
    with caplog.at_level(logging.WARNING):
        assert replies.read_new() == [CallReport("call_1", "left")]
    assert "ignoring a head unit reply" in caplog.text

    path.write_text(reply("call_2", "failed") + "\n")  # rotated: a new, shorter file
    assert replies.read_new() == [CallReport("call_2", "failed")]


async def test_a_join_action_without_anything_to_join_is_refused(tmp_path: Path) -> None:
    reports: list[CallReport] = []
    joiner = CallJoiner(
        reports.append,
        HeadUnitFeed(tmp_path / "headunit.jsonl"),
        HeadUnitReplies(tmp_path / "replies.jsonl"),
    )
    accepted, reason = await joiner.handle(None, {"call_id": "call_1", "join": {"title": "x"}})
    assert (accepted, reason) == (False, "call join has none of url, tel and room")
    assert reports == []
