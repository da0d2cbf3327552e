-- Continuous minute rollups (carcloud.ingest.rollup): per vehicle, every minute before
-- folded_to is in telemetry_minutes; a row written later into a folded minute sets
-- dirty_from (the earliest such minute) in the same transaction, until a pass folds again.
CREATE TABLE telemetry_rollup (
    vehicle_id   BIGINT PRIMARY KEY,
    folded_to    BIGINT NOT NULL,
    dirty_from   BIGINT
);

-- Retention trims message identities older than full-rate history by their time.
CREATE INDEX telemetry_messages_ts ON telemetry_messages (ts);
