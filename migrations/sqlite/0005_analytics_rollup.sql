-- Analytics as 10-second rollups per (kind, server, name, profile, project) instead of a row per
-- call: storage grows with the tools in use and with time, not with traffic. `latency` is a
-- sparse histogram, `bucket:count;…`, bucket i holding [2^(i/8), 2^((i+1)/8)) µs. Rows recorded
-- per call by earlier versions are not carried over.
CREATE TABLE analytics_rollup (
    id        INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    server    TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    profile   TEXT    NOT NULL,
    project   TEXT    NOT NULL,
    calls     INTEGER NOT NULL,
    errors    INTEGER NOT NULL,
    bytes_in  INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    latency   TEXT    NOT NULL
);
CREATE INDEX analytics_rollup_at ON analytics_rollup (at_ms);
DROP TABLE analytics;
