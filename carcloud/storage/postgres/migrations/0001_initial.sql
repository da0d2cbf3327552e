-- The PostgreSQL schema: the same tables and meanings as the SQLite one, in PostgreSQL's types.
CREATE TABLE brands (
    id          BIGSERIAL PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE vehicles (
    id            BIGSERIAL PRIMARY KEY,
    vin           TEXT NOT NULL UNIQUE,
    brand_id      BIGINT NOT NULL REFERENCES brands(id),
    model         TEXT NOT NULL,
    model_year    INTEGER,
    secret_hash   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    online        BOOLEAN NOT NULL DEFAULT FALSE,
    last_seen_at  BIGINT,
    connected_at  BIGINT,
    presence_at   BIGINT
);
CREATE INDEX vehicles_brand ON vehicles (brand_id, vin);

CREATE TABLE vehicle_tags (
    vehicle_id  BIGINT NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    PRIMARY KEY (vehicle_id, tag)
);
CREATE INDEX vehicle_tags_tag ON vehicle_tags (tag, vehicle_id);

-- (vehicle, seq) is a message's identity: a redelivered message finds its row and is skipped.
CREATE TABLE telemetry_messages (
    vehicle_id   BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    ts           BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    samples      INTEGER NOT NULL,
    PRIMARY KEY (vehicle_id, seq)
);

-- History: one row per vehicle and vehicle time; the signals of that instant in one JSONB
-- object keyed by VSS path. No column per signal: PostgreSQL allows at most 1,600 columns,
-- and the catalog plus brands' own signals would outgrow that (docs/storage.md).
CREATE TABLE telemetry (
    vehicle_id   BIGINT NOT NULL,
    ts           BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    signals      JSONB NOT NULL,
    PRIMARY KEY (vehicle_id, ts)
);

-- Latest state: one row per vehicle and signal, the newest by vehicle time.
CREATE TABLE latest_values (
    vehicle_id   BIGINT NOT NULL,
    path         TEXT NOT NULL,
    ts           BIGINT NOT NULL,
    value        JSONB NOT NULL,
    PRIMARY KEY (vehicle_id, path)
);
CREATE TABLE latest_received (
    vehicle_id   BIGINT PRIMARY KEY,
    received_at  BIGINT NOT NULL
);

CREATE TABLE dead_letters (
    id           BIGSERIAL PRIMARY KEY,
    received_at  BIGINT NOT NULL,
    subject      TEXT NOT NULL,
    vin          TEXT,
    brand_id     BIGINT,
    reason       TEXT NOT NULL,
    payload      BYTEA NOT NULL
);
CREATE INDEX dead_letters_vin ON dead_letters (vin, id);
CREATE INDEX dead_letters_brand ON dead_letters (brand_id, id);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    brand_id    BIGINT REFERENCES brands(id) ON DELETE CASCADE,
    key_hash    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE commands (
    id               TEXT PRIMARY KEY,
    vehicle_id       BIGINT NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    params           TEXT NOT NULL,
    status           TEXT NOT NULL,
    reason           TEXT,
    idempotency_key  TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    delivered_at     BIGINT,
    completed_at     BIGINT,
    seq              BIGSERIAL
);
CREATE UNIQUE INDEX commands_idempotency ON commands (vehicle_id, idempotency_key);
CREATE INDEX commands_vehicle ON commands (vehicle_id, created_at);
CREATE INDEX commands_open ON commands (status, expires_at) WHERE status IN ('queued', 'delivered');

CREATE TABLE command_transitions (
    id          BIGSERIAL PRIMARY KEY,
    command_id  TEXT NOT NULL REFERENCES commands(id) ON DELETE CASCADE,
    status      TEXT NOT NULL,
    at          BIGINT NOT NULL,
    reason      TEXT
);
CREATE INDEX command_transitions_command ON command_transitions (command_id, at);

CREATE TABLE twin_desired (
    vehicle_id  BIGINT PRIMARY KEY REFERENCES vehicles(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    own         TEXT NOT NULL,
    effective   TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE twin_reported (
    vehicle_id       BIGINT PRIMARY KEY REFERENCES vehicles(id) ON DELETE CASCADE,
    document         TEXT NOT NULL,
    desired_version  INTEGER,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE configurations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    target      TEXT NOT NULL,
    priority    INTEGER NOT NULL,
    desired     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- The outbox. Writers of events take a transaction-level advisory lock first, so ids are
-- handed out in commit order and a reader following `id > last` never skips one.
CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    type        TEXT NOT NULL,
    brand       TEXT,
    vin         TEXT,
    at          BIGINT NOT NULL,
    data        TEXT NOT NULL,
    relayed_at  BIGINT
);
CREATE INDEX events_unrelayed ON events (id) WHERE relayed_at IS NULL;
CREATE INDEX events_brand ON events (brand, id);
CREATE INDEX events_vin ON events (vin, id);
CREATE INDEX events_at ON events (at);
