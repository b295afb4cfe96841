-- Web console sign-ins through the OpenID Connect provider, between the redirect to it and
-- its answer: the state and the browser binding are known only by their SHA-256; the PKCE
-- verifier and nonce (the round trip) are needed once, at the callback.
CREATE TABLE console_sign_ins (
    state_sha256   TEXT   PRIMARY KEY,
    browser_sha256 TEXT   NOT NULL,
    round_trip     TEXT   NOT NULL,
    expires_ms     BIGINT NOT NULL
);
