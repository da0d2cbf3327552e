"""The shared engine of the SQLite stores: one file in WAL mode, one writer, a read pool.

Writes run on one dedicated thread with its own connection (SQLite has one writer
at a time anyway), grouped into shared transactions (`SqliteWriter`); reads run
on a small pool of threads, each with its own connection, so that API queries
never wait behind an ingest transaction. Every store of the SQLite backend is a
small class over one engine, so that a write of one store and the events it
produces commit together.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from carcloud.errors import NotFoundError, StorageError
from carcloud.events.models import DomainEvent
from carcloud.storage.sqlite.writer import SqliteWriter
from carcloud.timeutil import now_us
from carcloud_agent.protocol.backoff import Backoff

T = TypeVar("T")

# How long a new connection keeps trying to switch a fresh file to WAL (see use_wal).
WAL_SWITCH_S = 30.0

Migration = Callable[[sqlite3.Connection], None]


def _migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("carcloud.storage.sqlite.migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            found.append((number, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def split_sql(script: str) -> list[str]:
    """Split a migration into statements (ours never put ';' inside literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def use_wal(conn: sqlite3.Connection, path: Path, within_s: float = WAL_SWITCH_S) -> None:
    """Put the database in WAL mode, trying again while another connection holds it.

    Processes that open a fresh file at the same moment (workers started together) each
    read it in rollback mode and then all need it alone to switch: SQLite answers
    "database is locked" at once to all but one, without waiting its busy timeout (a
    deadlock otherwise). Once the file is in WAL mode the switch is a no-op.
    """
    deadline = time.monotonic() + within_s
    backoff = Backoff(0.005, 0.25)  # jittered: the contenders do not retry in step
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise StorageError(f"cannot open {path}: {exc}") from exc
            if time.monotonic() > deadline:
                raise StorageError(
                    f"cannot open {path} in WAL mode within {within_s:.0f} s: {exc}"
                ) from exc
        time.sleep(backoff.next())


class SqliteEngine:
    """Connections, the writer thread and migrations of one SQLite file."""

    def __init__(self, path: Path | str, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self._writer = SqliteWriter(
            self._connect,
            self._rolled_back,
            self.path,
            after_commit=self._committed,
            before_write=self._write_started,
        )
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Caches owned by the writer thread: VIN -> (vehicle id, brand id); brand id -> slug.
        self.vehicle_ids: dict[str, tuple[int, int]] = {}
        self.brand_slugs: dict[int, str] = {}
        # Events appended by this process's writes in the open transaction (writer
        # thread), and those whose transaction committed (taken by the relay).
        self.staged_events: list[DomainEvent] = []
        self._write_mark = 0
        self._committed_events: list[DomainEvent] = []
        self._commit_listeners: list[Callable[[], None]] = []
        self._after_migrate: list[Migration] = []

    def __repr__(self) -> str:
        return f"SqliteEngine(path={str(self.path)!r}, synchronous={self.synchronous!r})"

    # ---- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            use_wal(conn, self.path)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA cache_size=-65536")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def write(self, fn: Callable[[sqlite3.Connection], T], bulk: bool = False) -> T:
        """Run `fn` in a write transaction (perhaps shared with other writes); `bulk`: a
        long write that lets the small writes waiting go first (writer.py)."""
        return await self._writer.write(fn, bulk)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on a reader connection in the read pool."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._run_read, fn)

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._connect())
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite read failed on {self.path}: {exc}") from exc

    def _write_started(self) -> None:
        self._write_mark = len(self.staged_events)

    def _rolled_back(self, whole_transaction: bool) -> None:
        # A rollback may have removed rows whose ids are cached, and the events staged
        # by the writes it undid were never written.
        self.vehicle_ids.clear()
        del self.staged_events[0 if whole_transaction else self._write_mark :]

    # ---- events ------------------------------------------------------------------------

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` in the writer thread after a transaction with events commits."""
        self._commit_listeners.append(listener)

    def _committed(self) -> None:
        if self.staged_events:
            with self._lock:
                self._committed_events += self.staged_events
            self.staged_events = []
            for listener in self._commit_listeners:
                listener()

    def take_committed_events(self) -> list[DomainEvent]:
        """Events this process committed since the last call, in id order."""
        with self._lock:
            events, self._committed_events = self._committed_events, []
        return events

    # ---- shared look-ups (writer thread or reader) --------------------------------------

    def vehicle_id(self, conn: sqlite3.Connection, vin: str) -> tuple[int, int] | None:
        """(vehicle id, brand id) of a VIN, cached for the writer; None if unknown."""
        cached = self.vehicle_ids.get(vin)
        if cached is not None:
            return cached
        row = conn.execute("SELECT id, brand_id FROM vehicles WHERE vin = ?", (vin,)).fetchone()
        if row is None:
            return None
        self.vehicle_ids[vin] = (row[0], row[1])
        return self.vehicle_ids[vin]

    def brand_slug(self, conn: sqlite3.Connection, brand_id: int) -> str:
        """The slug of a brand id (brands are never renamed)."""
        slug = self.brand_slugs.get(brand_id)
        if slug is None:
            row = conn.execute("SELECT slug FROM brands WHERE id = ?", (brand_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"brand id {brand_id} not found")
            slug = self.brand_slugs[brand_id] = str(row[0])
        return slug

    # ---- lifecycle ---------------------------------------------------------------------

    def after_migrate(self, step: Migration) -> None:
        """Run `step` in the migration transaction after the SQL migrations (schema sync)."""
        self._after_migrate.append(step)

    async def open(self) -> None:
        """Create the file if needed and apply pending migrations."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self._writer.call(self._migrate)

    def _migrate(self) -> None:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for number, name, sql in _migrations():
                if number in applied:
                    continue
                for statement in split_sql(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (number, name, now_us()),
                )
            for step in self._after_migrate:
                step(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StorageError(f"cannot migrate {self.path}: {exc}") from exc

    async def schema_version(self) -> int:
        """The number of the newest applied migration."""

        def query(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
            return int(row[0] or 0)

        return await self.read(query)

    async def close(self) -> None:
        """Finish pending writes and close every connection."""
        self._writer.shutdown()
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()


class SqliteStore:
    """A store over the shared engine; `_rows` runs a statement written for both backends
    (`?` placeholders) and answers its rows (the reads a shared *_rows module makes)."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self.engine.read(lambda conn: conn.execute(sql, params).fetchall())
