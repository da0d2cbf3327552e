-- Webhooks: endpoints apps subscribed, and one delivery per endpoint and event, with
-- its retry state (retries survive a restart). brand_id NULL: an operator's endpoint
-- for every brand. A pending delivery is due at next_attempt_at; a sender that claims
-- it moves next_attempt_at to the end of its lease.
CREATE TABLE webhook_endpoints (
    id           TEXT PRIMARY KEY,
    brand_id     INTEGER REFERENCES brands(id) ON DELETE CASCADE,
    url          TEXT NOT NULL,
    event_types  TEXT NOT NULL,
    vins         TEXT NOT NULL,
    description  TEXT NOT NULL,
    secret       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_brand ON webhook_endpoints (brand_id, created_at);

CREATE TABLE webhook_deliveries (
    id                TEXT PRIMARY KEY,
    endpoint_id       TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id          INTEGER NOT NULL,
    event_type        TEXT NOT NULL,
    payload           TEXT NOT NULL,
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    next_attempt_at   INTEGER,
    retry_until       INTEGER NOT NULL,
    last_attempt_at   INTEGER,
    last_status_code  INTEGER,
    last_error        TEXT,
    completed_at      INTEGER,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
