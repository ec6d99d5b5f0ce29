-- Archive files (fuelhost_store::archive): each one's length as of the
-- last move that committed lines to it. File names carry the database's
-- archive id and a tag of the host that writes them.
CREATE TABLE archive_files (
    file   TEXT PRIMARY KEY,
    bytes  BIGINT NOT NULL
);
