"""The shared engine of the PostgreSQL stores: a connection pool, transactions, migrations.

Every write runs in one transaction on one pooled connection (`Tx`), so a change
and the events it produces commit together, exactly as on SQLite. Driver errors
are translated here: a unique violation becomes ConflictError where a store
asks for it, anything else StorageError.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeAlias, TypeVar

import asyncpg

from carcloud.errors import CarcloudError, StorageError
from carcloud.events.models import DomainEvent
from carcloud.storage.rows import numbered
from carcloud.timeutil import now_us

T = TypeVar("T")
# What stores hold while they work: a pooled connection, and the rows it returns.
Conn: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
Row: TypeAlias = asyncpg.Record

# Serialises the schema migration of several processes starting at once.
MIGRATION_LOCK = 7_431_001


def _migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("carcloud.storage.postgres.migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text("utf-8")))
    return sorted(found)


def mask(url: str) -> str:
    """The URL without its password, for messages and repr."""
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    user = credentials.split(":", 1)[0]
    return f"{scheme}//{user}:***@{tail}"


@dataclass
class Tx:
    """One write transaction: its connection, and the ids of the events it wrote."""

    conn: Conn
    events: list[DomainEvent] = field(default_factory=list)
    locked_events: bool = False


class PostgresEngine:
    """A pool of connections to one PostgreSQL database."""

    def __init__(self, url: str, min_size: int = 2, max_size: int = 10) -> None:
        self.url = url
        self.min_size, self.max_size = min_size, max_size
        self._pool: asyncpg.Pool | None = None
        self._commit_listeners: list[Callable[[], None]] = []
        self._committed_events: list[DomainEvent] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresEngine(url={mask(self.url)!r})"

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageError("the PostgreSQL storage is not open")
        return self._pool

    async def open(self) -> None:
        """Connect and apply pending migrations."""
        try:
            # No JIT: every query here is short, and compiling cost ~25 ms a history query.
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self.min_size,
                max_size=self.max_size,
                command_timeout=60,
                server_settings={"jit": "off"},
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise StorageError(f"cannot connect to PostgreSQL at {mask(self.url)}: {exc}") from exc
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            )
            applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for number, name, sql in _migrations():
                if number in applied:
                    continue
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    number,
                    name,
                    now_us(),
                )

    async def close(self) -> None:
        """Close every connection."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def schema_version(self) -> int:
        """The newest applied migration."""
        return int(
            await self.read(
                lambda conn: conn.fetchval("SELECT MAX(version) FROM schema_migrations")
            )
            or 0
        )

    async def read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run a query function on a pooled connection."""
        try:
            async with self.pool.acquire() as conn:
                return await fn(conn)
        except CarcloudError:
            raise
        except (OSError, asyncpg.PostgresError) as exc:
            raise StorageError(f"PostgreSQL read failed: {exc}") from exc

    async def write(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `fn` in one transaction; then tell the relay about the events it wrote."""
        try:
            async with self.pool.acquire() as conn:
                tx = Tx(conn)
                async with conn.transaction():
                    result = await fn(tx)
        except CarcloudError:
            raise
        except (OSError, asyncpg.PostgresError) as exc:
            raise StorageError(f"PostgreSQL write failed: {exc}") from exc
        if tx.events:
            with self._lock:
                self._committed_events += tx.events
            for listener in self._commit_listeners:
                listener()
        return result

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after a transaction that wrote events commits."""
        self._commit_listeners.append(listener)

    def take_committed_events(self) -> list[DomainEvent]:
        """Events this process committed since the last call, in id order."""
        with self._lock:
            events, self._committed_events = self._committed_events, []
        return events


class Params:
    """Numbered parameters for asyncpg: `p.add(value)` gives "$n"."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


class PostgresStore:
    """A store over the shared engine; `_rows` runs a statement written for both backends
    (`?` placeholders) and answers its rows (the reads a shared *_rows module makes)."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async def fetch(conn: Conn) -> list[Any]:
            return list(await conn.fetch(numbered(sql), *params))

        return await self.engine.read(fetch)
