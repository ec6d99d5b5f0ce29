-- Sponsor grants (who pays another agent's calls, up to a limit) and UBI
-- distributions (one row per distribution id, its shares are transfers).

CREATE TABLE sponsor_grants (
    id            TEXT PRIMARY KEY,
    sponsor       TEXT NOT NULL REFERENCES accounts(id),
    beneficiary   TEXT NOT NULL REFERENCES accounts(id),
    fuel_limit    BIGINT NOT NULL CHECK (fuel_limit >= 0),
    fuel_spent    BIGINT NOT NULL DEFAULT 0,
    fuel_held     BIGINT NOT NULL DEFAULT 0,
    disk_limit    BIGINT NOT NULL CHECK (disk_limit >= 0),
    disk_spent    BIGINT NOT NULL DEFAULT 0 CHECK (disk_spent <= disk_limit),
    expires_ms    BIGINT,
    artifacts     TEXT NOT NULL,
    revoked       BOOLEAN NOT NULL DEFAULT FALSE,
    created_ms    BIGINT NOT NULL,
    CHECK (fuel_spent + fuel_held <= fuel_limit)
);
CREATE INDEX sponsor_grants_by_beneficiary ON sponsor_grants (beneficiary, created_ms, id);

CREATE TABLE distributions (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    recipients  BIGINT NOT NULL,
    per_agent   BIGINT NOT NULL,
    remainder   BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL
);
