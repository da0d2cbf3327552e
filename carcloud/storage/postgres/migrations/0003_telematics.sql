-- Telematics derived from committed telemetry: trips, charging sessions with their
-- segments, and charging tariffs. Trips and sessions are re-derived from history, so
-- their ids are derived from the vehicle and start time and survive a re-derivation.
CREATE TABLE trips (
    id                TEXT PRIMARY KEY,
    vehicle_id        BIGINT NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    status            TEXT NOT NULL,
    start_ts          BIGINT NOT NULL,
    end_ts            BIGINT NOT NULL,
    start_lat         DOUBLE PRECISION,
    start_lon         DOUBLE PRECISION,
    end_lat           DOUBLE PRECISION,
    end_lon           DOUBLE PRECISION,
    distance_km       DOUBLE PRECISION NOT NULL,
    distance_source   TEXT NOT NULL,
    driving_s         DOUBLE PRECISION NOT NULL,
    max_speed_kmh     DOUBLE PRECISION,
    energy_kwh        DOUBLE PRECISION,
    energy_source     TEXT,
    start_soc         DOUBLE PRECISION,
    end_soc           DOUBLE PRECISION,
    start_fuel_level  DOUBLE PRECISION,
    end_fuel_level    DOUBLE PRECISION,
    outside_temp_c    DOUBLE PRECISION,
    positions         INTEGER NOT NULL
);
CREATE INDEX trips_vehicle_start ON trips (vehicle_id, start_ts);
CREATE INDEX trips_vehicle_end ON trips (vehicle_id, end_ts);

CREATE TABLE charging_sessions (
    id            TEXT PRIMARY KEY,
    vehicle_id    BIGINT NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    status        TEXT NOT NULL,
    start_ts      BIGINT NOT NULL,
    end_ts        BIGINT NOT NULL,
    energy_kwh    DOUBLE PRECISION NOT NULL,
    max_power_kw  DOUBLE PRECISION,
    current_type  TEXT,
    start_soc     DOUBLE PRECISION,
    end_soc       DOUBLE PRECISION,
    lat           DOUBLE PRECISION,
    lon           DOUBLE PRECISION,
    cost          DOUBLE PRECISION,
    currency      TEXT,
    tariff_id     TEXT
);
CREATE INDEX charging_sessions_vehicle_start ON charging_sessions (vehicle_id, start_ts);
CREATE INDEX charging_sessions_vehicle_end ON charging_sessions (vehicle_id, end_ts);

CREATE TABLE charging_segments (
    session_id    TEXT NOT NULL REFERENCES charging_sessions(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    start_ts      BIGINT NOT NULL,
    end_ts        BIGINT NOT NULL,
    energy_kwh    DOUBLE PRECISION NOT NULL,
    max_power_kw  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (session_id, position)
);

CREATE TABLE tariffs (
    id                 TEXT PRIMARY KEY,
    brand_id           BIGINT NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    currency           TEXT NOT NULL,
    timezone           TEXT NOT NULL,
    price_per_kwh      DOUBLE PRECISION NOT NULL,
    price_per_minute   DOUBLE PRECISION NOT NULL,
    price_per_session  DOUBLE PRECISION NOT NULL,
    periods            TEXT NOT NULL,
    vins               TEXT NOT NULL,
    home               TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX tariffs_brand ON tariffs (brand_id, created_at);
