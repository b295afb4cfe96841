-- OAuth 2.1 authorization server state. Secrets (client secrets, codes, tokens, CSRF and
-- browser-binding values) are stored only as SHA-256 hashes; what a client presents is hashed
-- and looked up.

-- RFC 7591 dynamically registered clients.
CREATE TABLE oauth_clients (
    client_id          TEXT    PRIMARY KEY,
    client_secret_hash TEXT,
    client_name        TEXT,
    redirect_uris      TEXT    NOT NULL,  -- JSON array, matched exactly
    grant_types        TEXT    NOT NULL,  -- JSON array
    auth_method        TEXT    NOT NULL,  -- none | client_secret_post | client_secret_basic
    scope              TEXT,
    created_ms         BIGINT  NOT NULL
);

-- A pending authorization request, between GET /authorize and the consent decision.
CREATE TABLE oauth_requests (
    request_id     TEXT    PRIMARY KEY,
    csrf_hash      TEXT    NOT NULL,
    browser_hash   TEXT    NOT NULL,  -- hash of the cookie set on the browser that began it
    client_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    state          TEXT,
    scope          TEXT    NOT NULL,
    resource       TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    subject        TEXT,              -- set once an external sign-in succeeded
    claims         TEXT,              -- JSON: email, groups of that sign-in
    oidc_state     TEXT,              -- JSON: state, nonce, PKCE verifier of the provider round trip
    failures       BIGINT  NOT NULL DEFAULT 0,  -- wrong passwords; the request ends after a few
    expires_ms     BIGINT  NOT NULL
);

-- Authorization codes: single-use, short-lived, bound to client, redirect URI, PKCE and resource.
CREATE TABLE oauth_codes (
    code_hash      TEXT    PRIMARY KEY,
    client_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    resource       TEXT    NOT NULL,
    scope          TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    claims         TEXT,
    family         TEXT    NOT NULL,  -- the token family its exchange starts
    used           BIGINT  NOT NULL DEFAULT 0,
    expires_ms     BIGINT  NOT NULL
);

-- Access and refresh tokens. A family is one grant: every token rotated from the same code.
-- Presenting a rotated refresh token again revokes the whole family.
CREATE TABLE oauth_tokens (
    token_hash TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,  -- access | refresh
    family     TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    claims     TEXT,
    scope      TEXT    NOT NULL,
    resource   TEXT    NOT NULL,  -- the audience: a canonical URI of this director
    rotated    BIGINT  NOT NULL DEFAULT 0,
    revoked    BIGINT  NOT NULL DEFAULT 0,
    expires_ms BIGINT  NOT NULL
);
CREATE INDEX oauth_tokens_family ON oauth_tokens (family);
