-- Several replicas on one store: the replicas alive (a heartbeat each), and which replica runs
-- each unfinished task, until when (its lease, renewed while it runs). A task whose lease
-- lapsed lost its replica; one without a lease predates leases.
CREATE TABLE nodes (
    node_id      TEXT   PRIMARY KEY,
    node_url     TEXT,
    started_ms   BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);
ALTER TABLE tasks ADD COLUMN node_id TEXT;
ALTER TABLE tasks ADD COLUMN lease_until_ms BIGINT;
