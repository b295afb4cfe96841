//! The authorization server's state in the store: clients, pending authorization requests,
//! codes and tokens. Every secret is looked up by its SHA-256; the clear value exists only in
//! the response that hands it out.

use crate::analytics::now_ms;
use crate::secrets::sha256_hex;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// What an external sign-in told us about the subject, kept with its grants so profile rules
/// can use it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl Claims {
    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn from_json(s: Option<String>) -> Self {
        s.and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub auth_method: String,
}

pub async fn insert_client(store: &Store, c: &Client, scope: Option<&str>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO oauth_clients (client_id, client_secret_hash, client_name, redirect_uris, grant_types, auth_method, scope, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&c.client_id)
    .bind(&c.secret_hash)
    .bind(&c.name)
    .bind(serde_json::to_string(&c.redirect_uris).unwrap_or_default())
    .bind(serde_json::to_string(&c.grant_types).unwrap_or_default())
    .bind(&c.auth_method)
    .bind(scope)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Records (or refreshes) a client described by its metadata document.
pub async fn upsert_client(store: &Store, c: &Client) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO oauth_clients (client_id, client_secret_hash, client_name, redirect_uris, grant_types, auth_method, scope, created_ms)
         VALUES ($1, NULL, $2, $3, $4, 'none', NULL, $5)
         ON CONFLICT (client_id) DO UPDATE SET client_name = excluded.client_name,
             redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types",
    )
    .bind(&c.client_id)
    .bind(&c.name)
    .bind(serde_json::to_string(&c.redirect_uris).unwrap_or_default())
    .bind(serde_json::to_string(&c.grant_types).unwrap_or_default())
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(())
}

pub async fn client(store: &Store, client_id: &str) -> sqlx::Result<Option<Client>> {
    let row = sqlx::query(
        "SELECT client_id, client_secret_hash, client_name, redirect_uris, grant_types, auth_method
         FROM oauth_clients WHERE client_id = $1",
    )
    .bind(client_id)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|r| Client {
        client_id: r.get(0),
        secret_hash: r.get(1),
        name: r.get(2),
        redirect_uris: serde_json::from_str(&r.get::<String, _>(3)).unwrap_or_default(),
        grant_types: serde_json::from_str(&r.get::<String, _>(4)).unwrap_or_default(),
        auth_method: r.get(5),
    }))
}

/// An authorization request between GET /authorize and the consent decision.
#[derive(Clone, Debug, Default)]
pub struct Pending {
    pub request_id: String,
    pub csrf_hash: String,
    pub browser_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scope: String,
    pub resource: String,
    pub code_challenge: String,
    /// Set once an external sign-in succeeded.
    pub subject: Option<String>,
    pub claims: Claims,
    /// The provider round trip's state, nonce and PKCE verifier (JSON).
    pub oidc_state: Option<String>,
    pub expires_ms: i64,
}

pub async fn insert_pending(store: &Store, p: &Pending) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO oauth_requests (request_id, csrf_hash, browser_hash, client_id, redirect_uri, state, scope, resource, code_challenge, oidc_state, expires_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&p.request_id)
    .bind(&p.csrf_hash)
    .bind(&p.browser_hash)
    .bind(&p.client_id)
    .bind(&p.redirect_uri)
    .bind(&p.state)
    .bind(&p.scope)
    .bind(&p.resource)
    .bind(&p.code_challenge)
    .bind(&p.oidc_state)
    .bind(p.expires_ms)
    .execute(store.pool())
    .await?;
    Ok(())
}

const PENDING_COLUMNS: &str = "request_id, csrf_hash, browser_hash, client_id, redirect_uri, state, scope, resource, code_challenge, subject, claims, oidc_state, expires_ms";

fn pending_from(r: &sqlx::any::AnyRow) -> Pending {
    Pending {
        request_id: r.get(0),
        csrf_hash: r.get(1),
        browser_hash: r.get(2),
        client_id: r.get(3),
        redirect_uri: r.get(4),
        state: r.get(5),
        scope: r.get(6),
        resource: r.get(7),
        code_challenge: r.get(8),
        subject: r.get(9),
        claims: Claims::from_json(r.get(10)),
        oidc_state: r.get(11),
        expires_ms: r.get(12),
    }
}

