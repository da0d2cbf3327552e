"""The embedded storage backend: one SQLite file in WAL mode.

Writes run on one dedicated thread with its own connection (SQLite has one writer
at a time anyway); reads run on a small pool of threads, each with its own
connection, so that API queries never wait behind an ingest transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from carcloud.catalog import SignalCatalog, default_catalog
from carcloud.errors import ConflictError, NotFoundError, StorageError
from carcloud.storage.base import Storage
from carcloud.storage.codec import SQL_TYPE, decode, encode, signal_columns
from carcloud.storage.models import (
    ApiKeyRecord,
    Brand,
    DeadLetter,
    HistoryPoint,
    IngestResult,
    LatestState,
    LatestValue,
    TelemetryMessage,
    Vehicle,
    VehicleCredentials,
)
from carcloud.storage.sqlite_control import SqliteControl
from carcloud.storage.sqlite_writer import SqliteWriter
from carcloud.timeutil import now_us

T = TypeVar("T")

_VEHICLE_COLUMNS = (
    "v.id, v.vin, b.slug, v.model, v.model_year, v.created_at, v.revoked_at, "
    "v.online, v.last_seen_at, v.connected_at"
)


def _migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("carcloud.storage.migrations") / "sqlite"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            found.append((number, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class SqliteStorage(SqliteControl, Storage):
    """Storage in one SQLite file (WAL), safe for several processes on one host."""

    def __init__(
        self, path: Path | str, catalog: SignalCatalog | None = None, synchronous: str = "NORMAL"
    ) -> None:
        self.path = Path(path)
        self.catalog = catalog or default_catalog()
        self.synchronous = synchronous
        self._writer = SqliteWriter(self._connect, self._vehicle_ids_stale, self.path)
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Cache owned by the writer thread: VIN -> (vehicle id, brand id).
        self._vehicle_ids: dict[str, tuple[int, int]] = {}
        # Signal path -> (column, kind), from the signals table; fixed after open().
        self._columns: dict[str, tuple[str, str]] = {}
        self._sql_cache: dict[tuple[str, tuple[str, ...]], str] = {}

    def __repr__(self) -> str:
        return f"SqliteStorage(path={str(self.path)!r}, synchronous={self.synchronous!r})"

    # ---- plumbing -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA cache_size=-65536")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writer.write(fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._run_read, fn)

    def _vehicle_ids_stale(self) -> None:
        self._vehicle_ids.clear()

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._connect())
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite read failed on {self.path}: {exc}") from exc

    # ---- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
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
                for statement in _split_sql(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (number, name, now_us()),
                )
            self._sync_signal_columns(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StorageError(f"cannot migrate {self.path}: {exc}") from exc

    async def close(self) -> None:
        def close_all() -> None:
            with self._lock:
                for conn in self._connections:
                    conn.close()
                self._connections.clear()

        self._writer.shutdown()
        self._readers.shutdown(wait=True)
        close_all()

    async def schema_version(self) -> int:
        def query(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
            return int(row[0] or 0)

        return await self._read(query)

    # ---- brands ---------------------------------------------------------------------

    async def create_brand(self, slug: str, name: str) -> Brand:
        def insert(conn: sqlite3.Connection) -> Brand:
            created = now_us()
            try:
                cur = conn.execute(
                    "INSERT INTO brands (slug, name, created_at) VALUES (?, ?, ?)",
                    (slug, name, created),
                )
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"brand {slug!r} already exists") from exc
            return Brand(int(cur.lastrowid or 0), slug, name, created)

        return await self._write(insert)

    async def list_brands(self) -> list[Brand]:
        def query(conn: sqlite3.Connection) -> list[Brand]:
            rows = conn.execute("SELECT id, slug, name, created_at FROM brands ORDER BY slug")
            return [Brand(*row) for row in rows]

        return await self._read(query)

    async def get_brand(self, slug: str) -> Brand:
        def query(conn: sqlite3.Connection) -> Brand:
            row = conn.execute(
                "SELECT id, slug, name, created_at FROM brands WHERE slug = ?", (slug,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"brand {slug!r} not found")
            return Brand(*row)

        return await self._read(query)

    # ---- vehicles -------------------------------------------------------------------

    @staticmethod
    def _vehicle_rows(conn: sqlite3.Connection, rows: Iterable[Sequence[Any]]) -> list[Vehicle]:
        rows = list(rows)
        if not rows:
            return []
        ids = [row[0] for row in rows]
        tags: dict[int, list[str]] = {vehicle_id: [] for vehicle_id in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for vehicle_id, tag in conn.execute(
                f"SELECT vehicle_id, tag FROM vehicle_tags WHERE vehicle_id IN ({marks}) "
                "ORDER BY tag",
                chunk,
            ):
                tags[vehicle_id].append(tag)
        return [
            Vehicle(
                id=row[0],
                vin=row[1],
                brand=row[2],
                model=row[3],
                model_year=row[4],
                tags=tuple(tags[row[0]]),
                created_at=row[5],
                revoked_at=row[6],
                online=bool(row[7]),
                last_seen_at=row[8],
                connected_at=row[9],
            )
            for row in rows
        ]

    def _fetch_vehicle(self, conn: sqlite3.Connection, vin: str, brand: str | None) -> Vehicle:
        sql = (
            f"SELECT {_VEHICLE_COLUMNS} FROM vehicles v "
            "JOIN brands b ON b.id = v.brand_id WHERE v.vin = ?"
        )
        params: list[Any] = [vin]
        if brand is not None:
            sql += " AND b.slug = ?"
            params.append(brand)
        found = self._vehicle_rows(conn, conn.execute(sql, params))
        if not found:
            raise NotFoundError(f"vehicle {vin} not found")
        return found[0]

    async def create_vehicle(
        self,
        vin: str,
        brand: str,
        model: str,
        model_year: int | None,
        tags: Sequence[str],
        secret_hash: str,
    ) -> Vehicle:
        def insert(conn: sqlite3.Connection) -> Vehicle:
            brand_row = conn.execute("SELECT id FROM brands WHERE slug = ?", (brand,)).fetchone()
            if brand_row is None:
                raise NotFoundError(f"brand {brand!r} not found")
            try:
                cur = conn.execute(
                    "INSERT INTO vehicles "
                    "(vin, brand_id, model, model_year, secret_hash, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (vin, brand_row[0], model, model_year, secret_hash, now_us()),
                )
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"vehicle {vin} is already registered") from exc
            conn.executemany(
                "INSERT OR IGNORE INTO vehicle_tags (vehicle_id, tag) VALUES (?, ?)",
                [(cur.lastrowid, tag) for tag in tags],
            )
            return self._fetch_vehicle(conn, vin, None)

        return await self._write(insert)

    async def get_vehicle(self, vin: str, brand: str | None = None) -> Vehicle:
        return await self._read(lambda conn: self._fetch_vehicle(conn, vin, brand))

    async def list_vehicles(
        self,
        brand: str | None = None,
        tag: str | None = None,
        online: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Vehicle]:
        sql = f"SELECT {_VEHICLE_COLUMNS} FROM vehicles v JOIN brands b ON b.id = v.brand_id"
        where: list[str] = []
        params: list[Any] = []
        if brand is not None:
            where.append("b.slug = ?")
            params.append(brand)
        if tag is not None:
            where.append("v.id IN (SELECT vehicle_id FROM vehicle_tags WHERE tag = ?)")
            params.append(tag)
        if online is not None:
            where.append("v.online = ?")
            params.append(int(online))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY v.vin LIMIT ? OFFSET ?"
        params += [limit, offset]
        return await self._read(lambda conn: self._vehicle_rows(conn, conn.execute(sql, params)))

    async def count_vehicles(self, brand: str | None = None) -> tuple[int, int]:
        def query(conn: sqlite3.Connection) -> tuple[int, int]:
            sql = (
                "SELECT COUNT(*), COALESCE(SUM(v.online), 0) FROM vehicles v "
                "JOIN brands b ON b.id = v.brand_id"
            )
            row = (
                conn.execute(sql + " WHERE b.slug = ?", (brand,)).fetchone()
                if brand is not None
                else conn.execute(sql).fetchone()
            )
            return int(row[0]), int(row[1])

        return await self._read(query)

    async def update_vehicle(
        self,
        vin: str,
        brand: str | None,
        tags: Sequence[str] | None = None,
        model: str | None = None,
        model_year: int | None = None,
    ) -> Vehicle:
        def update(conn: sqlite3.Connection) -> Vehicle:
            vehicle = self._fetch_vehicle(conn, vin, brand)
            if model is not None:
                conn.execute("UPDATE vehicles SET model = ? WHERE id = ?", (model, vehicle.id))
            if model_year is not None:
                conn.execute(
                    "UPDATE vehicles SET model_year = ? WHERE id = ?", (model_year, vehicle.id)
                )
            if tags is not None:
                conn.execute("DELETE FROM vehicle_tags WHERE vehicle_id = ?", (vehicle.id,))
                conn.executemany(
                    "INSERT OR IGNORE INTO vehicle_tags (vehicle_id, tag) VALUES (?, ?)",
                    [(vehicle.id, tag) for tag in tags],
                )
            return self._fetch_vehicle(conn, vin, None)

        return await self._write(update)

    async def delete_vehicle(self, vin: str, brand: str | None) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            vehicle = self._fetch_vehicle(conn, vin, brand)
            for table in ("telemetry", "latest_state", "telemetry_messages"):
                conn.execute(f"DELETE FROM {table} WHERE vehicle_id = ?", (vehicle.id,))
            conn.execute("DELETE FROM vehicles WHERE id = ?", (vehicle.id,))
            self._vehicle_ids.pop(vin, None)

        await self._write(delete)

    async def set_vehicle_secret(self, vin: str, brand: str | None, secret_hash: str) -> Vehicle:
        def update(conn: sqlite3.Connection) -> Vehicle:
            vehicle = self._fetch_vehicle(conn, vin, brand)
            conn.execute(
                "UPDATE vehicles SET secret_hash = ?, revoked_at = NULL WHERE id = ?",
                (secret_hash, vehicle.id),
            )
            return self._fetch_vehicle(conn, vin, None)

        return await self._write(update)

    async def revoke_vehicle(self, vin: str, brand: str | None) -> Vehicle:
        def update(conn: sqlite3.Connection) -> Vehicle:
            vehicle = self._fetch_vehicle(conn, vin, brand)
            conn.execute(
                "UPDATE vehicles SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                (now_us(), vehicle.id),
            )
            return self._fetch_vehicle(conn, vin, None)

        return await self._write(update)

    async def get_credentials(self, vin: str) -> VehicleCredentials | None:
        def query(conn: sqlite3.Connection) -> VehicleCredentials | None:
            row = conn.execute(
                "SELECT v.vin, b.slug, v.secret_hash, v.revoked_at FROM vehicles v "
                "JOIN brands b ON b.id = v.brand_id WHERE v.vin = ?",
                (vin,),
            ).fetchone()
            if row is None:
                return None
            return VehicleCredentials(row[0], row[1], row[2], row[3] is not None)

        return await self._read(query)

    async def set_presence(self, vin: str, online: bool, at: int) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            if online:
                cur = conn.execute(
                    "UPDATE vehicles SET online = 1, connected_at = ?, last_seen_at = "
                    "MAX(COALESCE(last_seen_at, 0), ?), presence_at = ? "
                    "WHERE vin = ? AND COALESCE(presence_at, 0) <= ?",
                    (at, at, at, vin, at),
                )
            else:
                cur = conn.execute(
                    "UPDATE vehicles SET online = 0, last_seen_at = "
                    "MAX(COALESCE(last_seen_at, 0), ?), presence_at = ? "
                    "WHERE vin = ? AND COALESCE(presence_at, 0) <= ?",
                    (at, at, vin, at),
                )
            if cur.rowcount:
                return True
            return (
                conn.execute("SELECT 1 FROM vehicles WHERE vin = ?", (vin,)).fetchone() is not None
            )

        return await self._write(update)

    # ---- api keys -------------------------------------------------------------------

    async def create_api_key(
        self, key_id: str, name: str, brand: str | None, key_hash: str
    ) -> ApiKeyRecord:
        def insert(conn: sqlite3.Connection) -> ApiKeyRecord:
            brand_id = None
            if brand is not None:
                row = conn.execute("SELECT id FROM brands WHERE slug = ?", (brand,)).fetchone()
                if row is None:
                    raise NotFoundError(f"brand {brand!r} not found")
                brand_id = row[0]
            created = now_us()
            conn.execute(
                "INSERT INTO api_keys (id, name, brand_id, key_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key_id, name, brand_id, key_hash, created),
            )
            return ApiKeyRecord(key_id, name, brand, key_hash, created, None)

        return await self._write(insert)

    _KEY_SQL = (
        "SELECT k.id, k.name, b.slug, k.key_hash, k.created_at, k.revoked_at "
        "FROM api_keys k LEFT JOIN brands b ON b.id = k.brand_id"
    )

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        def query(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            row = conn.execute(self._KEY_SQL + " WHERE k.id = ?", (key_id,)).fetchone()
            return ApiKeyRecord(*row) if row else None

        return await self._read(query)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        def query(conn: sqlite3.Connection) -> list[ApiKeyRecord]:
            rows = conn.execute(self._KEY_SQL + " ORDER BY k.created_at DESC")
            return [ApiKeyRecord(*row) for row in rows]

        return await self._read(query)

    # ---- telemetry ------------------------------------------------------------------

    def _sync_signal_columns(self, conn: sqlite3.Connection) -> None:
        """Give every catalog signal its columns (the catalog is the schema of history)."""
        known = {row[0] for row in conn.execute("SELECT path FROM signals")}
        for path, (column, kind) in signal_columns(self.catalog).items():
            if path in known:
                continue
            sql_type = SQL_TYPE[kind]
            conn.execute(f"ALTER TABLE telemetry ADD COLUMN {column} {sql_type}")
            conn.execute(f"ALTER TABLE latest_state ADD COLUMN {column} {sql_type}")
            conn.execute(f"ALTER TABLE latest_state ADD COLUMN {column}__ts INTEGER")
            conn.execute(
                "INSERT INTO signals (path, column_name, kind) VALUES (?, ?, ?)",
                (path, column, kind),
            )
        self._columns = {
            row[0]: (row[1], row[2])
            for row in conn.execute("SELECT path, column_name, kind FROM signals")
        }

    def _vehicle_id(self, conn: sqlite3.Connection, vin: str) -> tuple[int, int] | None:
        cached = self._vehicle_ids.get(vin)
        if cached is not None:
            return cached
        row = conn.execute("SELECT id, brand_id FROM vehicles WHERE vin = ?", (vin,)).fetchone()
        if row is None:
            return None
        self._vehicle_ids[vin] = (row[0], row[1])
        return self._vehicle_ids[vin]

    def _history_sql(self, columns: tuple[str, ...]) -> str:
        sql = self._sql_cache.get(("history", columns))
        if sql is None:
            names = ", ".join(columns)
            marks = ", ".join("?" * (len(columns) + 4))
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
            sql = (
                f"INSERT INTO telemetry (vehicle_id, ts, seq, received_at, {names}) "
                f"VALUES ({marks}) ON CONFLICT (vehicle_id, ts) DO UPDATE SET "
                f"seq = excluded.seq, received_at = excluded.received_at, {updates}"
            )
            self._sql_cache[("history", columns)] = sql
        return sql

    def _latest_sql(self, columns: tuple[str, ...]) -> str:
        sql = self._sql_cache.get(("latest", columns))
        if sql is None:
            names = ", ".join(f"{c}, {c}__ts" for c in columns)
            marks = ", ".join("?" * (2 * len(columns) + 2))
            newer = "(latest_state.{c}__ts IS NULL OR excluded.{c}__ts >= latest_state.{c}__ts)"
            updates = ", ".join(
                f"{c} = CASE WHEN {newer.format(c=c)} THEN excluded.{c} ELSE latest_state.{c} END, "
                f"{c}__ts = CASE WHEN {newer.format(c=c)} THEN excluded.{c}__ts "
                f"ELSE latest_state.{c}__ts END"
                for c in columns
            )
            sql = (
                f"INSERT INTO latest_state (vehicle_id, received_at, {names}) VALUES ({marks}) "
                "ON CONFLICT (vehicle_id) DO UPDATE SET "
                f"received_at = MAX(latest_state.received_at, excluded.received_at), {updates}"
            )
            self._sql_cache[("latest", columns)] = sql
        return sql

    async def write_telemetry(
        self, messages: Sequence[TelemetryMessage], dead_letters: Sequence[DeadLetter]
    ) -> IngestResult:
        def write(conn: sqlite3.Connection) -> IngestResult:
            columns = self._columns
            history: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            latest: dict[int, tuple[int, dict[str, tuple[int, Any]]]] = {}
            stored = duplicates = samples = 0
            unknown: list[str] = []
            for message in messages:
                ids = self._vehicle_id(conn, message.vin)
                if ids is None:
                    unknown.append(message.vin)
                    continue
                vehicle_id = ids[0]
                cur = conn.execute(
                    "INSERT OR IGNORE INTO telemetry_messages "
                    "(vehicle_id, seq, ts, received_at, samples) VALUES (?, ?, ?, ?, ?)",
                    (
                        vehicle_id,
                        message.seq,
                        message.ts,
                        message.received_at,
                        len(message.samples),
                    ),
                )
                if cur.rowcount == 0:
                    duplicates += 1
                    continue
                stored += 1
                samples += len(message.samples)
                rows: dict[int, dict[str, Any]] = {}
                newest = latest.get(vehicle_id)
                if newest is None:
                    newest = latest[vehicle_id] = (message.received_at, {})
                newest_values = newest[1]
                for path, ts, value in message.samples:
                    column, kind = columns[path]
                    encoded = encode(kind, value)
                    row = rows.get(ts)
                    if row is None:
                        row = rows[ts] = {}
                    row[column] = encoded
                    seen = newest_values.get(column)
                    if seen is None or seen[0] <= ts:
                        newest_values[column] = (ts, encoded)
                for ts, row in rows.items():
                    history.setdefault(tuple(row), []).append(
                        (vehicle_id, ts, message.seq, message.received_at, *row.values())
                    )
            for names, values in history.items():
                conn.executemany(self._history_sql(names), values)
            by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            for vehicle_id, (received_at, newest_values) in latest.items():
                flat: list[Any] = [vehicle_id, received_at]
                for ts, encoded in newest_values.values():
                    flat += (encoded, ts)
                by_columns.setdefault(tuple(newest_values), []).append(tuple(flat))
            for names, values in by_columns.items():
                conn.executemany(self._latest_sql(names), values)
            letters = list(dead_letters) + [
                DeadLetter(
                    received_at=now_us(),
                    subject=f"vehicles.{vin}.telemetry",
                    vin=vin,
                    reason=f"unknown VIN {vin}: no registered vehicle",
                    payload=b"",
                )
                for vin in unknown
            ]
            rows_out = []
            for letter in letters:
                ids = self._vehicle_id(conn, letter.vin) if letter.vin else None
                rows_out.append(
                    (
                        letter.received_at,
                        letter.subject,
                        letter.vin,
                        ids[1] if ids else None,
                        letter.reason,
                        letter.payload,
                    )
                )
            conn.executemany(
                "INSERT INTO dead_letters (received_at, subject, vin, brand_id, reason, payload) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows_out,
            )
            return IngestResult(
                messages_stored=stored,
                duplicates=duplicates,
                samples_stored=samples,
                dead_letters=len(rows_out),
                unknown_vins=tuple(unknown),
            )

        return await self._write(write)

    async def latest_state(self, vin: str) -> LatestState:
        def query(conn: sqlite3.Connection) -> LatestState:
            cursor = conn.execute(
                "SELECT l.* FROM latest_state l JOIN vehicles v ON v.id = l.vehicle_id "
                "WHERE v.vin = ?",
                (vin,),
            )
            row = cursor.fetchone()
            if row is None:
                return LatestState((), None)
            names = [d[0] for d in cursor.description]
            record = dict(zip(names, row, strict=True))
            values = [
                LatestValue(path, record[f"{column}__ts"], decode(kind, record[column]))
                for path, (column, kind) in self._columns.items()
                if record.get(f"{column}__ts") is not None
            ]
            return LatestState(
                tuple(sorted(values, key=lambda value: value.path)), record["received_at"]
            )

        return await self._read(query)

    async def fleet_overview(
        self, brand: str | None, paths: Sequence[str], limit: int = 1000, offset: int = 0
    ) -> list[tuple[Vehicle, LatestState]]:
        wanted = [(path, *self._columns[path]) for path in paths if path in self._columns]
        picks = ", l.received_at" + "".join(
            f", l.{column}, l.{column}__ts" for _, column, _ in wanted
        )
        sql = (
            f"SELECT {_VEHICLE_COLUMNS}{picks} FROM vehicles v "
            "JOIN brands b ON b.id = v.brand_id "
            "LEFT JOIN latest_state l ON l.vehicle_id = v.id"
        )
        params: list[Any] = []
        if brand is not None:
            sql += " WHERE b.slug = ?"
            params.append(brand)
        sql += " ORDER BY v.vin LIMIT ? OFFSET ?"
        params += [limit, offset]
        width = len(_VEHICLE_COLUMNS.split(","))

        def query(conn: sqlite3.Connection) -> list[tuple[Vehicle, LatestState]]:
            rows = conn.execute(sql, params).fetchall()
            vehicles = self._vehicle_rows(conn, [row[:width] for row in rows])
            result = []
            for vehicle, row in zip(vehicles, rows, strict=True):
                values = []
                for index, (path, _, kind) in enumerate(wanted):
                    raw, ts = row[width + 1 + 2 * index], row[width + 2 + 2 * index]
                    if ts is not None:
                        values.append(LatestValue(path, ts, decode(kind, raw)))
                result.append((vehicle, LatestState(tuple(values), row[width])))
            return result

        return await self._read(query)

    async def history(
        self,
        vin: str,
        path: str,
        start: int | None,
        end: int | None,
        limit: int,
        bucket_us: int | None = None,
    ) -> list[HistoryPoint]:
        mapped = self._columns.get(path)
        if mapped is None:
            return []
        column, kind = mapped

        def query(conn: sqlite3.Connection) -> list[HistoryPoint]:
            ids = conn.execute("SELECT id FROM vehicles WHERE vin = ?", (vin,)).fetchone()
            if ids is None:
                return []
            lower = start if start is not None else -(2**62)
            upper = end if end is not None else 2**62
            params = (ids[0], lower, upper)
            where = f"WHERE vehicle_id = ? AND ts >= ? AND ts < ? AND {column} IS NOT NULL"
            if bucket_us is None:
                rows = conn.execute(
                    f"SELECT ts, {column} FROM telemetry {where} ORDER BY ts LIMIT ?",
                    (*params, limit),
                )
                return [HistoryPoint(ts, decode(kind, raw)) for ts, raw in rows]
            if kind in ("num", "int"):
                rows = conn.execute(
                    f"SELECT (ts / ?) * ? AS bucket, AVG({column}), COUNT(*) FROM telemetry "
                    f"{where} GROUP BY bucket ORDER BY bucket LIMIT ?",
                    (bucket_us, bucket_us, *params, limit),
                )
                return [HistoryPoint(bucket, float(avg), count) for bucket, avg, count in rows]
            # Non-numeric values cannot be averaged: each bucket shows its last value.
            rows = conn.execute(
                f"SELECT (ts / ?) * ? AS bucket, MAX(ts), {column}, COUNT(*) "
                f"FROM telemetry {where} GROUP BY bucket ORDER BY bucket LIMIT ?",
                (bucket_us, bucket_us, *params, limit),
            )
            return [
                HistoryPoint(bucket, decode(kind, raw), count) for bucket, _, raw, count in rows
            ]

        return await self._read(query)

    async def count_samples(self, vin: str | None = None) -> int:
        def query(conn: sqlite3.Connection) -> int:
            if vin is None:
                row = conn.execute("SELECT COUNT(*) FROM telemetry").fetchone()
            else:
                row = conn.execute(
                    "SELECT COUNT(*) FROM telemetry WHERE vehicle_id = "
                    "(SELECT id FROM vehicles WHERE vin = ?)",
                    (vin,),
                ).fetchone()
            return int(row[0])

        return await self._read(query)

    async def list_dead_letters(
        self, vin: str | None, brand: str | None, limit: int, before_id: int | None = None
    ) -> list[DeadLetter]:
        sql = (
            "SELECT d.id, d.received_at, d.subject, d.vin, d.reason, d.payload FROM dead_letters d"
        )
        where: list[str] = []
        params: list[Any] = []
        if brand is not None:
            where.append("d.brand_id = (SELECT id FROM brands WHERE slug = ?)")
            params.append(brand)
        if vin is not None:
            where.append("d.vin = ?")
            params.append(vin)
        if before_id is not None:
            where.append("d.id < ?")
            params.append(before_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY d.id DESC LIMIT ?"
        params.append(limit)

        def query(conn: sqlite3.Connection) -> list[DeadLetter]:
            return [
                DeadLetter(
                    id=row[0],
                    received_at=row[1],
                    subject=row[2],
                    vin=row[3],
                    reason=row[4],
                    payload=bytes(row[5]),
                )
                for row in conn.execute(sql, params)
            ]

        return await self._read(query)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (ours never put ';' inside literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
