-- Drivers of a brand, the current driver of a vehicle, the drivers' calendar accounts
-- and the calendar objects last synced from each (one VCALENDAR per UID, with its ETag).
CREATE TABLE drivers (
    id                     TEXT PRIMARY KEY,
    brand_id               INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    timezone               TEXT NOT NULL,
    places                 TEXT NOT NULL,
    reminder_lead_min      INTEGER NOT NULL,
    buffer_min             INTEGER NOT NULL,
    precondition           INTEGER NOT NULL,
    precondition_target_c  REAL NOT NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX drivers_brand ON drivers (brand_id, name);

CREATE TABLE vehicle_drivers (
    vehicle_id  INTEGER PRIMARY KEY REFERENCES vehicles(id) ON DELETE CASCADE,
    driver_id   TEXT NOT NULL REFERENCES drivers(id) ON DELETE CASCADE,
    set_at      INTEGER NOT NULL
);
CREATE INDEX vehicle_drivers_driver ON vehicle_drivers (driver_id);

CREATE TABLE calendar_accounts (
    id               TEXT PRIMARY KEY,
    driver_id        TEXT NOT NULL REFERENCES drivers(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    name             TEXT NOT NULL,
    url              TEXT NOT NULL,
    username         TEXT,
    owner_email      TEXT,
    secret           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    status           TEXT NOT NULL,
    error            TEXT,
    failures         INTEGER NOT NULL,
    last_attempt_at  INTEGER,
    last_success_at  INTEGER,
    next_sync_at     INTEGER NOT NULL,
    sync_token       TEXT,
    report           TEXT
);
CREATE INDEX calendar_accounts_driver ON calendar_accounts (driver_id, created_at);
CREATE INDEX calendar_accounts_due ON calendar_accounts (next_sync_at);

CREATE TABLE calendar_items (
    account_id  TEXT NOT NULL REFERENCES calendar_accounts(id) ON DELETE CASCADE,
    href        TEXT NOT NULL,
    etag        TEXT NOT NULL,
    ics         TEXT NOT NULL,
    PRIMARY KEY (account_id, href)
) WITHOUT ROWID;
