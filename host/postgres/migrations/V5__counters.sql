-- Statistics kept as records settle, so that they outlive archiving and
-- are never computed by scanning the records: totals per outcome, and
-- what each payer was charged per hour.

CREATE TABLE usage_totals (
    outcome          TEXT PRIMARY KEY,
    records          BIGINT NOT NULL,
    fuel             BIGINT NOT NULL,
    cost_usd_micros  BIGINT NOT NULL
);

CREATE TABLE consumer_hours (
    hour             BIGINT NOT NULL,
    agent            TEXT NOT NULL,
    invocations      BIGINT NOT NULL,
    fuel             BIGINT NOT NULL,
    disk_bytes       BIGINT NOT NULL,
    cost_usd_micros  BIGINT NOT NULL,
    PRIMARY KEY (hour, agent)
);
