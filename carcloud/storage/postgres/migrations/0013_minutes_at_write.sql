-- Minute aggregates are folded by ingest's own write (carcloud.storage.postgres.rollup)
-- instead of a periodic pass: each minute keeps the time of its last value, so that a
-- late row merged into it replaces the last value only when it is newer.
ALTER TABLE telemetry_minutes ADD COLUMN last_ts BIGINT;

-- What the pass had not folded yet (each vehicle's rows from its clean watermark on, and
-- every row of a vehicle it never reached) is folded once here; from now on every write
-- folds its own rows.
CREATE TEMPORARY TABLE rollup_tail ON COMMIT DROP AS
SELECT v.id AS vehicle_id,
       GREATEST(COALESCE(LEAST(r.folded_to, COALESCE(r.dirty_from, r.folded_to)),
                         -4611686018427387904),
                COALESCE((SELECT full_rate_from FROM telemetry_retention),
                         -4611686018427387904)) AS lo
FROM vehicles v LEFT JOIN telemetry_rollup r ON r.vehicle_id = v.id;

INSERT INTO telemetry_minutes (vehicle_id, path, minute, average, count, last, last_ts)
WITH sums AS (
    SELECT t.vehicle_id, t.ts - t.ts % 60000000 AS minute, s.key AS path,
           AVG((s.value #>> '{}')::float8) FILTER (WHERE jsonb_typeof(s.value) = 'number')
               AS average,
           COUNT(*) AS count, MAX(t.ts) AS last_ts
    FROM rollup_tail w JOIN telemetry t ON t.vehicle_id = w.vehicle_id AND t.ts >= w.lo
    CROSS JOIN LATERAL jsonb_each(t.signals) s
    GROUP BY 1, 2, 3
), lasts AS (
    SELECT t.vehicle_id, t.ts - t.ts % 60000000 AS minute,
           jsonb_merge_agg(t.signals ORDER BY t.ts) AS merged
    FROM rollup_tail w JOIN telemetry t ON t.vehicle_id = w.vehicle_id AND t.ts >= w.lo
    GROUP BY 1, 2
)
SELECT s.vehicle_id, s.path, s.minute, s.average, s.count, l.merged -> s.path, s.last_ts
FROM sums s JOIN lasts l USING (vehicle_id, minute)
ON CONFLICT (vehicle_id, path, minute) DO UPDATE SET average = excluded.average,
    count = excluded.count, last = excluded.last, last_ts = excluded.last_ts;

DROP TABLE telemetry_rollup;

-- The rows every batch updates in place (a vehicle's latest values, its current
-- minutes) keep room on their page for the new version: a HOT update then writes no
-- index entry and old versions are pruned on the page (measured: bench/pg_ingest_write.py).
ALTER TABLE latest_values SET (fillfactor = 50);
ALTER TABLE latest_received SET (fillfactor = 50);
ALTER TABLE telemetry_minutes SET (fillfactor = 70);
