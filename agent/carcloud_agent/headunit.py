"""Cards for the head unit: the agent appends each card it receives to a JSON-lines file.

The local interface between the agent and the head unit (documented in
docs/protocol.md, "Cards on the head unit"): one line per card, in the order received,

    {"received_at": "2026-12-07T08:41:03.120000Z",
     "card": {"id": "ntf_…", "kind": "navigation", "title": "Leave by 09:40 for Design review",
              "body": "…", "actions": [{"id": "navigate", "label": "Navigate",
              "uri": "geo:52.507600,13.390400"}], "expires_at": "2026-12-07T09:00:00.000000Z"}}

The head unit follows the file (like `tail -F`), shows each card until it expires or
the driver dismisses it, and drops an id it has shown already. A meeting's join action
(a `call_join` without a carcloud room) comes as a `"call"` line instead of `"card"`,
and the head unit answers it in its replies file (carcloud_agent.calljoin). The file is rotated to
`<name>.1` when it passes `max_bytes`, so it never fills the disk.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson

from carcloud_agent.protocol.calls import CallJoin
from carcloud_agent.protocol.notifications import Notification, encode_notification
from carcloud_agent.timeutil import format_us, now_us

log = logging.getLogger(__name__)

MAX_BYTES = 1024 * 1024


class HeadUnitFeed:
    """Appends cards to `path` as JSON lines (one write and flush per card)."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.written = 0

    def deliver(self, card: Notification) -> None:
        """Hand one card to the head unit."""
        self._append("card", orjson.loads(encode_notification(card)), card.id)

    def deliver_call(self, join: CallJoin) -> bool:
        """Hand a meeting's join action to the head unit's meeting app; False if not written."""
        action = {k: v for k, v in join.params()["join"].items() if k != "room"}
        return self._append("call", {"call_id": join.call_id, **action}, join.call_id)

    def _append(self, kind: str, body: dict[str, object], what: str) -> bool:
        line = orjson.dumps({"received_at": format_us(now_us()), kind: body})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size + len(line) > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            with self.path.open("ab") as feed:
                feed.write(line + b"\n")
        except OSError as exc:
            log.warning("agent: cannot hand %s %s to the head unit (%s): %s", kind, what,
                        self.path, exc)  # fmt: skip
            return False
        self.written += 1
        return True