/// A pending request that has not expired.
pub async fn pending(store: &Store, request_id: &str) -> sqlx::Result<Option<Pending>> {
    let row = sqlx::query(&format!(
        "SELECT {PENDING_COLUMNS} FROM oauth_requests WHERE request_id = $1 AND expires_ms > $2"
    ))
    .bind(request_id)
    .bind(now_ms())
    .fetch_optional(store.pool())
    .await?;
    Ok(row.as_ref().map(pending_from))
}

/// Records the external sign-in's subject on the pending request (once).
pub async fn sign_in(
    store: &Store,
    request_id: &str,
    subject: &str,
    claims: &Claims,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE oauth_requests SET subject = $1, claims = $2, oidc_state = NULL
         WHERE request_id = $3 AND subject IS NULL AND expires_ms > $4",
    )
    .bind(subject)
    .bind(claims.to_json())
    .bind(request_id)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Counts a wrong password against the pending request; after `max` it is gone (the user starts
/// again from the client), so a request cannot be used to guess passwords.
pub async fn sign_in_failed(store: &Store, request_id: &str, max: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE oauth_requests SET failures = failures + 1 WHERE request_id = $1")
        .bind(request_id)
        .execute(store.pool())
        .await?;
    sqlx::query("DELETE FROM oauth_requests WHERE request_id = $1 AND failures >= $2")
        .bind(request_id)
        .bind(max)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Removes and returns the pending request: a consent decision is taken once.
pub async fn take_pending(store: &Store, request_id: &str) -> sqlx::Result<Option<Pending>> {
    let row = sqlx::query(&format!(
        "DELETE FROM oauth_requests WHERE request_id = $1 AND expires_ms > $2 RETURNING {PENDING_COLUMNS}"
    ))
    .bind(request_id)
    .bind(now_ms())
    .fetch_optional(store.pool())
    .await?;
    Ok(row.as_ref().map(pending_from))
}

/// An authorization code's binding.
#[derive(Clone, Debug)]
pub struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub resource: String,
    pub scope: String,
    pub subject: String,
    pub claims: Claims,
    pub family: String,
    pub expires_ms: i64,
}

pub async fn insert_code(store: &Store, code: &str, c: &Code) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO oauth_codes (code_hash, client_id, redirect_uri, code_challenge, resource, scope, subject, claims, family, expires_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(sha256_hex(code))
    .bind(&c.client_id)
    .bind(&c.redirect_uri)
    .bind(&c.code_challenge)
    .bind(&c.resource)
    .bind(&c.scope)
    .bind(&c.subject)
    .bind(c.claims.to_json())
    .bind(&c.family)
    .bind(c.expires_ms)
    .execute(store.pool())
    .await?;
    Ok(())
}

pub enum Redeemed {
    Fresh(Box<Code>),
    /// The code was redeemed before: the tokens issued for it are now revoked (OAuth 2.1
    /// §4.1.3).
    Replayed,
    Unknown,
}

/// Marks the code used and returns its binding, atomically: of two concurrent redemptions
/// only one wins.
pub async fn redeem_code(store: &Store, code: &str) -> sqlx::Result<Redeemed> {
    let hash = sha256_hex(code);
    let row = sqlx::query(
        "UPDATE oauth_codes SET used = 1 WHERE code_hash = $1 AND used = 0
         RETURNING client_id, redirect_uri, code_challenge, resource, scope, subject, claims, family, expires_ms",
    )
    .bind(&hash)
    .fetch_optional(store.pool())
    .await?;
    if let Some(r) = row {
        return Ok(Redeemed::Fresh(Box::new(Code {
            client_id: r.get(0),
            redirect_uri: r.get(1),
            code_challenge: r.get(2),
            resource: r.get(3),
            scope: r.get(4),
            subject: r.get(5),
            claims: Claims::from_json(r.get(6)),
            family: r.get(7),
            expires_ms: r.get(8),
        })));
    }
    let family: Option<String> =
        sqlx::query_scalar("SELECT family FROM oauth_codes WHERE code_hash = $1")
            .bind(&hash)
            .fetch_optional(store.pool())
            .await?;
    match family {
        Some(family) => {
            // Marked, so tokens this code's first exchange is still inserting are revoked too
            // (see `family_revoked`).
            sqlx::query("UPDATE oauth_codes SET used = 2 WHERE code_hash = $1")
                .bind(&hash)
                .execute(store.pool())
                .await?;
            revoke_family(store, &family).await?;
            Ok(Redeemed::Replayed)
        }
        None => Ok(Redeemed::Unknown),
    }
}

/// Whether the grant was revoked (a token of it, or its code replayed). Checked after new
/// tokens are stored: a replay racing the exchange cannot leave them alive.
pub async fn family_revoked(store: &Store, family: &str) -> sqlx::Result<bool> {
    let revoked: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM oauth_tokens WHERE family = $1 AND revoked = 1
         UNION ALL SELECT 1 FROM oauth_codes WHERE family = $1 AND used = 2 LIMIT 1",
    )
    .bind(family)
    .fetch_optional(store.pool())
    .await?;
    Ok(revoked.is_some())
}

