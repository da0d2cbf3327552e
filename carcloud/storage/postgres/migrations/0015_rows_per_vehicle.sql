-- What ingest updates on every batch is kept in one row per vehicle (latest values) and
-- one row per vehicle and minute (minute aggregates), each holding its signals in a
-- JSON object, instead of one row per signal. A fleet of cars that each send a message
-- a second touched 20 rows per message in each table (one per signal); now it touches
-- one (measured: bench/pg_ingest_write.py --vehicles 1000, docs/benchmarks.md).

-- Ingest merges each batch into these rows in Python, under their row locks
-- (carcloud.storage.postgres.merged_rows): latest values are {path: [ts, value]}; minutes
-- are {path: [sum of numeric values or null, count, time of the last value, last value of
-- a non-numeric signal or null]}. The column is `json`, not `jsonb`: PostgreSQL never
-- looks inside but to read one signal's minutes, and json input only checks the syntax
-- where jsonb input builds a tree with a numeric for every number (a row of 20 signals:
-- an update cost 28 µs as json, 51 µs as jsonb).
CREATE TABLE vehicle_latest (
    vehicle_id   BIGINT PRIMARY KEY,
    received_at  BIGINT,
    signals      JSON NOT NULL
) WITH (fillfactor = 50, toast_tuple_target = 8160);

INSERT INTO vehicle_latest (vehicle_id, received_at, signals)
SELECT ids.vehicle_id, r.received_at,
       COALESCE((SELECT jsonb_object_agg(l.path, jsonb_build_array(l.ts, l.value))
                 FROM latest_values l WHERE l.vehicle_id = ids.vehicle_id), '{}'::jsonb)::json
FROM (SELECT vehicle_id FROM latest_received
      UNION SELECT DISTINCT vehicle_id FROM latest_values) ids
LEFT JOIN latest_received r ON r.vehicle_id = ids.vehicle_id;

DROP TABLE latest_values;
DROP TABLE latest_received;

ALTER TABLE telemetry_minutes RENAME TO telemetry_minutes_by_path;
ALTER INDEX telemetry_minutes_pkey RENAME TO telemetry_minutes_by_path_pkey;
ALTER INDEX telemetry_minutes_minute RENAME TO telemetry_minutes_by_path_minute;

CREATE TABLE telemetry_minutes (
    vehicle_id   BIGINT NOT NULL,
    minute       BIGINT NOT NULL,
    signals      JSON NOT NULL,
    PRIMARY KEY (vehicle_id, minute)
) WITH (fillfactor = 70, toast_tuple_target = 8160);
CREATE INDEX telemetry_minutes_minute ON telemetry_minutes (minute);

INSERT INTO telemetry_minutes (vehicle_id, minute, signals)
SELECT vehicle_id, minute,
       jsonb_object_agg(path, jsonb_build_array(
           average * count, count, last_ts, CASE WHEN average IS NULL THEN last END))::json
FROM telemetry_minutes_by_path GROUP BY vehicle_id, minute;

DROP TABLE telemetry_minutes_by_path;
