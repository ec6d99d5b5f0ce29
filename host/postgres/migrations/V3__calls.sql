-- What a call reserves and how it settles: its reservation, the holds it
-- places (price, fuel, the guest's transfers), the disk its writes hold
-- while it runs, its usage record, and the audit record of its admission
-- (written in the settlement's transaction).

CREATE TABLE reservations (
    invocation_id    TEXT PRIMARY KEY,
    artifact         TEXT NOT NULL,
    caller           TEXT NOT NULL,
    owner            TEXT NOT NULL,
    payer            TEXT NOT NULL,
    resource_policy  TEXT NOT NULL,
    sponsor_grant    TEXT,
    allocation       TEXT,
    created_ms       BIGINT NOT NULL,
    settled          BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX reservations_open ON reservations (invocation_id) WHERE NOT settled;

-- n: the order holds were placed in, which is the order they settle in.
CREATE TABLE holds (
    n              BIGINT GENERATED ALWAYS AS IDENTITY,
    id             TEXT PRIMARY KEY,
    invocation     TEXT NOT NULL,
    debit          TEXT NOT NULL REFERENCES accounts(id),
    credit         TEXT NOT NULL REFERENCES accounts(id),
    asset          TEXT NOT NULL,
    amount         BIGINT NOT NULL CHECK (amount > 0),
    kind           TEXT NOT NULL,
    memo           TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'posted', 'voided')),
    posted_amount  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX holds_by_invocation ON holds (invocation, n);

CREATE TABLE disk_holds (
    invocation  TEXT NOT NULL,
    payer       TEXT NOT NULL REFERENCES accounts(id),
    bytes       BIGINT NOT NULL CHECK (bytes > 0),
    PRIMARY KEY (invocation, payer)
);

CREATE TABLE usage_records (
    invocation_id      TEXT PRIMARY KEY,
    seq                BIGINT NOT NULL UNIQUE,
    artifact           TEXT NOT NULL,
    caller             TEXT NOT NULL,
    owner              TEXT NOT NULL,
    charged_to         TEXT NOT NULL,
    resource_policy    TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    fuel               BIGINT NOT NULL,
    memory_peak_bytes  BIGINT NOT NULL,
    disk_bytes         BIGINT NOT NULL,
    wall_time_ns       BIGINT NOT NULL,
    cpu_time_ns        BIGINT NOT NULL,
    cost_usd_micros    BIGINT NOT NULL,
    price_paid         BIGINT NOT NULL,
    output             BYTEA NOT NULL,
    error              TEXT,
    settled_ms         BIGINT NOT NULL
);
CREATE INDEX usage_by_time ON usage_records (settled_ms);
CREATE INDEX usage_by_caller ON usage_records (caller, seq);
CREATE INDEX usage_by_owner ON usage_records (owner, seq);
CREATE INDEX usage_by_payer ON usage_records (charged_to, seq);

CREATE TABLE audit (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    invocation  TEXT,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    target      TEXT NOT NULL,
    decision    TEXT NOT NULL,
    decided_by  TEXT,
    reason      TEXT,
    latency_us  BIGINT NOT NULL
);
CREATE INDEX audit_by_subject ON audit (subject);