pub const ACCESS: &str = "access";
pub const REFRESH: &str = "refresh";

/// A token's grant: who, for which client, scope and audience.
#[derive(Clone, Debug)]
pub struct Grant {
    pub family: String,
    pub client_id: String,
    pub subject: String,
    pub claims: Claims,
    pub scope: String,
    pub resource: String,
    pub expires_ms: i64,
}

pub async fn insert_token(store: &Store, token: &str, kind: &str, g: &Grant) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO oauth_tokens (token_hash, kind, family, client_id, subject, claims, scope, resource, expires_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(sha256_hex(token))
    .bind(kind)
    .bind(&g.family)
    .bind(&g.client_id)
    .bind(&g.subject)
    .bind(g.claims.to_json())
    .bind(&g.scope)
    .bind(&g.resource)
    .bind(g.expires_ms)
    .execute(store.pool())
    .await?;
    Ok(())
}

const GRANT_COLUMNS: &str = "family, client_id, subject, claims, scope, resource, expires_ms";

fn grant_from(r: &sqlx::any::AnyRow) -> Grant {
    Grant {
        family: r.get(0),
        client_id: r.get(1),
        subject: r.get(2),
        claims: Claims::from_json(r.get(3)),
        scope: r.get(4),
        resource: r.get(5),
        expires_ms: r.get(6),
    }
}

/// A live access token's grant (not expired, not revoked).
/// The grant of a live access token, by the token's SHA-256.
pub async fn access(store: &Store, token_hash: &str) -> sqlx::Result<Option<Grant>> {
    let row = sqlx::query(&format!(
        "SELECT {GRANT_COLUMNS} FROM oauth_tokens
         WHERE token_hash = $1 AND kind = 'access' AND revoked = 0 AND expires_ms > $2"
    ))
    .bind(token_hash)
    .bind(now_ms())
    .fetch_optional(store.pool())
    .await?;
    Ok(row.as_ref().map(grant_from))
}

pub enum Rotated {
    Fresh(Grant),
    /// A refresh token presented after it was rotated: its family is revoked.
    Replayed,
    /// Unknown, expired or revoked.
    Invalid,
}

/// Retires a refresh token and returns its grant; presenting it again revokes every token
/// of its family (OAuth 2.1 §4.3.1: rotation detects a stolen refresh token).
pub async fn rotate_refresh(store: &Store, token: &str) -> sqlx::Result<Rotated> {
    let hash = sha256_hex(token);
    let row = sqlx::query(&format!(
        "UPDATE oauth_tokens SET rotated = 1
         WHERE token_hash = $1 AND kind = 'refresh' AND rotated = 0 AND revoked = 0 AND expires_ms > $2
         RETURNING {GRANT_COLUMNS}"
    ))
    .bind(&hash)
    .bind(now_ms())
    .fetch_optional(store.pool())
    .await?;
    if let Some(r) = row {
        return Ok(Rotated::Fresh(grant_from(&r)));
    }
    let family: Option<String> = sqlx::query_scalar(
        "SELECT family FROM oauth_tokens WHERE token_hash = $1 AND kind = 'refresh' AND rotated = 1",
    )
    .bind(&hash)
    .fetch_optional(store.pool())
    .await?;
    match family {
        Some(family) => {
            revoke_family(store, &family).await?;
            Ok(Rotated::Replayed)
        }
        None => Ok(Rotated::Invalid),
    }
}

