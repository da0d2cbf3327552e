-- Geofences of each brand (circles, polygons, corridors) and the visits vehicles make
-- to them. Visits are re-derived from history, so their ids are derived from the
-- vehicle, the fence and the enter time and survive a re-derivation.
CREATE TABLE geofences (
    id           TEXT PRIMARY KEY,
    brand_id     BIGINT NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    shape        TEXT NOT NULL,
    points       TEXT NOT NULL,
    radius_m     DOUBLE PRECISION,
    width_m      DOUBLE PRECISION,
    margin_m     DOUBLE PRECISION NOT NULL,
    min_dwell_s  DOUBLE PRECISION NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX geofences_brand ON geofences (brand_id, created_at);

CREATE TABLE geofence_visits (
    id           TEXT PRIMARY KEY,
    geofence_id  TEXT NOT NULL REFERENCES geofences(id) ON DELETE CASCADE,
    vehicle_id   BIGINT NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    enter_ts     BIGINT NOT NULL,
    exit_ts      BIGINT,
    last_ts      BIGINT NOT NULL
);
CREATE INDEX geofence_visits_vehicle ON geofence_visits (vehicle_id, enter_ts);
CREATE INDEX geofence_visits_fence ON geofence_visits (geofence_id, enter_ts);
