"""The car answers a `call_join` itself, and reports the call on `vehicles/{vin}/events`.

- A carcloud room: the car joins it over WebRTC with its call module
  (`carcloud_agent.call`, the `call` extra) with the microphone and speaker output of
  `[call]` (`microphone`, `speaker`), reports `joined` once media flows, and
  `left` when the connection ends (kicked, room closed) or the driver hangs up on the
  head unit. Without the extra it reports `failed`, naming the extra.
- Any other meeting (a Teams/Zoom link, a `tel:` dial-in): the join action goes to the
  head unit's meeting app as a `"call"` line of the agent's head-unit file (the local
  interface of carcloud_agent.headunit). The head unit answers by appending the car's
  own report body to its replies file (`[headunit] replies_path`), one line each:

      {"type": "call", "call_id": "call_1f…", "state": "joined", "reason": null}

  `joined` is reported when the head unit says so; `failed` with its reason, or with
  "no answer from the head unit" when nothing answers within `[headunit] call_confirm_s`.
  Its `left` or `failed` later ends the call.

The command itself succeeds as soon as the car has taken the action; the call's own
progress travels in the reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from carcloud_agent.errors import CarcloudError, ProtocolError
from carcloud_agent.headunit import HeadUnitFeed
from carcloud_agent.protocol.calls import (
    MAX_REASON,
    CallJoin,
    CallReport,
    CallState,
    decode_call_report,
    join_of_params,
)

log = logging.getLogger(__name__)

POLL_S = 0.2
NO_CALL_MODULE = (
    "this car has no call module for carcloud rooms: pip install 'carcloud-agent[call]'"
)

Report = Callable[[CallReport], None]


class HeadUnitReplies:
    """Follows the head unit's replies file from where it ended when the agent started."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = self._size()
        self._partial = b""

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def read_new(self) -> list[CallReport]:
        """The replies written since the last read (a malformed line is logged and skipped)."""
        size = self._size()
        if size < self._offset:  # rotated or truncated: start over
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return []
        try:
            with self.path.open("rb") as replies:
                replies.seek(self._offset)
                data = replies.read(size - self._offset)
        except OSError as exc:
            log.warning("agent: cannot read the head unit's replies (%s): %s", self.path, exc)
            return []
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for its end
        found = []
        for line in lines:
            if not line.strip():
                continue
            try:
                found.append(decode_call_report(line))
            except ProtocolError as exc:
                log.warning("agent: ignoring a head unit reply: %s", exc)
        return found


class CallJoiner:
    """The `call_join` handler: one task per call, until it ends."""

    def __init__(
        self,
        report: Report,
        feed: HeadUnitFeed,
        replies: HeadUnitReplies,
        confirm_timeout_s: float = 30.0,
        microphone: str = "alsa:default",
        speaker: str = "alsa:default",
    ) -> None:
        self.report = report
        self.feed = feed
        self.replies = replies
        self.confirm_timeout_s = confirm_timeout_s
        self.microphone = microphone
        self.speaker = speaker
        self._calls: dict[str, asyncio.Task[None]] = {}
        self._waiting: dict[str, asyncio.Queue[CallReport]] = {}
        self._follower: asyncio.Task[None] | None = None
        self.room_calls: dict[str, Any] = {}  # call_id -> carcloud_agent.call.RoomCall

    async def handle(self, source: object, params: Mapping[str, object]) -> tuple[bool, str | None]:
        """Take a join action: (accepted, reason) for the command; the call goes on alone."""
        try:
            join = join_of_params(params)
        except ProtocolError as exc:
            return False, str(exc)
        if join.call_id in self._calls:
            return True, None  # sent again (a reconnect): the call is already under way
        task = asyncio.create_task(self._run(join), name=f"call {join.call_id}")
        self._calls[join.call_id] = task
        return True, None

    async def close(self) -> None:
        """Hang up every call (the agent stops)."""
        tasks = [*self._calls.values(), *([self._follower] if self._follower else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _say(self, call_id: str, state: CallState, reason: str | None = None) -> None:
        log.info("agent: call %s %s%s", call_id, state, f" ({reason})" if reason else "")
        self.report(CallReport(call_id, state, reason[:MAX_REASON] if reason else None))

    async def _run(self, join: CallJoin) -> None:
        self._waiting[join.call_id] = asyncio.Queue()
        if self._follower is None or self._follower.done():
            self._follower = asyncio.create_task(self._follow_replies())
        try:
            if join.room is not None:
                await self._in_room(join)
            else:
                await self._on_head_unit(join)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of a call is reported, not raised
            log.exception("agent: call %s failed", join.call_id)
            self._say(join.call_id, "failed", f"the car could not join: {exc}")
        finally:
            self._waiting.pop(join.call_id, None)

    async def _follow_replies(self) -> None:
        while self._waiting:
            for reply in self.replies.read_new():
                queue = self._waiting.get(reply.call_id)
                if queue is not None:
                    queue.put_nowait(reply)
            await asyncio.sleep(POLL_S)

    async def _reply(self, call_id: str, timeout_s: float | None) -> CallReport | None:
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(self._waiting[call_id].get(), timeout_s)
        return None

    async def _on_head_unit(self, join: CallJoin) -> None:
        if not self.feed.deliver_call(join):
            self._say(join.call_id, "failed", f"cannot reach the head unit ({self.feed.path})")
            return
        answer = await self._reply(join.call_id, self.confirm_timeout_s)
        if answer is None:
            self._say(
                join.call_id, "failed",
                f"no answer from the head unit within {self.confirm_timeout_s:g} s",
            )  # fmt: skip
            return
        self._say(join.call_id, answer.state, answer.reason)
        if answer.state == "joined":
            ended = await self._ended_on_head_unit(join.call_id)
            self._say(join.call_id, ended.state, ended.reason)

    async def _in_room(self, join: CallJoin) -> None:
        assert join.room is not None
        try:
            from carcloud_agent.call import join_room, microphone, speaker
        except ImportError:
            self._say(join.call_id, "failed", NO_CALL_MODULE)
            return
        try:
            # The room's audio plays on the car's speaker output ([call] speaker).
            call = await join_room(join.room, microphone(self.microphone), speaker(self.speaker))
        except CarcloudError as exc:
            self._say(join.call_id, "failed", str(exc))
            return
        self.room_calls[join.call_id] = call
        try:
            try:
                await asyncio.wait_for(call.connected.wait(), self.confirm_timeout_s)
            except TimeoutError:
                self._say(join.call_id, "failed", "no media connection to the room")
                return
            self._say(join.call_id, "joined")
            ended = asyncio.create_task(call.ended.wait())
            hung_up = asyncio.create_task(self._ended_on_head_unit(join.call_id))
            reason = "the agent stopped"
            try:
                done, _ = await asyncio.wait({ended, hung_up}, return_when=asyncio.FIRST_COMPLETED)
                reason = "the driver hung up" if hung_up in done else "the room ended the call"
            finally:
                ended.cancel()
                hung_up.cancel()
                self._say(join.call_id, "left", reason)
        finally:
            try:
                await call.close()  # the speaker output is finished before the call is gone
            finally:
                self.room_calls.pop(join.call_id, None)

    async def _ended_on_head_unit(self, call_id: str) -> CallReport:
        """The head unit's next reply that ends the call (left, or failed)."""
        while True:
            answer = await self._waiting[call_id].get()
            if answer.state != "joined":
                return answer
