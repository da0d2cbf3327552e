-- Geofences of each brand (circles, polygons, corridors) and the visits vehicles make
-- to them. Visits are re-derived from history, so their ids are derived from the
-- vehicle, the fence and the enter time and survive a re-derivation.
CREATE TABLE geofences (
    id           TEXT PRIMARY KEY,
    brand_id     INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    shape        TEXT NOT NULL,
    points       TEXT NOT NULL,
    radius_m     REAL,
    width_m      REAL,
    margin_m     REAL NOT NULL,
    min_dwell_s  REAL NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX geofences_brand ON geofences (brand_id, created_at);

CREATE TABLE geofence_visits (
    id           TEXT PRIMARY KEY,
    geofence_id  TEXT NOT NULL REFERENCES geofences(id) ON DELETE CASCADE,
    vehicle_id   INTEGER NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    enter_ts     INTEGER NOT NULL,
    exit_ts      INTEGER,
    last_ts      INTEGER NOT NULL
);
CREATE INDEX geofence_visits_vehicle ON geofence_visits (vehicle_id, enter_ts);
CREATE INDEX geofence_visits_fence ON geofence_visits (geofence_id, enter_ts);
