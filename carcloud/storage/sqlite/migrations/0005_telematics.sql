-- Telematics derived from committed telemetry: trips, charging sessions with their
-- segments, and charging tariffs. Trips and sessions are re-derived from history, so
-- their ids are derived from the vehicle and start time and survive a re-derivation.
CREATE TABLE trips (
    id                TEXT PRIMARY KEY,
    vehicle_id        INTEGER NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    status            TEXT NOT NULL,
    start_ts          INTEGER NOT NULL,
    end_ts            INTEGER NOT NULL,
    start_lat         REAL,
    start_lon         REAL,
    end_lat           REAL,
    end_lon           REAL,
    distance_km       REAL NOT NULL,
    distance_source   TEXT NOT NULL,
    driving_s         REAL NOT NULL,
    max_speed_kmh     REAL,
    energy_kwh        REAL,
    energy_source     TEXT,
    start_soc         REAL,
    end_soc           REAL,
    start_fuel_level  REAL,
    end_fuel_level    REAL,
    outside_temp_c    REAL,
    positions         INTEGER NOT NULL
);
CREATE INDEX trips_vehicle_start ON trips (vehicle_id, start_ts);
CREATE INDEX trips_vehicle_end ON trips (vehicle_id, end_ts);

CREATE TABLE charging_sessions (
    id            TEXT PRIMARY KEY,
    vehicle_id    INTEGER NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    status        TEXT NOT NULL,
    start_ts      INTEGER NOT NULL,
    end_ts        INTEGER NOT NULL,
    energy_kwh    REAL NOT NULL,
    max_power_kw  REAL,
    current_type  TEXT,
    start_soc     REAL,
    end_soc       REAL,
    lat           REAL,
    lon           REAL,
    cost          REAL,
    currency      TEXT,
    tariff_id     TEXT
);
CREATE INDEX charging_sessions_vehicle_start ON charging_sessions (vehicle_id, start_ts);
CREATE INDEX charging_sessions_vehicle_end ON charging_sessions (vehicle_id, end_ts);

CREATE TABLE charging_segments (
    session_id    TEXT NOT NULL REFERENCES charging_sessions(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    start_ts      INTEGER NOT NULL,
    end_ts        INTEGER NOT NULL,
    energy_kwh    REAL NOT NULL,
    max_power_kw  REAL NOT NULL,
    PRIMARY KEY (session_id, position)
) WITHOUT ROWID;

CREATE TABLE tariffs (
    id                 TEXT PRIMARY KEY,
    brand_id           INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    currency           TEXT NOT NULL,
    timezone           TEXT NOT NULL,
    price_per_kwh      REAL NOT NULL,
    price_per_minute   REAL NOT NULL,
    price_per_session  REAL NOT NULL,
    periods            TEXT NOT NULL,
    vins               TEXT NOT NULL,
    home               TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX tariffs_brand ON tariffs (brand_id, created_at);
