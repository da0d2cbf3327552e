"""Store-and-forward: the agent's durable outbox.

Everything the agent sends goes through here first, so a car without network,
or one that reboots or loses power mid-write, loses nothing it has accepted:

- SQLite in WAL mode with `synchronous=FULL`: a message is on disk before
  `put` returns, and a torn write is rolled back at the next open;
- bounded by total size and by age: when a bound is hit the oldest messages of
  the lowest priority go first, and every drop is counted (durably, by reason);
- drained in order (priority first, then the order they were put), and removed
  only when the server has acknowledged them: telemetry when a commit receipt
  names the seq it was sent under (a PUBACK only marks it sent: nats-server
  acknowledges before it stores), everything else at its PUBACK.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from carcloud_agent.protocol.commands import CommandResult, decode_result, encode_result

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    priority    INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    topic       TEXT NOT NULL,
    payload     BLOB NOT NULL,
    sent_seq    INTEGER,
    sent_at     REAL
);
CREATE INDEX IF NOT EXISTS outbox_drain ON outbox (priority DESC, id);
CREATE INDEX IF NOT EXISTS outbox_evict ON outbox (priority, id);
CREATE TABLE IF NOT EXISTS answers (
    command_id  TEXT PRIMARY KEY,
    answer      TEXT NOT NULL,
    at          REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
"""
# Outboxes written before commit receipts lack the columns; added in place.
_RECEIPT_COLUMNS = (("sent_seq", "INTEGER"), ("sent_at", "REAL"))
_RECEIPT_INDEXES = (
    "CREATE INDEX IF NOT EXISTS outbox_receipt ON outbox (sent_seq)",
    "CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL",
)

