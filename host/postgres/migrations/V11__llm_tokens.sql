-- Language-model tokens, a fourth asset (`llm_tokens`): what running
-- calls' requests hold of their payers' budgets (released as each call
-- settles, which charges what its requests used), what each usage record
-- was charged, and what each payer was charged per hour.

CREATE TABLE llm_holds (
    invocation  TEXT NOT NULL,
    payer       TEXT NOT NULL REFERENCES accounts(id),
    tokens      BIGINT NOT NULL CHECK (tokens > 0),
    PRIMARY KEY (invocation, payer)
);

ALTER TABLE usage_records ADD COLUMN llm_tokens BIGINT NOT NULL DEFAULT 0;

ALTER TABLE consumer_hours ADD COLUMN llm_tokens BIGINT NOT NULL DEFAULT 0;
