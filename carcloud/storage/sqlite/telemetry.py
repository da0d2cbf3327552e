"""TelemetryStore for SQLite: wide history rows per vehicle and time, one latest row each.

History has one typed column per catalog signal (added when the catalog grows),
clustered by (vehicle, time), so a time range of one vehicle is one index range.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from carcloud.catalog import SignalCatalog, default_catalog
from carcloud.ingest.models import (
    DeadLetter,
    HistoryPoint,
    IngestResult,
    LatestState,
    LatestValue,
    TelemetryMessage,
)
from carcloud.ingest.retention import RetentionPlan, RetentionReport
from carcloud.ingest.rollup import RollupReport, Segment, history_segments, join_segments
from carcloud.ingest.store import IngestPolicy
from carcloud.registry.models import Vehicle
from carcloud.storage.codec import SQL_TYPE, decode, encode, signal_columns
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.storage.sqlite.events import append_events
from carcloud.storage.sqlite.history import SqliteHistory, mark_dirty, minute_buckets, rollup_state
from carcloud.storage.sqlite.vehicles import VEHICLE_COLUMNS, VEHICLE_WIDTH, vehicle_rows


class SqliteTelemetryStore:
    """TelemetryStore over the shared SQLite engine."""

    folds_at_write = False

    def __init__(self, engine: SqliteEngine, catalog: SignalCatalog | None = None) -> None:
        self.engine = engine
        self.catalog = catalog or default_catalog()
        # Signal path -> (column, kind), from the signals table; fixed after open().
        self._columns: dict[str, tuple[str, str]] = {}
        self._sql_cache: dict[tuple[str, tuple[str, ...]], str] = {}
        engine.after_migrate(self._sync_signal_columns)
        self.retention = SqliteHistory(engine, lambda: self._columns)

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
        self,
        messages: Sequence[TelemetryMessage],
        dead_letters: Sequence[DeadLetter],
        policy: IngestPolicy | None = None,
    ) -> IngestResult:
        def write(conn: sqlite3.Connection) -> IngestResult:
            columns = self._columns
            history: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            latest: dict[int, tuple[int, dict[str, tuple[int, Any]]]] = {}
            stored = duplicates = samples = 0
            unknown: list[TelemetryMessage] = []
            first_ts: dict[int, int] = {}  # per vehicle, its oldest row written
            for message in messages:
                ids = self.engine.vehicle_id(conn, message.vin)
                if ids is None:
                    unknown.append(message)
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
                    if ts < first_ts.get(vehicle_id, ts + 1):
                        first_ts[vehicle_id] = ts
                    history.setdefault(tuple(row), []).append(
                        (vehicle_id, ts, message.seq, message.received_at, *row.values())
                    )
            for names, values in history.items():
                conn.executemany(self._history_sql(names), values)
            mark_dirty(conn, first_ts)
            by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            for vehicle_id, (received_at, newest_values) in latest.items():
                flat: list[Any] = [vehicle_id, received_at]
                for ts, encoded in newest_values.values():
                    flat += (encoded, ts)
                by_columns.setdefault(tuple(newest_values), []).append(tuple(flat))
            for names, values in by_columns.items():
                conn.executemany(self._latest_sql(names), values)
            letters = list(dead_letters)
            if policy is not None:
                letters += [policy.unknown_vin(message) for message in unknown]
            for letter in letters:
                ids = self.engine.vehicle_id(conn, letter.vin) if letter.vin else None
                cur = conn.execute(
                    "INSERT INTO dead_letters (received_at, subject, vin, brand_id, reason, "
                    "payload) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        letter.received_at,
                        letter.subject,
                        letter.vin,
                        ids[1] if ids else None,
                        letter.reason,
                        letter.payload,
                    ),
                )
                if policy is not None:
                    stored_letter = DeadLetter(
                        letter.received_at,
                        letter.subject,
                        letter.vin,
                        letter.reason,
                        letter.payload,
                        id=cur.lastrowid,
                    )
                    append_events(self.engine, conn, policy.dead_letter_events(stored_letter))
            return IngestResult(
                messages_stored=stored,
                duplicates=duplicates,
                samples_stored=samples,
                dead_letters=len(letters),
                unknown_vins=tuple(message.vin for message in unknown),
            )

        return await self.engine.write(write, bulk=True)

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

        return await self.engine.read(query)

    async def latest_values(self, vin: str, paths: Sequence[str]) -> LatestState:
        wanted = [(path, *self._columns[path]) for path in paths if path in self._columns]
        picks = "".join(f", l.{column}, l.{column}__ts" for _, column, _ in wanted)
        sql = (
            f"SELECT l.received_at{picks} FROM latest_state l "
            "JOIN vehicles v ON v.id = l.vehicle_id WHERE v.vin = ?"
        )

        def query(conn: sqlite3.Connection) -> LatestState:
            row = conn.execute(sql, (vin,)).fetchone()
            if row is None:
                return LatestState((), None)
            values = [
                LatestValue(path, row[2 + 2 * index], decode(kind, row[1 + 2 * index]))
                for index, (path, _, kind) in enumerate(wanted)
                if row[2 + 2 * index] is not None
            ]
            return LatestState(tuple(values), row[0])

        return await self.engine.read(query)

    async def fleet_overview(
        self, brand: str | None, paths: Sequence[str], limit: int = 1000, offset: int = 0
    ) -> list[tuple[Vehicle, LatestState]]:
        wanted = [(path, *self._columns[path]) for path in paths if path in self._columns]
        picks = ", l.received_at" + "".join(
            f", l.{column}, l.{column}__ts" for _, column, _ in wanted
        )
        sql = (
            f"SELECT {VEHICLE_COLUMNS}{picks} FROM vehicles v "
            "JOIN brands b ON b.id = v.brand_id "
            "LEFT JOIN latest_state l ON l.vehicle_id = v.id"
        )
        params: list[Any] = []
        if brand is not None:
            sql += " WHERE b.slug = ?"
            params.append(brand)
        sql += " ORDER BY v.vin LIMIT ? OFFSET ?"
        params += [limit, offset]
        width = VEHICLE_WIDTH

        def query(conn: sqlite3.Connection) -> list[tuple[Vehicle, LatestState]]:
            rows = conn.execute(sql, params).fetchall()
            vehicles = vehicle_rows(conn, [row[:width] for row in rows])
            result = []
            for vehicle, row in zip(vehicles, rows, strict=True):
                values = []
                for index, (path, _, kind) in enumerate(wanted):
                    raw, ts = row[width + 1 + 2 * index], row[width + 2 + 2 * index]
                    if ts is not None:
                        values.append(LatestValue(path, ts, decode(kind, raw)))
                result.append((vehicle, LatestState(tuple(values), row[width])))
            return result

        return await self.engine.read(query)

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
            # One snapshot: the watermark, the aggregates and the raw tail agree.
            conn.execute("BEGIN")
            try:
                return self._buckets(conn, ids[0], column, kind, path, lower, upper, limit,
                                     bucket_us)  # fmt: skip
            finally:
                conn.execute("COMMIT")

        return await self.engine.read(query)

    def _buckets(
        self,
        conn: sqlite3.Connection,
        vehicle_id: int,
        column: str,
        kind: str,
        path: str,
        lower: int,
        upper: int,
        limit: int,
        bucket_us: int,
    ) -> list[HistoryPoint]:
        numeric = kind in ("num", "int")
        state = rollup_state(conn, vehicle_id)
        clean_to = None if state is None else state.clean_to
        boundary = self.retention.boundary(conn)
        parts = []
        for segment in history_segments(lower, upper, bucket_us, boundary, clean_to):
            if segment.minutes:
                rolled = minute_buckets(
                    conn, vehicle_id, path, numeric, segment.lower, segment.upper, bucket_us,
                    limit,
                )  # fmt: skip
                parts.append(
                    [
                        HistoryPoint(
                            bucket,
                            float(value) if numeric else decode(kind, json.loads(str(value))),
                            count,
                        )
                        for bucket, value, count in rolled
                    ]
                )
            else:
                parts.append(self._raw_buckets(conn, vehicle_id, column, kind, segment,
                                               bucket_us, limit))  # fmt: skip
        return join_segments(parts, numeric)[:limit]

    def _raw_buckets(
        self,
        conn: sqlite3.Connection,
        vehicle_id: int,
        column: str,
        kind: str,
        segment: Segment,
        bucket_us: int,
        limit: int,
    ) -> list[HistoryPoint]:
        where = f"WHERE vehicle_id = ? AND ts >= ? AND ts < ? AND {column} IS NOT NULL"
        params = (bucket_us, bucket_us, vehicle_id, segment.lower, segment.upper, limit)
        if kind in ("num", "int"):
            rows = conn.execute(
                f"SELECT (ts / ?) * ? AS bucket, AVG({column}), COUNT(*) FROM telemetry "
                f"{where} GROUP BY bucket ORDER BY bucket LIMIT ?",
                params,
            )
            return [HistoryPoint(bucket, float(avg), count) for bucket, avg, count in rows]
        # Non-numeric values cannot be averaged: each bucket shows its last value.
        rows = conn.execute(
            f"SELECT (ts / ?) * ? AS bucket, MAX(ts), {column}, COUNT(*) "
            f"FROM telemetry {where} GROUP BY bucket ORDER BY bucket LIMIT ?",
            params,
        )
        return [HistoryPoint(bucket, decode(kind, raw), count) for bucket, _, raw, count in rows]

    async def roll_up_history(self, until: int) -> RollupReport:
        return await self.retention.roll_up(until)

    async def prepare_history(self, days: Sequence[int]) -> int:
        return 0  # one table, no partitions: nothing to prepare

    async def expire_history(self, plan: RetentionPlan) -> RetentionReport:
        return await self.retention.expire(plan)

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

        return await self.engine.read(query)

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

        return await self.engine.read(query)
