-- Each host holds a lease it renews while it runs; a reservation names
-- the host that made it, so that only a host whose lease ran out (a dead
-- host) has its reservations aborted by another.

CREATE TABLE host_leases (
    host        TEXT PRIMARY KEY,
    expires_ms  BIGINT NOT NULL
);

ALTER TABLE reservations ADD COLUMN host TEXT;
