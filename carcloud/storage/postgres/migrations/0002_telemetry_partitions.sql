-- History in daily range partitions of vehicle time (ts, microseconds), so that retention
-- drops a whole day at once. carcloud creates each day's partition ahead of time
-- (carcloud.ingest.retention.days_to_prepare); a row of a day without a partition lands in
-- the default partition and is moved into its day's partition when that is created.
-- Existing history moves into the default partition here, and out of it as days are prepared.
ALTER TABLE telemetry RENAME TO telemetry_unpartitioned;
ALTER INDEX telemetry_pkey RENAME TO telemetry_unpartitioned_pkey;

CREATE TABLE telemetry (
    vehicle_id   BIGINT NOT NULL,
    ts           BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    signals      JSONB NOT NULL,
    PRIMARY KEY (vehicle_id, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE telemetry_default PARTITION OF telemetry DEFAULT;

INSERT INTO telemetry SELECT vehicle_id, ts, seq, received_at, signals FROM telemetry_unpartitioned;
DROP TABLE telemetry_unpartitioned;

-- Downsampled history: per vehicle, signal and minute, the average of numeric values, the
-- number of values, and the last value (non-numeric signals show it per bucket, numeric ones their average).
CREATE TABLE telemetry_minutes (
    vehicle_id   BIGINT NOT NULL,
    path         TEXT NOT NULL,
    minute       BIGINT NOT NULL,
    average      DOUBLE PRECISION,
    count        INTEGER NOT NULL,
    last         JSONB,
    PRIMARY KEY (vehicle_id, path, minute)
);

-- Where full-rate history starts after the last retention pass (one row).
CREATE TABLE telemetry_retention (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    full_rate_from  BIGINT,
    applied_at      BIGINT NOT NULL
);
CREATE INDEX telemetry_minutes_minute ON telemetry_minutes (minute);

-- The signals of several rows merged, later keys winning: with ORDER BY ts, the last value
-- of each signal (retention folds a minute's rows with it).
CREATE AGGREGATE jsonb_merge_agg(jsonb) (SFUNC = jsonb_concat, STYPE = jsonb, INITCOND = '{}');
