-- Async tasks: their state, and once terminal the exact outcome of the underlying request (a
-- JSON-RPC result or error object), so results survive disconnects and restarts.
CREATE TABLE tasks (
    task_id          TEXT   PRIMARY KEY,
    owner            TEXT   NOT NULL,
    status           TEXT   NOT NULL,
    status_message   TEXT,
    created_ms       BIGINT NOT NULL,
    updated_ms       BIGINT NOT NULL,
    ttl_ms           BIGINT,
    poll_interval_ms BIGINT NOT NULL,
    outcome          TEXT,
    outcome_is_error BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tasks_owner ON tasks (owner, created_ms);
