//! RFC 7591 dynamic client registration. Redirect URIs must be https or loopback http and are
//! matched exactly later; a confidential client's secret is returned once and stored hashed.

use super::grants::{self, Client};
use super::{OAuthError, enabled, redirect_uri_allowed};
use crate::secrets::{random_token, sha256_hex};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use mcp_director_api::models::{ClientRegistrationRequest, ClientRegistrationResponse};

const MAX_REDIRECT_URIS: usize = 16;

pub async fn register(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<ClientRegistrationResponse>), OAuthError> {
    enabled(&state)?;
    let reply = register_client(&state, &body)
        .await
        .map_err(|e| e.counted(&state, "register"))?;
    Ok((StatusCode::CREATED, Json(reply)))
}

async fn register_client(
    state: &AppState,
    body: &[u8],
) -> Result<ClientRegistrationResponse, OAuthError> {
    let req: ClientRegistrationRequest = serde_json::from_slice(body).map_err(|e| {
        OAuthError::bad(
            "invalid_client_metadata",
            format!("not RFC 7591 client metadata: {e}"),
        )
    })?;
    if req.redirect_uris.is_empty() || req.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::bad(
            "invalid_redirect_uri",
            format!("between 1 and {MAX_REDIRECT_URIS} redirect_uris are required"),
        ));
    }
    if let Some(bad) = req.redirect_uris.iter().find(|u| !redirect_uri_allowed(u)) {
        return Err(OAuthError::bad(
            "invalid_redirect_uri",
            format!("`{bad}` is neither https nor http on a loopback address, or has a fragment"),
        ));
    }
    let grant_types = if req.grant_types.is_empty() {
        vec![
            "authorization_code".to_string(),
            "refresh_token".to_string(),
        ]
    } else {
        req.grant_types.clone()
    };
    if let Some(g) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(OAuthError::bad(
            "invalid_client_metadata",
            format!("grant type `{g}` is not supported (authorization_code, refresh_token)"),
        ));
    }
    if req.response_types.iter().any(|r| r != "code") {
        return Err(OAuthError::bad(
            "invalid_client_metadata",
            "only the `code` response type is supported",
        ));
    }
    let auth_method = req
        .token_endpoint_auth_method
        .clone()
        .unwrap_or_else(|| "none".to_string());
    let secret = match auth_method.as_str() {
        "none" => None,
        "client_secret_post" | "client_secret_basic" => Some(random_token()),
        other => {
            return Err(OAuthError::bad(
                "invalid_client_metadata",
                format!("token_endpoint_auth_method `{other}` is not supported"),
            ));
        }
    };
    let name = req
        .client_name
        .as_deref()
        .map(|n| n.chars().take(200).collect::<String>());
    let client = Client {
        client_id: uuid_like(),
        secret_hash: secret.as_deref().map(sha256_hex),
        name: name.clone(),
        redirect_uris: req.redirect_uris.clone(),
        grant_types: grant_types.clone(),
        auth_method: auth_method.clone(),
    };
    grants::insert_client(&state.store, &client, req.scope.as_deref())
        .await
        .map_err(OAuthError::store)?;
    tracing::info!(client_id = %client.client_id, name = name.as_deref().unwrap_or(""), "OAuth client registered");
    Ok(ClientRegistrationResponse {
        client_id: client.client_id,
        client_id_issued_at: Some(crate::analytics::now_ms() / 1000),
        client_name: name,
        client_secret_expires_at: secret.as_ref().map(|_| 0),
        client_secret: secret,
        grant_types,
        redirect_uris: req.redirect_uris,
        response_types: vec!["code".into()],
        scope: req.scope,
        token_endpoint_auth_method: Some(auth_method),
    })
}

/// A client id: 128 random bits, hex (client ids are public, so no hashing).
fn uuid_like() -> String {
    crate::secrets::sha256_hex(&random_token())[..32].to_string()
}
