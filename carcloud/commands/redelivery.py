"""Commands handed to a car that the cloud has heard nothing final about: sent again.

nats-server acknowledges a car's QoS 1 publish before a stream has stored it
(docs/protocol.md, "commit receipts"). When a NATS node or a stream's leader is lost,
a car's `received`/`succeeded` answer can be acknowledged to the car and never
reach the VEHICLE_EVENTS stream; so can a command on its way in. The car is still
connected, so no reconnect re-sends the command, and the command would wait in
`queued` or `delivered` until it expires. Measured in tests/cluster/test_failover.py:
a command sent just after a node was killed stayed `queued` while the car had
answered it.

So the control role remembers the commands it sent to a car that just asked for
them (a new command, or a car that came online) and sends each again a few times,
with growing pauses, while it is not final. A car answers a command id it already
knows with the answer it gave (carcloud_agent.carside), so nothing runs twice. The
commands sent in bulk after the role's own reconnect are not followed: most of
them wait for offline cars, which get them again when they connect.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Pauses before each extra send; a command final by then is forgotten instead.
REDELIVER_AFTER_S = (5.0, 15.0, 45.0)
# At most this many commands are followed at once; the rest rely on reconnects.
MAX_FOLLOWED = 10_000


@dataclass
class _Followed:
    vin: str
    due: float
    sends: int  # extra sends so far


class Unanswered:
    """Commands a car was sent and that may need sending again; one per control process."""

    def __init__(
        self,
        delays_s: tuple[float, ...] = REDELIVER_AFTER_S,
        limit: int = MAX_FOLLOWED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.delays_s = delays_s
        self.limit = limit
        self.clock = clock
        self._followed: dict[str, _Followed] = {}

    def __len__(self) -> int:
        return len(self._followed)

    def sent(self, vin: str, command_id: str) -> None:
        """A command went to a car that is there to answer; follow it from now."""
        if command_id in self._followed or len(self._followed) >= self.limit:
            return
        self._followed[command_id] = _Followed(vin, self.clock() + self.delays_s[0], 0)

    def forget(self, command_id: str) -> None:
        """The command is final (or gone): stop following it."""
        self._followed.pop(command_id, None)

    def due(self) -> list[tuple[str, str]]:
        """(vin, command_id) of each command to send again now; each is then due later,
        or no longer followed after its last extra send."""
        now = self.clock()
        ready = [(cid, entry) for cid, entry in self._followed.items() if entry.due <= now]
        for command_id, entry in ready:
            entry.sends += 1
            if entry.sends >= len(self.delays_s):
                del self._followed[command_id]
            else:
                entry.due = now + self.delays_s[entry.sends]
        return [(entry.vin, command_id) for command_id, entry in ready]
