-- Each run of a host holds a lease it renews while it runs; a
-- reservation names the run that made it, so that only a run whose lease
-- ran out (a dead host), or an earlier run of the same host name (a host
-- restarted), has its reservations aborted by another. Times are the
-- database's clock, so hosts' clocks may disagree.

CREATE TABLE host_leases (
    host        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    expires_ms  BIGINT NOT NULL
);

ALTER TABLE reservations ADD COLUMN host TEXT;