pub async fn revoke_family(store: &Store, family: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE oauth_tokens SET revoked = 1 WHERE family = $1")
        .bind(family)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Drops what can no longer be used. Used codes stay ten minutes past their expiry so a late
/// replay still revokes its tokens; rotated refresh tokens stay until they expire, for the same
/// reason.
pub async fn purge_expired(store: &Store) -> sqlx::Result<()> {
    let now = now_ms();
    for (table, grace_ms) in [
        ("oauth_requests", 0),
        ("oauth_codes", 600_000),
        ("oauth_tokens", 0),
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE expires_ms <= $1"))
            .bind(now - grace_ms)
            .execute(store.pool())
            .await?;
    }
    Ok(())
}

/// A registered client as operators see it, with the grants it holds in force.
pub struct Registered {
    pub client_id: String,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub created_ms: i64,
    pub grants: i64,
}

/// Every registered client, newest first.
pub async fn clients(store: &Store) -> sqlx::Result<Vec<Registered>> {
    let rows = sqlx::query(
        "SELECT c.client_id, c.client_name, c.redirect_uris, c.created_ms,
                (SELECT COUNT(DISTINCT t.family) FROM oauth_tokens t
                 WHERE t.client_id = c.client_id AND t.revoked = 0 AND t.expires_ms > $1)
         FROM oauth_clients c ORDER BY c.created_ms DESC, c.client_id",
    )
    .bind(now_ms())
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Registered {
            client_id: r.get(0),
            name: r.get(1),
            redirect_uris: serde_json::from_str(&r.get::<String, _>(2)).unwrap_or_default(),
            created_ms: r.get(3),
            grants: r.get(4),
        })
        .collect())
}

/// Forgets a client: its grants revoked, its pending requests and codes gone. `None`: no such
/// client.
pub async fn delete_client(store: &Store, client_id: &str) -> sqlx::Result<Option<Registered>> {
    let Some(client) = clients(store)
        .await?
        .into_iter()
        .find(|c| c.client_id == client_id)
    else {
        return Ok(None);
    };
    let mut tx = store.pool().begin().await?;
    sqlx::query("UPDATE oauth_tokens SET revoked = 1 WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
    for table in ["oauth_codes", "oauth_requests", "oauth_clients"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE client_id = $1"))
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Some(client))
}

/// A grant in force: one consent's token family with a token still usable.
pub struct InForce {
    pub family: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub subject: String,
    pub scope: String,
    /// When its last token expires.
    pub expires_ms: i64,
}

/// The grants in force (`family`: only that one), newest expiry first.
pub async fn in_force(store: &Store, family: Option<&str>) -> sqlx::Result<Vec<InForce>> {
    let rows = sqlx::query(
        "SELECT t.family, t.client_id, MAX(c.client_name), MAX(t.subject), MAX(t.scope), MAX(t.expires_ms)
         FROM oauth_tokens t LEFT JOIN oauth_clients c ON c.client_id = t.client_id
         WHERE t.revoked = 0 AND t.expires_ms > $1 AND ($2 = '' OR t.family = $2)
         GROUP BY t.family, t.client_id ORDER BY MAX(t.expires_ms) DESC, t.family",
    )
    .bind(now_ms())
    .bind(family.unwrap_or(""))
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| InForce {
            family: r.get(0),
            client_id: r.get(1),
            client_name: r.get(2),
            subject: r.get(3),
            scope: r.get(4),
            expires_ms: r.get(5),
        })
        .collect())
}
