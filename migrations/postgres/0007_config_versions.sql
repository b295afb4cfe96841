-- With several replicas the configuration lives in the store: every change a new version (its
-- TOML, `${VAR}` unexpanded), which every replica applies.
CREATE TABLE config_versions (
    version    BIGINT PRIMARY KEY,
    toml       TEXT   NOT NULL,
    written_ms BIGINT NOT NULL
);
