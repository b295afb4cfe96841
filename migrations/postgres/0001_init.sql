-- Facts about this store itself; tasks, OAuth state and analytics get their own migrations.
-- Every integer is BIGINT: the code binds and reads i64 (milliseconds since the epoch do not fit
-- PostgreSQL's 32-bit INTEGER), and flags stay 0/1 integers so the same SQL runs on SQLite.
CREATE TABLE director_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
