"""Commit receipts: the cloud tells each car which of its telemetry it has durably stored.

A PUBACK is not proof of storage: nats-server acknowledges an MQTT QoS 1 publish
before the TELEMETRY stream has stored it, so a crash (or a lost stream leader)
loses messages the car was told had arrived. Only ingest knows what is committed,
so after each commit it sends the car a receipt on `vehicles/{vin}/receipts`:

    {"ranges": [[1, 40], [42, 42]]}

inclusive ranges of the seqs it has committed since its last receipt to that car
(stored now, found already stored, or refused for good as a dead letter: resending
any of them could never change what carcloud holds). Receipts are not cumulative:
each names only what is new, so a lost receipt costs a resend of what it named,
which the (vin, seq) key turns into a duplicate, which is then receipted again.

Receipts are coalesced per car: at most one per `every_s` (1 s by default), and
at once after a backlog batch (a message with `samples`) so that a car draining an
outage frees its outbox without waiting. They travel as plain NATS messages (QoS 0
for the car): only cars that are connected get them, which is all that matters —
a car that is offline resends after it reconnects anyway.

Routing: services live in account APP, cars in VEH0..VEH7. Ingest publishes on
`carcloud.receipts.{account}.{vin}`; APP exports `carcloud.receipts.>` and each
vehicle account imports only its own `carcloud.receipts.VEHn.*`, mapped to
`vehicles.*.receipts` (see `natsserver.render_config`). So a receipt reaches only
the account of its car, and there only the car's own subtree, which only that car
may subscribe to.

The receipt's codec is part of the protocol the car shares:
`carcloud_agent.protocol.receipts`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from carcloud.messaging import topics
from carcloud.messaging.accounts import vehicle_account
from carcloud_agent.protocol.receipts import encode_receipt, seq_ranges

DEFAULT_EVERY_S = 1.0


def receipt_route(vin: str) -> str:
    """The APP subject a receipt for `vin` is published on (mapped into the car's account)."""
    return f"{topics.RECEIPT_ROUTE}.{vehicle_account(vin)}.{vin}"


Publish = Callable[[str, bytes], Awaitable[None]]


class ReceiptSender:
    """Collects committed seqs per car and sends them as coalesced receipts.

    `note` after each commit, then `flush`: a car whose last receipt is at least
    `every_s` old, or whose batch was a backlog, gets its receipt at once; the rest
    wait until their time is due and go out on a later `flush` (the ingest loop calls
    it at least every half second, so a receipt is at most about `every_s` + 0.5 s
    behind its commit).
    """

    def __init__(
        self,
        publish: Publish,
        every_s: float = DEFAULT_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publish = publish
        self.every_s = every_s
        self._clock = clock
        self._pending: dict[str, list[int]] = {}
        self._urgent: set[str] = set()
        self._last_sent: dict[str, float] = {}
        self._next_due = float("inf")
        self.sent = 0

    def __repr__(self) -> str:
        return f"ReceiptSender(every_s={self.every_s}, waiting={len(self._pending)})"

    def note(self, vin: str, seq: int, backlog: bool = False) -> None:
        """Remember that (vin, seq) is committed; a backlog batch makes its receipt urgent."""
        waiting = self._pending.get(vin)
        if waiting is None:
            self._pending[vin] = [seq]
            due = self._last_sent.get(vin, float("-inf")) + self.every_s
            self._next_due = min(self._next_due, due)
        else:
            waiting.append(seq)
        if backlog:
            self._urgent.add(vin)

    async def flush(self) -> None:
        """Send every receipt that is due now (cheap when none is)."""
        for subject, payload in self.take_due():
            await self._publish(subject, payload)
            self.sent += 1

    def take_due(self) -> list[tuple[str, bytes]]:
        """The receipts due now, as (subject, body), forgotten here once taken.

        Taken in one go without awaiting, so that two flushes on one event loop (the
        pull loop's and a commit's) never take the same car's seqs twice.
        """
        now = self._clock()
        if not self._urgent and now < self._next_due:
            return []
        due_before = now - self.every_s
        next_due = float("inf")
        receipts: list[tuple[str, bytes]] = []
        for vin in list(self._pending):
            last = self._last_sent.get(vin, float("-inf"))
            if vin in self._urgent or last <= due_before:
                seqs = self._pending.pop(vin)
                self._last_sent[vin] = now
                receipts.append((receipt_route(vin), encode_receipt(seq_ranges(seqs))))
            else:
                next_due = min(next_due, last + self.every_s)
        self._urgent.clear()
        self._next_due = next_due
        if len(self._last_sent) > 4 * (len(self._pending) + 1024):
            # Forget cars that have been quiet for a while: the map stays as big as the
            # active fleet, not every car ever seen.
            self._last_sent = {
                vin: at
                for vin, at in self._last_sent.items()
                if at > due_before or vin in self._pending
            }
        return receipts
