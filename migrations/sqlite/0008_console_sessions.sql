-- Web console sign-ins: the cookie's token is known only by its SHA-256 (a stolen database
-- signs nobody in); a session ends when it expires or its user signs out.
CREATE TABLE console_sessions (
    token_sha256 TEXT   PRIMARY KEY,
    username     TEXT   NOT NULL,
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL
);
