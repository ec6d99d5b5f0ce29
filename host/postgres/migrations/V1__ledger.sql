-- The ledger: accounts, balances per asset, posted transfers.
-- Amounts are integers (BIGINT); a balance is its account's posted sum,
-- less what running calls hold.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    system      BOOLEAN NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE balances (
    account  TEXT NOT NULL REFERENCES accounts(id),
    asset    TEXT NOT NULL,
    posted   BIGINT NOT NULL DEFAULT 0,
    held     BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),
    PRIMARY KEY (account, asset)
);

-- Positions in the ledger's order, shared by transfers and usage records
-- (listings page by them).
CREATE SEQUENCE ledger_positions;

CREATE TABLE transfers (
    seq         BIGINT NOT NULL DEFAULT nextval('ledger_positions') UNIQUE,
    id          TEXT PRIMARY KEY,
    debit       TEXT NOT NULL REFERENCES accounts(id),
    credit      TEXT NOT NULL REFERENCES accounts(id),
    asset       TEXT NOT NULL,
    amount      BIGINT NOT NULL CHECK (amount > 0),
    kind        TEXT NOT NULL,
    memo        TEXT NOT NULL,
    invocation  TEXT,
    created_ms  BIGINT NOT NULL
);
CREATE INDEX transfers_debit ON transfers (debit, seq);
CREATE INDEX transfers_credit ON transfers (credit, seq);

INSERT INTO accounts (id, system, created_ms)
    VALUES ('@mint', TRUE, 0), ('@consumed', TRUE, 0), ('@burn', TRUE, 0), ('@pool', TRUE, 0);
