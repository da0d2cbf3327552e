-- Registry, telemetry history, latest state and dead letters.
CREATE TABLE brands (
    id          INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE vehicles (
    id            INTEGER PRIMARY KEY,
    vin           TEXT NOT NULL UNIQUE,
    brand_id      INTEGER NOT NULL REFERENCES brands(id),
    model         TEXT NOT NULL,
    model_year    INTEGER,
    secret_hash   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    online        INTEGER NOT NULL DEFAULT 0,
    last_seen_at  INTEGER,
    connected_at  INTEGER,
    presence_at   INTEGER
);
CREATE INDEX vehicles_brand ON vehicles (brand_id, vin);

CREATE TABLE vehicle_tags (
    vehicle_id  INTEGER NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    PRIMARY KEY (vehicle_id, tag)
) WITHOUT ROWID;
CREATE INDEX vehicle_tags_tag ON vehicle_tags (tag, vehicle_id);

-- The signal columns of `telemetry` and `latest_state`: one per catalog signal,
-- added by the storage when the catalog grows (ALTER TABLE ... ADD COLUMN).
CREATE TABLE signals (
    path         TEXT PRIMARY KEY,
    column_name  TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL
);

-- (vehicle, seq) is a message's identity: a redelivered message finds its row and is skipped.
CREATE TABLE telemetry_messages (
    vehicle_id   INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    ts           INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    samples      INTEGER NOT NULL,
    PRIMARY KEY (vehicle_id, seq)
) WITHOUT ROWID;

-- History: one row per vehicle and vehicle time, one typed column per signal (NULL when
-- that sample did not carry it). The primary key clusters rows by vehicle and time, so a
-- time-range query for one vehicle reads one contiguous range of the index.
CREATE TABLE telemetry (
    vehicle_id   INTEGER NOT NULL,
    ts           INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (vehicle_id, ts)
) WITHOUT ROWID;

-- Latest state: one row per vehicle; each signal column has a <column>__ts beside it.
CREATE TABLE latest_state (
    vehicle_id   INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL
);

CREATE TABLE dead_letters (
    id           INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL,
    subject      TEXT NOT NULL,
    vin          TEXT,
    brand_id     INTEGER,
    reason       TEXT NOT NULL,
    payload      BLOB NOT NULL
);
CREATE INDEX dead_letters_vin ON dead_letters (vin, id);
CREATE INDEX dead_letters_brand ON dead_letters (brand_id, id);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    brand_id    INTEGER REFERENCES brands(id) ON DELETE CASCADE,
    key_hash    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
