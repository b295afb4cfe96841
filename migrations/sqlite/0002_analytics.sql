-- One row per tool call, prompt get and resource read: who, what, how long, whether it failed,
-- how many bytes. Never arguments or results.
CREATE TABLE analytics (
    id          INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    server      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    profile     TEXT    NOT NULL,
    project     TEXT    NOT NULL,
    duration_ms REAL    NOT NULL,
    ok          INTEGER NOT NULL,
    bytes_in    INTEGER NOT NULL,
    bytes_out   INTEGER NOT NULL
);
CREATE INDEX analytics_at ON analytics (at_ms);
