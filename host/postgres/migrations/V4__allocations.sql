-- Allocations (quotas per period on top of budgets), their quotas' use,
-- the alerts they raised (one per allocation, kind and period), and usage
-- reported from outside the host, recorded once by its id.

CREATE TABLE allocations (
    id             TEXT PRIMARY KEY,
    agent          TEXT NOT NULL REFERENCES accounts(id),
    status         TEXT NOT NULL,
    priority       SMALLINT NOT NULL,
    request        TEXT NOT NULL,
    period_ms      BIGINT,
    rollover       TEXT,
    duration_ms    BIGINT,
    soft_pct       SMALLINT NOT NULL,
    hard_pct       SMALLINT NOT NULL,
    activated_ms   BIGINT,
    expires_ms     BIGINT,
    period_index   BIGINT NOT NULL DEFAULT 0,
    revoke_reason  TEXT,
    created_ms     BIGINT NOT NULL
);
CREATE INDEX allocations_by_agent ON allocations (agent);

CREATE TABLE allocation_quotas (
    allocation  TEXT NOT NULL REFERENCES allocations(id),
    resource    TEXT NOT NULL,
    quota       BIGINT NOT NULL,
    carried     BIGINT NOT NULL DEFAULT 0,
    used        BIGINT NOT NULL DEFAULT 0,
    held        BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),
    PRIMARY KEY (allocation, resource)
);

CREATE TABLE alerts (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    allocation    TEXT NOT NULL,
    agent         TEXT NOT NULL,
    resource      TEXT,
    kind          TEXT NOT NULL,
    period_index  BIGINT NOT NULL,
    percent       BIGINT NOT NULL,
    at_ms         BIGINT NOT NULL,
    UNIQUE (allocation, kind, period_index)
);

CREATE TABLE external_usage (
    id          TEXT PRIMARY KEY,
    agent       TEXT NOT NULL,
    resource    TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    allocation  TEXT,
    at_ms       BIGINT NOT NULL
);
