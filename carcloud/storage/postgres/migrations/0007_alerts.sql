-- Alert rules of each brand, their state per vehicle (the `for` timer and the open
-- alert, so both survive a restart), and the alerts with their lifecycle. An alert
-- keeps its rule's id and name: it stays readable after the rule is deleted.
CREATE TABLE alert_rules (
    id               TEXT PRIMARY KEY,
    brand_id         BIGINT NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    condition        TEXT,
    for_s            DOUBLE PRECISION NOT NULL,
    clear_condition  TEXT,
    severity         TEXT NOT NULL,
    target           TEXT NOT NULL,
    enabled          BOOLEAN NOT NULL,
    builtin          TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX alert_rules_brand ON alert_rules (brand_id, created_at);

CREATE TABLE alert_states (
    rule_id        TEXT NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    vehicle_id     BIGINT NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    pending_since  BIGINT,
    alert_id       TEXT,
    evaluated_ts   BIGINT NOT NULL,
    PRIMARY KEY (vehicle_id, rule_id, key)
);

CREATE TABLE alerts (
    id               TEXT PRIMARY KEY,
    rule_id          TEXT NOT NULL,
    rule_name        TEXT NOT NULL,
    brand_id         BIGINT NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    vehicle_id       BIGINT NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    severity         TEXT NOT NULL,
    status           TEXT NOT NULL,
    key              TEXT NOT NULL,
    pending_since    BIGINT,
    raised_ts        BIGINT NOT NULL,
    acknowledged_at  BIGINT,
    acknowledged_by  TEXT,
    cleared_ts       BIGINT,
    alert_values     TEXT NOT NULL
);
CREATE INDEX alerts_brand ON alerts (brand_id, raised_ts);
CREATE INDEX alerts_vehicle ON alerts (vehicle_id, raised_ts);
CREATE INDEX alerts_rule ON alerts (rule_id, status);
