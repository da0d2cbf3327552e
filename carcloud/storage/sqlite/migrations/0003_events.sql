-- Domain events: the transactional outbox. A state change and its events commit in one
-- transaction; the relay publishes unrelayed events to the JetStream stream EVENTS with
-- `evt-{id}` as the message id, then sets relayed_at. The id orders events for readers.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    type        TEXT NOT NULL,
    brand       TEXT,
    vin         TEXT,
    at          INTEGER NOT NULL,
    data        TEXT NOT NULL,
    relayed_at  INTEGER
);
CREATE INDEX events_unrelayed ON events (id) WHERE relayed_at IS NULL;
CREATE INDEX events_brand ON events (brand, id);
CREATE INDEX events_vin ON events (vin, id);
CREATE INDEX events_at ON events (at);
