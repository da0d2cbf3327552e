-- Remote control: commands with their lifecycle, twins, fleet-wide configurations.
CREATE TABLE commands (
    id               TEXT PRIMARY KEY,
    vehicle_id       INTEGER NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    params           TEXT NOT NULL,
    status           TEXT NOT NULL,
    reason           TEXT,
    idempotency_key  TEXT,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    completed_at     INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX commands_idempotency ON commands (vehicle_id, idempotency_key);
CREATE INDEX commands_vehicle ON commands (vehicle_id, created_at);
-- Open commands are few; this index keeps the dispatcher's and the expiry sweep's look-ups small.
CREATE INDEX commands_open ON commands (status, expires_at) WHERE status IN ('queued', 'delivered');

CREATE TABLE command_transitions (
    command_id  TEXT NOT NULL REFERENCES commands(id) ON DELETE CASCADE,
    status      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    reason      TEXT
);
CREATE INDEX command_transitions_command ON command_transitions (command_id, at);

-- Desired properties: what the API set for this vehicle (own), and what it gets once the
-- fleet configurations that target it are merged in (effective, versioned).
CREATE TABLE twin_desired (
    vehicle_id  INTEGER PRIMARY KEY REFERENCES vehicles(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    own         TEXT NOT NULL,
    effective   TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE twin_reported (
    vehicle_id       INTEGER PRIMARY KEY REFERENCES vehicles(id) ON DELETE CASCADE,
    document         TEXT NOT NULL,
    desired_version  INTEGER,
    updated_at       INTEGER NOT NULL
);

CREATE TABLE configurations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    target      TEXT NOT NULL,
    priority    INTEGER NOT NULL,
    desired     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
