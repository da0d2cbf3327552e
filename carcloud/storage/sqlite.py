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

from carcloud.errors import ConflictError, NotFoundError, StorageError
from carcloud.storage.base import Storage
from carcloud.storage.codec import decode_value, encode_value, kind_of
from carcloud.storage.models import (
    ApiKeyRecord,
    Brand,
    DeadLetter,
    HistoryPoint,
    IngestResult,
    LatestValue,
    TelemetryMessage,
    Vehicle,
    VehicleCredentials,
)
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


class SqliteStorage(Storage):
    """Storage in one SQLite file (WAL), safe for several processes on one host."""

    def __init__(self, path: Path | str, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-write")
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Caches owned by the writer thread.
        self._vehicle_ids: dict[str, tuple[int, int]] = {}
        self._signal_ids: dict[str, int] = {}
        # Read side: signal id -> (path, kind), refreshed on a miss.
        self._signal_paths: dict[int, tuple[str, str]] = {}

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
        return await asyncio.get_running_loop().run_in_executor(
            self._writer, self._run_in_transaction, fn
        )

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._run_read, fn)

    def _run_in_transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                # Cached ids may name rows the rollback removed.
                self._vehicle_ids.clear()
                self._signal_ids.clear()
                raise
            conn.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite write failed on {self.path}: {exc}") from exc

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._connect())
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite read failed on {self.path}: {exc}") from exc

    # ---- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.get_running_loop().run_in_executor(self._writer, self._migrate)

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

        self._writer.shutdown(wait=True)
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
            for table in ("signal_history", "latest_values", "telemetry_messages"):
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

    def _vehicle_id(self, conn: sqlite3.Connection, vin: str) -> tuple[int, int] | None:
        cached = self._vehicle_ids.get(vin)
        if cached is not None:
            return cached
        row = conn.execute("SELECT id, brand_id FROM vehicles WHERE vin = ?", (vin,)).fetchone()
        if row is None:
            return None
        self._vehicle_ids[vin] = (row[0], row[1])
        return self._vehicle_ids[vin]

    def _signal_id(self, conn: sqlite3.Connection, path: str, kind: str) -> int:
        cached = self._signal_ids.get(path)
        if cached is not None:
            return cached
        conn.execute("INSERT OR IGNORE INTO signals (path, kind) VALUES (?, ?)", (path, kind))
        row = conn.execute("SELECT id FROM signals WHERE path = ?", (path,)).fetchone()
        self._signal_ids[path] = int(row[0])
        return self._signal_ids[path]

    async def write_telemetry(
        self, messages: Sequence[TelemetryMessage], dead_letters: Sequence[DeadLetter]
    ) -> IngestResult:
        def write(conn: sqlite3.Connection) -> IngestResult:
            history: list[tuple[int, int, int, float | None, str | None, int]] = []
            latest: dict[tuple[int, int], tuple[int, int, int, float | None, str | None, int]] = {}
            stored = duplicates = 0
            unknown: list[str] = []
            letters = list(dead_letters)
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
                for sample in message.samples:
                    signal_id = self._signal_id(conn, sample.path, kind_of(sample.value))
                    num, text = encode_value(sample.value)
                    history.append((vehicle_id, signal_id, sample.ts, num, text, message.seq))
                    key = (vehicle_id, signal_id)
                    previous = latest.get(key)
                    if previous is None or previous[2] <= sample.ts:
                        latest[key] = (
                            vehicle_id,
                            signal_id,
                            sample.ts,
                            num,
                            text,
                            message.received_at,
                        )
            conn.executemany(
                "INSERT OR IGNORE INTO signal_history "
                "(vehicle_id, signal_id, ts, value_num, value_text, seq) VALUES (?, ?, ?, ?, ?, ?)",
                history,
            )
            conn.executemany(
                "INSERT INTO latest_values "
                "(vehicle_id, signal_id, ts, value_num, value_text, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vehicle_id, signal_id) DO UPDATE SET "
                "ts = excluded.ts, value_num = excluded.value_num, "
                "value_text = excluded.value_text, received_at = excluded.received_at "
                "WHERE excluded.ts >= latest_values.ts",
                list(latest.values()),
            )
            for vin in unknown:
                letters.append(
                    DeadLetter(
                        received_at=now_us(),
                        subject=f"vehicles.{vin}.telemetry",
                        vin=vin,
                        reason=f"unknown VIN {vin}: no registered vehicle",
                        payload=b"",
                    )
                )
            rows = []
            for letter in letters:
                ids = self._vehicle_id(conn, letter.vin) if letter.vin else None
                rows.append(
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
                rows,
            )
            return IngestResult(
                messages_stored=stored,
                duplicates=duplicates,
                samples_stored=len(history),
                dead_letters=len(rows),
                unknown_vins=tuple(unknown),
            )

        return await self._write(write)

    def _signal_meta(self, conn: sqlite3.Connection, signal_id: int) -> tuple[str, str]:
        meta = self._signal_paths.get(signal_id)
        if meta is None:
            for row in conn.execute("SELECT id, path, kind FROM signals"):
                self._signal_paths[row[0]] = (row[1], row[2])
            meta = self._signal_paths[signal_id]
        return meta

    async def latest_state(self, vin: str) -> list[LatestValue]:
        def query(conn: sqlite3.Connection) -> list[LatestValue]:
            rows = conn.execute(
                "SELECT l.signal_id, l.ts, l.value_num, l.value_text, l.received_at "
                "FROM latest_values l JOIN vehicles v ON v.id = l.vehicle_id WHERE v.vin = ?",
                (vin,),
            ).fetchall()
            values = []
            for signal_id, ts, num, text, received_at in rows:
                path, kind = self._signal_meta(conn, signal_id)
                values.append(LatestValue(path, ts, decode_value(kind, num, text), received_at))
            return sorted(values, key=lambda value: value.path)

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
        def query(conn: sqlite3.Connection) -> list[HistoryPoint]:
            ids = conn.execute(
                "SELECT v.id, s.id, s.kind FROM vehicles v, signals s "
                "WHERE v.vin = ? AND s.path = ?",
                (vin, path),
            ).fetchone()
            if ids is None:
                return []
            vehicle_id, signal_id, kind = ids
            lower = start if start is not None else -(2**62)
            upper = end if end is not None else 2**62
            params = (vehicle_id, signal_id, lower, upper)
            where = "WHERE vehicle_id = ? AND signal_id = ? AND ts >= ? AND ts < ?"
            if bucket_us is None:
                rows = conn.execute(
                    f"SELECT ts, value_num, value_text FROM signal_history {where} "
                    "ORDER BY ts LIMIT ?",
                    (*params, limit),
                )
                return [HistoryPoint(ts, decode_value(kind, num, text)) for ts, num, text in rows]
            if kind in ("num", "int"):
                rows = conn.execute(
                    f"SELECT (ts / ?) * ? AS bucket, AVG(value_num), COUNT(*) FROM signal_history "
                    f"{where} GROUP BY bucket ORDER BY bucket LIMIT ?",
                    (bucket_us, bucket_us, *params, limit),
                )
                return [HistoryPoint(bucket, float(avg), count) for bucket, avg, count in rows]
            # Non-numeric values cannot be averaged: each bucket shows its last value.
            rows = conn.execute(
                f"SELECT (ts / ?) * ? AS bucket, MAX(ts), value_num, value_text, COUNT(*) "
                f"FROM signal_history {where} GROUP BY bucket ORDER BY bucket LIMIT ?",
                (bucket_us, bucket_us, *params, limit),
            )
            return [
                HistoryPoint(bucket, decode_value(kind, num, text), count)
                for bucket, _, num, text, count in rows
            ]

        return await self._read(query)

    async def count_samples(self, vin: str | None = None) -> int:
        def query(conn: sqlite3.Connection) -> int:
            if vin is None:
                row = conn.execute("SELECT COUNT(*) FROM signal_history").fetchone()
            else:
                row = conn.execute(
                    "SELECT COUNT(*) FROM signal_history WHERE vehicle_id = "
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
