-- carcloud's audio rooms (on the media server), their join invites (token hashes only)
-- and participants, and the calls sent to cars (join actions and what the car reported).
CREATE TABLE rooms (
    id                TEXT PRIMARY KEY,
    brand_id          INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    max_participants  INTEGER NOT NULL,
    status            TEXT NOT NULL,
    pin_hash          TEXT,
    created_at        INTEGER NOT NULL,
    empty_since       INTEGER,
    closed_at         INTEGER
);
CREATE INDEX rooms_brand ON rooms (brand_id, status);
CREATE INDEX rooms_empty ON rooms (status, empty_since);

CREATE TABLE room_invites (
    id          TEXT PRIMARY KEY,
    room_id     TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    display     TEXT NOT NULL,
    vin         TEXT,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE room_participants (
    id            TEXT PRIMARY KEY,
    room_id       TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    invite_id     TEXT NOT NULL REFERENCES room_invites(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    display       TEXT NOT NULL,
    vin           TEXT,
    media_id      TEXT NOT NULL,
    media_handle  INTEGER NOT NULL,
    joined_at     INTEGER NOT NULL,
    left_at       INTEGER
);
CREATE INDEX room_participants_room ON room_participants (room_id, left_at);
CREATE INDEX room_participants_invite ON room_participants (invite_id, joined_at);
CREATE INDEX room_participants_handle ON room_participants (media_handle);

CREATE TABLE calls (
    id          TEXT PRIMARY KEY,
    vehicle_id  INTEGER NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    title       TEXT NOT NULL,
    url         TEXT,
    tel         TEXT,
    provider    TEXT,
    event_id    TEXT,
    room_id     TEXT,
    command_id  TEXT,
    reason      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    joined_at   INTEGER,
    ended_at    INTEGER
);
CREATE INDEX calls_vehicle ON calls (vehicle_id, created_at);
