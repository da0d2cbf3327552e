-- Cards sent to cars (each key once per vehicle: a meeting's next-meeting card, its
-- leave-by reminder, its lateness, its change, its cancellation) and pre-conditioning
-- commands scheduled for meetings.
CREATE TABLE car_cards (
    vehicle_id   INTEGER NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    id           TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    meeting_id   TEXT,
    fingerprint  TEXT,
    card         TEXT NOT NULL,
    sent_at      INTEGER NOT NULL,
    PRIMARY KEY (vehicle_id, key)
) WITHOUT ROWID;
CREATE INDEX car_cards_sent ON car_cards (vehicle_id, sent_at);

CREATE TABLE preconditions (
    id           TEXT PRIMARY KEY,
    vehicle_id   INTEGER NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    meeting_id   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    params       TEXT NOT NULL,
    due_at       INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    status       TEXT NOT NULL,
    command_id   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (vehicle_id, meeting_id, kind)
);
CREATE INDEX preconditions_due ON preconditions (vehicle_id, due_at);
