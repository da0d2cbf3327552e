-- Downsampled history: per vehicle, signal and minute, the average of numeric values, the
-- number of values, and the last value (JSON; non-numeric signals show it per bucket, numeric ones their average).
-- Written by retention before it deletes full-rate rows (carcloud.ingest.retention).
CREATE TABLE telemetry_minutes (
    vehicle_id   INTEGER NOT NULL,
    path         TEXT NOT NULL,
    minute       INTEGER NOT NULL,
    average      REAL,
    count        INTEGER NOT NULL,
    last         TEXT,
    PRIMARY KEY (vehicle_id, path, minute)
) WITHOUT ROWID;
CREATE INDEX telemetry_minutes_minute ON telemetry_minutes (minute);

-- Where full-rate history starts after the last retention pass (one row).
CREATE TABLE telemetry_retention (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    full_rate_from  INTEGER,
    applied_at      INTEGER NOT NULL
);
