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

-- One row per VSS path seen, so history rows carry a small integer.
CREATE TABLE signals (
    id    INTEGER PRIMARY KEY,
    path  TEXT NOT NULL UNIQUE,
    kind  TEXT NOT NULL
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

-- The primary key is the index for time-range queries of one vehicle and signal.
CREATE TABLE signal_history (
    vehicle_id  INTEGER NOT NULL,
    signal_id   INTEGER NOT NULL,
    ts          INTEGER NOT NULL,
    value_num   REAL,
    value_text  TEXT,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (vehicle_id, signal_id, ts)
) WITHOUT ROWID;

CREATE TABLE latest_values (
    vehicle_id   INTEGER NOT NULL,
    signal_id    INTEGER NOT NULL,
    ts           INTEGER NOT NULL,
    value_num    REAL,
    value_text   TEXT,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (vehicle_id, signal_id)
) WITHOUT ROWID;

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
