-- Facts about this store itself; tasks, OAuth state and analytics get their own migrations.
CREATE TABLE director_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
