-- Circuit breakers, kept so that a breaker one host opened is open on
-- every host (and after a restart); failure counts stay each host's.

CREATE TABLE breakers (
    artifact       TEXT PRIMARY KEY,
    open_until_ms  BIGINT,
    times_opened   BIGINT NOT NULL
);