# Higher drains first and is dropped last.
PRIORITY_TELEMETRY = 0  # recorded while offline: the backlog
PRIORITY_LIVE = 1  # recorded while connected
PRIORITY_CONTROL = 10


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message waiting in the outbox."""

    id: int
    topic: str
    payload: bytes
    priority: int
    created_at: float


@dataclass(frozen=True, slots=True)
class BufferStats:
    """What the agent reports about its outbox."""

    depth: int
    bytes: int
    oldest_age_s: float | None
    dropped_for_size: int
    dropped_for_age: int


class Outbox:
    """A bounded, durable, ordered queue of messages on disk."""

    def __init__(
        self,
        path: Path,
        max_bytes: int = 256 * 1024 * 1024,
        max_age_s: float = 7 * 86_400.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._now = clock or time.time
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(outbox)")}
        for name, kind in _RECEIPT_COLUMNS:
            if name not in columns:
                self._conn.execute(f"ALTER TABLE outbox ADD COLUMN {name} {kind}")
        for index in _RECEIPT_INDEXES:
            self._conn.execute(index)
        row = self._conn.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetchone()
        self._bytes = int(row[0])

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r}, max_bytes={self.max_bytes}, max_age_s={self.max_age_s})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _bump(self, name: str, by: int) -> None:
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def next_sequence(self) -> int:
        """A durable, increasing number (the `seq` of telemetry messages)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._bump("seq", 1)
            row = self._conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
            self._conn.execute("COMMIT")
            return int(row[0])

    def _set_memo(self, name: str, value: int) -> None:
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (f"memo:{name}", value),
        )

    def recall(self, name: str) -> int | None:
        """A number kept as a memo by `put_many`, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT value FROM counters WHERE name = ?", (f"memo:{name}",)
            ).fetchone()
        return int(row[0]) if row else None

    def put(self, topic: str, payload: bytes, priority: int = PRIORITY_TELEMETRY) -> None:
        """Keep a message until it is acknowledged; make room by the bounds first."""
        self.put_many([(topic, payload)], priority)

    def put_many(
        self,
        messages: Sequence[tuple[str, bytes]],
        priority: int = PRIORITY_TELEMETRY,
        memos: Mapping[str, int] | None = None,
    ) -> None:
        """Keep several messages, and the `memos` that go with them, in one transaction.

        One disk sync for all of them, and all or nothing: a crash cannot keep a memo
        (say, the source's clock after a sample) without the messages it stands for.
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                now = self._now()
                self._conn.executemany(
                    "INSERT INTO outbox (priority, created_at, topic, payload) VALUES (?, ?, ?, ?)",
                    [(priority, now, topic, payload) for topic, payload in messages],
                )
                for name, value in (memos or {}).items():
                    self._set_memo(name, value)
                self._bytes += sum(len(payload) for _, payload in messages)
                self._enforce_bounds()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                row = self._conn.execute(
                    "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox"
                ).fetchone()
                self._bytes = int(row[0])
                raise

    def _enforce_bounds(self) -> None:
        cutoff = self._now() - self.max_age_s
        expired = self._conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox WHERE created_at < ?",
            (cutoff,),
        ).fetchone()
        if expired[0]:
            self._conn.execute("DELETE FROM outbox WHERE created_at < ?", (cutoff,))
            self._bytes -= int(expired[1])
            self._bump("dropped_for_age", int(expired[0]))
        while self._bytes > self.max_bytes:
            # Oldest of the lowest priority first, a few at a time.
            victims = self._conn.execute(
                "SELECT id, LENGTH(payload) FROM outbox ORDER BY priority, id LIMIT 64"
            ).fetchall()
            if not victims:
                self._bytes = 0
                break
            freed, dropped = 0, []
            for message_id, size in victims:
                dropped.append(message_id)
                freed += size
                if self._bytes - freed <= self.max_bytes:
                    break
            marks = ",".join("?" * len(dropped))
            self._conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", dropped)
            self._bytes -= freed
            self._bump("dropped_for_size", len(dropped))

    def peek(self, limit: int) -> list[Outgoing]:
        """The next messages to send, in drain order (they stay until acknowledged).

        Messages sent and waiting for their receipt are not among them until `requeue`.
        """
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, topic, payload, priority, created_at FROM outbox "
                "WHERE sent_at IS NULL ORDER BY priority DESC, id LIMIT ?",
                (limit,),
            ).fetchall()
        return [Outgoing(row[0], row[1], bytes(row[2]), row[3], row[4]) for row in rows]

    def acknowledge(self, message_ids: list[int]) -> None:
        """Forget messages the server has taken."""
        if not message_ids:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            for start in range(0, len(message_ids), 500):
                chunk = message_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                row = self._conn.execute(
                    f"SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox WHERE id IN ({marks})",
                    chunk,
                ).fetchone()
                self._conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)
                self._bytes -= int(row[0])
            self._conn.execute("COMMIT")

    def mark_sent(self, sent: Sequence[tuple[int, Sequence[int]]]) -> None:
        """Note that messages went out (PUBACK) under a seq: (seq, message ids) pairs.

        They stay, out of `peek`, until a receipt names the seq (`receipted`) or
        they are queued again (`requeue`). One transaction for all pairs.
        """
        if not sent:
            return
        now = self._now()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "UPDATE outbox SET sent_seq = ?, sent_at = ? WHERE id = ?",
                [(seq, now, message_id) for seq, ids in sent for message_id in ids],
            )
            self._conn.execute("COMMIT")

    def receipted(self, ranges: Sequence[tuple[int, int]]) -> int:
        """Forget what was sent under the seqs of a receipt's ranges; how many went."""
        if not ranges:
            return 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            removed = 0
            for first, last in ranges:
                count, size = self._conn.execute(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox "
                    "WHERE sent_seq BETWEEN ? AND ?",
                    (first, last),
                ).fetchone()
                if count:
                    self._conn.execute(
                        "DELETE FROM outbox WHERE sent_seq BETWEEN ? AND ?", (first, last)
                    )
                    self._bytes -= int(size)
                    removed += int(count)
            self._conn.execute("COMMIT")
        return removed

    def requeue(self, sent_before: float | None = None) -> int:
        """Send again what no receipt has named: all of it, or what went out before a time.

        After a reconnect everything (the receipts may have been lost with the link, or
        the cloud lost the messages in a crash), else what waited past the receipt
        timeout. The seq they were sent under is kept: a late receipt still counts.
        """
        with self._lock:
            if sent_before is None:
                cursor = self._conn.execute(
                    "UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL"
                )
            else:
                cursor = self._conn.execute(
                    "UPDATE outbox SET sent_at = NULL WHERE sent_at < ?", (sent_before,)
                )
            return int(cursor.rowcount)

    def oldest_unreceipted(self) -> float | None:
        """When the oldest message still waiting for its receipt was sent, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT MIN(sent_at) FROM outbox WHERE sent_at IS NOT NULL"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def stats(self) -> BufferStats:
        """Depth, size, age of the oldest message and what was dropped."""
        with self._lock:
            depth, oldest = self._conn.execute(
                "SELECT COUNT(*), MIN(created_at) FROM outbox"
            ).fetchone()
            counters = dict(self._conn.execute("SELECT name, value FROM counters").fetchall())
        return BufferStats(
            depth=int(depth),
            bytes=self._bytes,
            oldest_age_s=(self._now() - oldest) if oldest is not None else None,
            dropped_for_size=int(counters.get("dropped_for_size", 0)),
            dropped_for_age=int(counters.get("dropped_for_age", 0)),
        )


class AnswerMemory:
    """Commands already answered, kept on disk: after a restart a repeated command id
    gets the same answer again instead of running twice."""

    KEEP = 1000

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def get(self, command_id: str) -> CommandResult | None:
        with self.outbox._lock:
            row = self.outbox._conn.execute(
                "SELECT answer FROM answers WHERE command_id = ?", (command_id,)
            ).fetchone()
        if row is None:
            return None
        return decode_result(row[0].encode())

    def __setitem__(self, command_id: str, answer: CommandResult) -> None:
        with self.outbox._lock:
            self.outbox._conn.execute(
                "INSERT INTO answers (command_id, answer, at) VALUES (?, ?, ?) "
                "ON CONFLICT (command_id) DO UPDATE SET answer = excluded.answer",
                (command_id, encode_result(answer).decode(), time.time()),
            )
            self.outbox._conn.execute(
                "DELETE FROM answers WHERE command_id NOT IN "
                "(SELECT command_id FROM answers ORDER BY at DESC LIMIT ?)",
                (self.KEEP,),
            )
