-- Alert rules of each brand, their state per vehicle (the `for` timer and the open
-- alert, so both survive a restart), and the alerts with their lifecycle. An alert
-- keeps its rule's id and name: it stays readable after the rule is deleted.
CREATE TABLE alert_rules (
    id               TEXT PRIMARY KEY,
    brand_id         INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    condition        TEXT,
    for_s            REAL NOT NULL,
    clear_condition  TEXT,
    severity         TEXT NOT NULL,
    target           TEXT NOT NULL,
    enabled          INTEGER NOT NULL,
    builtin          TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX alert_rules_brand ON alert_rules (brand_id, created_at);

CREATE TABLE alert_states (
    rule_id        TEXT NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    vehicle_id     INTEGER NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    pending_since  INTEGER,
    alert_id       TEXT,
    evaluated_ts   INTEGER NOT NULL,
    PRIMARY KEY (vehicle_id, rule_id, key)
) WITHOUT ROWID;

CREATE TABLE alerts (
    id               TEXT PRIMARY KEY,
    rule_id          TEXT NOT NULL,
    rule_name        TEXT NOT NULL,
    brand_id         INTEGER NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
    vehicle_id       INTEGER NOT NULL REFERENCES vehicles(id) ON DELETE CASCADE,
    severity         TEXT NOT NULL,
    status           TEXT NOT NULL,
    key              TEXT NOT NULL,
    pending_since    INTEGER,
    raised_ts        INTEGER NOT NULL,
    acknowledged_at  INTEGER,
    acknowledged_by  TEXT,
    cleared_ts       INTEGER,
    alert_values     TEXT NOT NULL
);
CREATE INDEX alerts_brand ON alerts (brand_id, raised_ts);
CREATE INDEX alerts_vehicle ON alerts (vehicle_id, raised_ts);
CREATE INDEX alerts_rule ON alerts (rule_id, status);
