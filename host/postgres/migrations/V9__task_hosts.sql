-- The host run that started a running task, so that hosts take over only
-- a gone host's tasks (see `Ledger::host_gone`).

ALTER TABLE tasks ADD COLUMN host TEXT;
