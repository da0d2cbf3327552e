"""TelemetryStore for PostgreSQL: one history row per vehicle and time, signals in JSONB.

A batch is written with a handful of statements whatever its size: the messages'
identities, history rows and latest values each go in as arrays (`unnest`), so a
batch of a thousand messages costs a few round trips, not thousands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from carcloud.catalog import SignalCatalog, default_catalog
from carcloud.ingest.models import (
    DeadLetter,
    HistoryPoint,
    IngestResult,
    LatestState,
    LatestValue,
    SampleTuple,
    SignalValue,
    TelemetryMessage,
)
from carcloud.ingest.retention import RetentionPlan, RetentionReport
from carcloud.ingest.rollup import RollupReport, Segment, history_segments, join_segments
from carcloud.ingest.store import IngestPolicy
from carcloud.registry.models import Vehicle
from carcloud.storage.codec import signal_columns
from carcloud.storage.postgres.engine import Conn, Params, PostgresEngine, Tx
from carcloud.storage.postgres.events import append_events
from carcloud.storage.postgres.history import PostgresHistory, minute_buckets
from carcloud.storage.postgres.json_params import (
    JSON_ELEMENTS,
    JSONB_ELEMENTS,
    json_fields,
    json_rows,
)
from carcloud.storage.postgres.merged_rows import VEHICLE_LATEST
from carcloud.storage.postgres.rollup import Entry, MinuteFold
from carcloud.storage.postgres.vehicles import VEHICLE_COLUMNS, VEHICLE_FROM, vehicle_of


def _decode(kind: str, raw: Any) -> SignalValue:
    """A JSON value back in the type its signal declares."""
    if kind == "num":
        return float(raw)
    if kind == "int":
        return int(raw)
    if kind == "bool":
        return bool(raw)
    if kind == "list":
        return [str(item) for item in raw]
    return str(raw)


async def _replace_rows(
    conn: Conn, keys: list[tuple[int, int]], rows: list[tuple[int, int, str]]
) -> dict[tuple[int, int], dict[str, Any]]:
    """Merge values into history rows that exist (the same vehicle time under another
    seq); the values they held, read under the rows' locks, for the minutes' difference."""
    vehicle_ids, stamps = [key[0] for key in keys], [key[1] for key in keys]
    old = {
        (row[0], row[1]): orjson.loads(row[2])
        for row in await conn.fetch(
            "SELECT t.vehicle_id, t.ts, t.signals::text FROM telemetry t JOIN "
            "unnest($1::bigint[], $2::bigint[]) AS u(vehicle_id, ts) "
            "ON t.vehicle_id = u.vehicle_id AND t.ts = u.ts "
            "ORDER BY t.vehicle_id, t.ts FOR UPDATE OF t",
            vehicle_ids,
            stamps,
        )
    }
    await conn.execute(
        "UPDATE telemetry t SET seq = u.seq, received_at = u.received_at, "
        "signals = t.signals || u.signals FROM unnest($1::bigint[], $2::bigint[], "
        "$3::bigint[], $4::bigint[], $5::jsonb[]) AS u(vehicle_id, ts, seq, received_at, "
        "signals) WHERE t.vehicle_id = u.vehicle_id AND t.ts = u.ts",
        vehicle_ids,
        stamps,
        [row[0] for row in rows],
        [row[1] for row in rows],
        [row[2] for row in rows],
    )
    return old


ALL_FOLDED = 2**62  # the clean watermark of every vehicle: writes fold their own rows


class PostgresTelemetryStore:
    """TelemetryStore over the shared PostgreSQL engine."""

    folds_at_write = True

    def __init__(self, engine: PostgresEngine, catalog: SignalCatalog | None = None) -> None:
        self.engine = engine
        self.catalog = catalog or default_catalog()
        self._kinds = {path: kind for path, (_, kind) in signal_columns(self.catalog).items()}
        self.partitions = PostgresHistory(engine)

    async def write_telemetry(
        self,
        messages: Sequence[TelemetryMessage],
        dead_letters: Sequence[DeadLetter],
        policy: IngestPolicy | None = None,
    ) -> IngestResult:
        async def write(tx: Tx) -> IngestResult:
            conn = tx.conn
            vins = sorted({message.vin for message in messages} | {
                letter.vin for letter in dead_letters if letter.vin
            })  # fmt: skip
            ids = {
                row[0]: (row[1], row[2])
                for row in await conn.fetch(
                    "SELECT vin, id, brand_id FROM vehicles WHERE vin IN "
                    "(SELECT json_array_elements_text($1::json))",
                    json_rows(vins),
                )
            }
            known = [m for m in messages if m.vin in ids]
            unknown = [m for m in messages if m.vin not in ids]
            stored = samples = 0
            if known:
                stored, samples = await self._write_known(conn, known, ids)
            letters = list(dead_letters)
            if policy is not None:
                letters += [policy.unknown_vin(message) for message in unknown]
            for letter in letters:
                brand_id = ids[letter.vin][1] if letter.vin in ids else None
                if letter.vin and brand_id is None:
                    brand_id = await conn.fetchval(
                        "SELECT brand_id FROM vehicles WHERE vin = $1", letter.vin
                    )
                letter_id = await conn.fetchval(
                    "INSERT INTO dead_letters (received_at, subject, vin, brand_id, reason, "
                    "payload) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    letter.received_at,
                    letter.subject,
                    letter.vin,
                    brand_id,
                    letter.reason,
                    letter.payload,
                )
                if policy is not None:
                    stored_letter = DeadLetter(
                        letter.received_at,
                        letter.subject,
                        letter.vin,
                        letter.reason,
                        letter.payload,
                        id=int(letter_id),
                    )
                    await append_events(tx, policy.dead_letter_events(stored_letter))
            return IngestResult(
                messages_stored=stored,
                duplicates=len(known) - stored,
                samples_stored=samples,
                dead_letters=len(letters),
                unknown_vins=tuple(message.vin for message in unknown),
            )

        return await self.engine.write(write)

    async def _write_known(
        self, conn: Conn, known: list[TelemetryMessage], ids: dict[str, tuple[int, int]]
    ) -> tuple[int, int]:
        """Identities, history rows with their minutes, latest values: (messages, samples).

        Every statement takes its rows' locks in key order, so that ingest processes
        writing the same vehicles wait for each other but never deadlock.
        """
        first: dict[tuple[int, int], TelemetryMessage] = {}
        for message in known:
            first.setdefault((ids[message.vin][0], message.seq), message)
        identities = sorted(first.items())
        rows = await conn.fetch(
            "INSERT INTO telemetry_messages (vehicle_id, seq, ts, received_at, samples) "
            f"SELECT {json_fields('bigint', 'bigint', 'bigint', 'bigint', 'int')} "
            f"FROM {JSON_ELEMENTS} ON CONFLICT DO NOTHING "
            "RETURNING vehicle_id, seq",
            json_rows(
                [(key[0], key[1], m.ts, m.received_at, len(m.samples)) for key, m in identities]
            ),
        )
        fresh = {(row[0], row[1]) for row in rows}
        # (vehicle, ts) -> seq, received_at, values, and the row's minute in the fold
        history: dict[tuple[int, int], tuple[int, int, dict[str, Any], dict[str, Entry]]] = {}
        # vehicle -> its newest sample per path in this batch, and receipt time
        latest: dict[int, dict[str, SampleTuple]] = {}
        received: dict[int, int] = {}
        fold = MinuteFold()
        stored = samples = 0
        for message in known:
            vehicle_id = ids[message.vin][0]
            if (vehicle_id, message.seq) not in fresh:
                continue
            fresh.discard((vehicle_id, message.seq))  # a seq twice in one batch: once
            stored += 1
            samples += len(message.samples)
            received[vehicle_id] = max(received.get(vehicle_id, 0), message.received_at)
            newest = latest.get(vehicle_id)
            if newest is None:
                newest = latest[vehicle_id] = {}
            # This loop runs per value: the row is looked up when the time changes (the
            # values of one sample share it), and `newest` keeps the sample tuples.
            row_ts: int | None = None
            for sample in message.samples:
                path, ts, value = sample
                if ts != row_ts:
                    row = history.get((vehicle_id, ts))
                    if row is None:
                        row = history[(vehicle_id, ts)] = (
                            message.seq, message.received_at, {}, fold.slot(vehicle_id, ts)
                        )  # fmt: skip
                    row_ts, values, entries = ts, row[2], row[3]
                # The minute (MinuteFold's entries, inline).
                number = value if type(value) is float or type(value) is int else None
                entry = entries.get(path)
                if entry is None:
                    # Numeric signals show their average per bucket: no last value.
                    entries[path] = [number, 1, ts, value if number is None else None]
                else:
                    if path in values:  # the same instant twice in this batch: replaced
                        previous = values[path]
                        if number is not None and type(previous) in (float, int):
                            entry[0] = (entry[0] or 0.0) + number - previous
                    else:
                        entry[1] += 1
                        if number is not None:
                            entry[0] = number if entry[0] is None else entry[0] + number
                    if ts >= entry[2]:
                        entry[2], entry[3] = ts, value if number is None else None
                values[path] = value
                seen = newest.get(path)
                if seen is None or seen[1] <= ts:
                    newest[path] = sample
        if not history:
            return stored, samples
        keys = sorted(history)
        inserted = {
            (row[0], row[1])
            for row in await conn.fetch(
                "INSERT INTO telemetry (vehicle_id, ts, seq, received_at, signals) "
                f"SELECT {json_fields('bigint', 'bigint', 'bigint', 'bigint', 'value')} "
                f"FROM {JSONB_ELEMENTS} "
                "ON CONFLICT (vehicle_id, ts) DO NOTHING RETURNING vehicle_id, ts",
                json_rows([(*key, *history[key][:3]) for key in keys]),
            )
        }
        if len(inserted) < len(keys):
            replaced = [key for key in keys if key not in inserted]
            old = await _replace_rows(conn, replaced, [
                (history[key][0], history[key][1], orjson.dumps(history[key][2]).decode())
                for key in replaced
            ])  # fmt: skip
            for key, values in old.items():
                fold.replaced(key[0], key[1], values, history[key][2])
        await fold.write(conn)
        # One row per vehicle: its newest values and when its data arrived.
        await VEHICLE_LATEST.write(
            conn,
            [
                (
                    (vehicle_id,),
                    {path: (ts, value) for path, ts, value in latest[vehicle_id].values()},
                    received[vehicle_id],
                )
                for vehicle_id in sorted(received)
            ],
        )
        return stored, samples

    def _values(
        self, signals: dict[str, Any], paths: Sequence[str] | None = None
    ) -> tuple[LatestValue, ...]:
        """A vehicle's stored {path: [ts, value]} as values in the types their signals
        declare: by path, or in the order of `paths` (those it holds)."""
        kinds = self._kinds
        order = sorted(signals) if paths is None else [p for p in paths if p in signals]
        return tuple(
            LatestValue(path, signals[path][0], _decode(kinds.get(path, "str"), signals[path][1]))
            for path in order
        )

    async def latest_state(self, vin: str) -> LatestState:
        async def query(conn: Conn) -> LatestState:
            row = await conn.fetchrow(
                "SELECT l.signals::text, l.received_at FROM vehicles v "
                "JOIN vehicle_latest l ON l.vehicle_id = v.id WHERE v.vin = $1",
                vin,
            )
            if row is None:
                return LatestState((), None)
            return LatestState(self._values(orjson.loads(row[0])), row[1])

        return await self.engine.read(query)

    async def latest_values(self, vin: str, paths: Sequence[str]) -> LatestState:
        async def query(conn: Conn) -> LatestState:
            # The row's text, the paths picked here: extracting them on the server
            # (json -> per path) made the round trip ~100 us slower (20 signals).
            row = await conn.fetchrow(
                "SELECT l.received_at, l.signals::text FROM vehicles v "
                "JOIN vehicle_latest l ON l.vehicle_id = v.id WHERE v.vin = $1",
                vin,
            )
            if row is None:
                return LatestState((), None)
            return LatestState(self._values(orjson.loads(row[1]), paths), row[0])

        return await self.engine.read(query)

    async def fleet_overview(
        self, brand: str | None, paths: Sequence[str], limit: int = 1000, offset: int = 0
    ) -> list[tuple[Vehicle, LatestState]]:
        params = Params()
        wanted = params.add(list(paths))
        where = f"WHERE b.slug = {params.add(brand)}" if brand is not None else ""
        sql = (
            f"SELECT {VEHICLE_COLUMNS}, l.received_at, "
            "(SELECT COALESCE(json_object_agg(s.key, s.value), '{}') "
            f"FROM json_each(l.signals) s WHERE s.key = ANY({wanted}::text[]))"
            f"::text {VEHICLE_FROM} LEFT JOIN vehicle_latest l ON l.vehicle_id = v.id "
            f"{where} ORDER BY v.vin LIMIT {params.add(limit)} OFFSET {params.add(offset)}"
        )

        async def query(conn: Conn) -> list[tuple[Vehicle, LatestState]]:
            return [
                (
                    vehicle_of(row),
                    LatestState(self._values(orjson.loads(row[-1] or "{}"), paths), row[-2]),
                )
                for row in await conn.fetch(sql, *params.values)
            ]

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
        kind = self._kinds.get(path)
        if kind is None:
            return []
        lower = start if start is not None else -(2**62)
        upper = end if end is not None else 2**62
        where = "WHERE vehicle_id = $1 AND ts >= $2 AND ts < $3 AND signals ? $4"

        async def query(conn: Conn) -> list[HistoryPoint]:
            vehicle_id = await conn.fetchval("SELECT id FROM vehicles WHERE vin = $1", vin)
            if vehicle_id is None:
                return []
            if bucket_us is None:
                rows = await conn.fetch(
                    f"SELECT ts, (signals -> $4)::text FROM telemetry {where} ORDER BY ts "
                    "LIMIT $5",
                    vehicle_id, lower, upper, path, limit,
                )  # fmt: skip
                return [HistoryPoint(ts, _decode(kind, orjson.loads(raw))) for ts, raw in rows]
            # One snapshot: the watermark, the aggregates and the raw tail agree.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await self._buckets(
                    conn, vehicle_id, kind, path, lower, upper, limit, bucket_us
                )

        return await self.engine.read(query)

    async def _buckets(
        self,
        conn: Conn,
        vehicle_id: int,
        kind: str,
        path: str,
        lower: int,
        upper: int,
        limit: int,
        bucket_us: int,
    ) -> list[HistoryPoint]:
        numeric = kind in ("num", "int")
        boundary = await self.partitions.boundary(conn)
        # Every write folds its rows into their minutes: the aggregates hold every minute.
        clean_to = ALL_FOLDED
        parts = []
        for segment in history_segments(lower, upper, bucket_us, boundary, clean_to):
            if segment.minutes:
                rolled = await minute_buckets(
                    conn, vehicle_id, path, numeric, segment.lower, segment.upper, bucket_us,
                    limit,
                )  # fmt: skip
                parts.append(
                    [
                        HistoryPoint(
                            bucket,
                            float(value) if numeric else _decode(kind, orjson.loads(str(value))),
                            count,
                        )
                        for bucket, value, count in rolled
                    ]
                )
            else:
                parts.append(await self._raw_buckets(conn, vehicle_id, kind, path, segment,
                                                     bucket_us, limit))  # fmt: skip
        return join_segments(parts, numeric)[:limit]

    async def _raw_buckets(
        self,
        conn: Conn,
        vehicle_id: int,
        kind: str,
        path: str,
        segment: Segment,
        bucket_us: int,
        limit: int,
    ) -> list[HistoryPoint]:
        where = "WHERE vehicle_id = $1 AND ts >= $2 AND ts < $3 AND signals ? $4"
        span = (vehicle_id, segment.lower, segment.upper, path, bucket_us, limit)
        if kind in ("num", "int"):
            rows = await conn.fetch(
                f"SELECT (ts / $5) * $5 AS bucket, AVG((signals ->> $4)::float8), COUNT(*) "
                f"FROM telemetry {where} GROUP BY bucket ORDER BY bucket LIMIT $6",
                *span,
            )
            return [HistoryPoint(bucket, float(avg), count) for bucket, avg, count in rows]
        # Non-numeric values cannot be averaged: each bucket shows its last value.
        rows = await conn.fetch(
            f"SELECT (ts / $5) * $5 AS bucket, "
            f"((array_agg(signals -> $4 ORDER BY ts DESC))[1])::text, COUNT(*) "
            f"FROM telemetry {where} GROUP BY bucket ORDER BY bucket LIMIT $6",
            *span,
        )
        return [
            HistoryPoint(bucket, _decode(kind, orjson.loads(raw)), count)
            for bucket, raw, count in rows
        ]

    async def roll_up_history(self, until: int) -> RollupReport:
        # Nothing to fold: every write folded its own rows (carcloud.storage.postgres.rollup).
        return RollupReport(until)

    async def prepare_history(self, days: Sequence[int]) -> int:
        return await self.partitions.prepare(days)

    async def expire_history(self, plan: RetentionPlan) -> RetentionReport:
        return await self.partitions.expire(plan)

    async def count_samples(self, vin: str | None = None) -> int:
        async def query(conn: Conn) -> int:
            if vin is None:
                return int(await conn.fetchval("SELECT COUNT(*) FROM telemetry"))
            return int(
                await conn.fetchval(
                    "SELECT COUNT(*) FROM telemetry WHERE vehicle_id = "
                    "(SELECT id FROM vehicles WHERE vin = $1)",
                    vin,
                )
            )

        return await self.engine.read(query)

    async def list_dead_letters(
        self, vin: str | None, brand: str | None, limit: int, before_id: int | None = None
    ) -> list[DeadLetter]:
        params = Params()
        where = ["TRUE"]
        if brand is not None:
            where.append(f"d.brand_id = (SELECT id FROM brands WHERE slug = {params.add(brand)})")
        if vin is not None:
            where.append(f"d.vin = {params.add(vin)}")
        if before_id is not None:
            where.append(f"d.id < {params.add(before_id)}")
        sql = (
            "SELECT d.id, d.received_at, d.subject, d.vin, d.reason, d.payload FROM dead_letters d "
            f"WHERE {' AND '.join(where)} ORDER BY d.id DESC LIMIT {params.add(limit)}"
        )

        async def query(conn: Conn) -> list[DeadLetter]:
            return [
                DeadLetter(
                    id=row[0],
                    received_at=row[1],
                    subject=row[2],
                    vin=row[3],
                    reason=row[4],
                    payload=bytes(row[5]),
                )
                for row in await conn.fetch(sql, *params.values)
            ]

        return await self.engine.read(query)
