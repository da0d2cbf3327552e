-- Where each vehicle's derivation of trips and charging sessions stopped (the scans'
-- state as JSON), so that the next one goes on from there; `version` counts saves, and a
-- save succeeds only over the version its derivation read.
CREATE TABLE derive_checkpoints (
    vehicle_id BIGINT PRIMARY KEY REFERENCES vehicles(id) ON DELETE CASCADE,
    version    BIGINT NOT NULL,
    state      TEXT NOT NULL
);
