"""The one writer of a SQLite file: writes that wait together commit together.

SQLite has one writer at a time, so every write of a process goes through one
thread. Under load many writes wait at once (a command created by the API, a
car's answer, a reported twin); committing each alone costs a transaction
apiece and lets the writers of other processes in between. Here every write
that is waiting when the thread gets to it runs in one transaction (group
commit), each inside its own savepoint: a write that fails is rolled back alone
and its caller gets the error, the others commit.

Bulk writes (a batch of a thousand telemetry messages, a rollup pass) let the small
writes go first, in turns: while both wait, a group of small writes and a group of
bulk writes take turns. A trip a derivation found, a command the API created or an
event waits for the bulk group that is running, never for one queued behind it; a
bulk write waits for at most one group of small writes, however many keep coming.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from carcloud.errors import StorageError

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], Any]

# At most this many writes share a transaction (bounds how long one commit holds the lock).
MAX_GROUP = 256


@dataclass(slots=True)
class _Waiting:
    fn: Write
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


class SqliteWriter:
    """Runs write functions in one thread, grouping those that wait into one transaction."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        on_rollback: Callable[[bool], None],
        path: object,
        after_commit: Callable[[], None] | None = None,
        before_write: Callable[[], None] | None = None,
    ) -> None:
        self._connect = connect
        self._on_rollback = on_rollback
        self._after_commit = after_commit
        self._before_write = before_write
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-write")
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._bulk: list[_Waiting] = []
        self._bulk_turn = False  # a small group went last: a bulk write waiting goes next
        self._draining = False
        self.transactions = 0

    async def write(self, fn: Callable[[sqlite3.Connection], T], bulk: bool = False) -> T:
        """Run `fn` in a write transaction (perhaps shared) and return what it returns;
        `bulk`: a long write, which lets the small ones waiting go first."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            (self._bulk if bulk else self._waiting).append(_Waiting(fn, loop, future))
            start, self._draining = not self._draining, True
        if start:
            self._executor.submit(self._drain)
        return await future

    async def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` in the writer thread, outside any transaction (migrations)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def shutdown(self) -> None:
        """Finish what is waiting, then stop the thread."""
        self._executor.shutdown(wait=True)

    def _drain(self) -> None:
        while True:
            with self._lock:
                bulk = bool(self._bulk) and (self._bulk_turn or not self._waiting)
                queue = self._bulk if bulk else self._waiting
                self._bulk_turn = not bulk
                group = queue[:MAX_GROUP]
                del queue[:MAX_GROUP]
                if not group:
                    self._draining = False
                    return
            try:
                outcomes = self._commit(group)
            except Exception as exc:  # whatever happens, no caller is left waiting
                outcomes = [(False, self._error(exc))] * len(group)
            for waiting, outcome in zip(group, outcomes, strict=True):
                with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                    waiting.loop.call_soon_threadsafe(_settle, waiting.future, outcome)

    def _commit(self, group: list[_Waiting]) -> list[tuple[bool, Any]]:
        """One transaction for the group; per write (True, result) or (False, exception)."""
        outcomes: list[tuple[bool, Any]] = []
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for waiting in group:
                conn.execute("SAVEPOINT one_write")
                if self._before_write is not None:
                    self._before_write()
                try:
                    outcomes.append((True, waiting.fn(conn)))
                except Exception as exc:
                    self._rollback(conn, "ROLLBACK TO one_write")
                    outcomes.append((False, self._error(exc)))
                conn.execute("RELEASE one_write")
            conn.execute("COMMIT")
            self.transactions += 1
            if self._after_commit is not None:
                self._after_commit()
            return outcomes
        except sqlite3.Error as exc:
            if conn.in_transaction:
                self._rollback(conn, "ROLLBACK")
            error = self._error(exc)
            return [(False, error)] * len(group)

    def _rollback(self, conn: sqlite3.Connection, statement: str) -> None:
        conn.execute(statement)
        # Cached ids may name rows the rollback removed; staged events were not written.
        self._on_rollback(statement == "ROLLBACK")

    def _error(self, exc: Exception) -> Exception:
        if isinstance(exc, sqlite3.Error):
            return StorageError(f"SQLite write failed on {self._path}: {exc}")
        return exc


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():  # the caller gave up (cancelled); the write happened regardless
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
