-- The host's stores beside the ledger, the same tables and columns as
-- SQLite's (`fuelhost-sqlite`'s schema.rs), so one SQL serves both
-- (`fuelhost-store`). Integers are BIGINT, flags BIGINT 0/1, blobs BYTEA.

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE artifacts (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    digest      TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    size        BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- Component bytes by their digest, so that any host can load any
-- artifact or plugin (each keeps its own compiled code).
CREATE TABLE components (
    digest      TEXT PRIMARY KEY,
    bytes       BYTEA NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE policy_plugins (
    name        TEXT PRIMARY KEY,
    position    BIGINT NOT NULL,
    digest      TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE agent_scopes (
    agent      TEXT PRIMARY KEY REFERENCES accounts(id),
    tenant     TEXT,
    workspace  TEXT
);

CREATE TABLE api_keys (
    hash        TEXT PRIMARY KEY,
    agent       TEXT,
    admin       BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL,
    -- 0 while the key is live; else when it was revoked, Unix ms.
    revoked     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_admin ON api_keys (admin, revoked) WHERE admin = 1;

CREATE TABLE pending_actions (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    target       TEXT NOT NULL,
    approvers    TEXT NOT NULL,
    required_by  TEXT,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
    resolved_by  TEXT,
    resolved_ms  BIGINT,
    reason       TEXT,
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    input        BYTEA NOT NULL,
    fuel_limit   BIGINT,
    payload      TEXT
);

CREATE TABLE agent_heartbeats (
    agent   TEXT PRIMARY KEY REFERENCES accounts(id),
    at_ms   BIGINT NOT NULL,
    ttl_ms  BIGINT NOT NULL,
    status  TEXT
);

CREATE TABLE tasks (
    id            TEXT PRIMARY KEY,
    submitter     TEXT NOT NULL,
    artifact      TEXT NOT NULL,
    input         BYTEA NOT NULL,
    priority      TEXT NOT NULL,
    fuel_limit    BIGINT,
    state         TEXT NOT NULL
                  CHECK (state IN ('pending', 'running', 'completed', 'failed', 'cancelled', 'timed_out')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    max_attempts  BIGINT NOT NULL DEFAULT 1,
    backoff_ms    BIGINT NOT NULL DEFAULT 1000,
    not_before_ms BIGINT,
    timeout_ms    BIGINT,
    capability    TEXT,
    route_mode    TEXT,
    max_price     BIGINT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    invocation_id TEXT,
    error         TEXT,
    created_ms    BIGINT NOT NULL,
    started_ms    BIGINT,
    finished_ms   BIGINT
);
CREATE INDEX tasks_open ON tasks (state) WHERE state IN ('pending', 'running');

CREATE TABLE task_dependencies (
    task        TEXT NOT NULL,
    depends_on  TEXT NOT NULL,
    PRIMARY KEY (task, depends_on)
);
CREATE INDEX task_dependants ON task_dependencies (depends_on);

-- Every transfer, for SQL readers, under the name SQLite's schema gives
-- it (there, calls' charges live in their usage records; here every
-- charge is a `transfers` row).
CREATE VIEW ledger_transfers AS
    SELECT seq, id, debit, credit, asset, amount, kind, memo, invocation, created_ms FROM transfers;
