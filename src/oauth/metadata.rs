//! Discovery documents: RFC 8414 authorization server metadata, OpenID Connect discovery (the
//! same issuer and endpoints), and RFC 9728 protected resource metadata for the director and
//! for its /mcp endpoint (the URL a 401's `resource_metadata` names).

use super::{MCP_SCOPE, OAuthError, enabled, issuer, resources};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use mcp_director_api::models::{
    AuthorizationServerMetadata, OpenIdConfiguration, ProtectedResourceMetadata,
};

fn server_metadata(issuer: &str) -> AuthorizationServerMetadata {
    AuthorizationServerMetadata {
        issuer: issuer.to_string(),
        authorization_endpoint: format!("{issuer}/authorize"),
        token_endpoint: format!("{issuer}/token"),
        registration_endpoint: Some(format!("{issuer}/register")),
        response_types_supported: vec!["code".into()],
        grant_types_supported: vec!["authorization_code".into(), "refresh_token".into()],
        code_challenge_methods_supported: vec!["S256".into()],
        token_endpoint_auth_methods_supported: vec![
            "none".into(),
            "client_secret_post".into(),
            "client_secret_basic".into(),
        ],
        scopes_supported: vec![MCP_SCOPE.into(), "offline_access".into()],
        client_id_metadata_document_supported: Some(true),
        authorization_response_iss_parameter_supported: Some(true),
    }
}

pub async fn authorization_server(
    State(state): State<AppState>,
) -> Result<Json<AuthorizationServerMetadata>, OAuthError> {
    enabled(&state)?;
    Ok(Json(server_metadata(&issuer(&state))))
}

/// The same issuer and endpoints as RFC 8414, for MCP clients that discover through OIDC
/// (the MCP spec lists it as a fallback). The director issues access tokens only, never ID
/// tokens; `subject_types_supported` and `id_token_signing_alg_values_supported` are there
/// because OIDC discovery requires them.
pub async fn openid_configuration(
    State(state): State<AppState>,
) -> Result<Json<OpenIdConfiguration>, OAuthError> {
    enabled(&state)?;
    let m = server_metadata(&issuer(&state));
    Ok(Json(OpenIdConfiguration {
        issuer: m.issuer,
        authorization_endpoint: m.authorization_endpoint,
        token_endpoint: m.token_endpoint,
        registration_endpoint: m.registration_endpoint,
        response_types_supported: m.response_types_supported,
        grant_types_supported: m.grant_types_supported,
        code_challenge_methods_supported: m.code_challenge_methods_supported,
        token_endpoint_auth_methods_supported: m.token_endpoint_auth_methods_supported,
        scopes_supported: m.scopes_supported,
        client_id_metadata_document_supported: m.client_id_metadata_document_supported,
        authorization_response_iss_parameter_supported: m
            .authorization_response_iss_parameter_supported,
        jwks_uri: None,
        subject_types_supported: vec!["public".into()],
        id_token_signing_alg_values_supported: vec!["RS256".into()],
        userinfo_endpoint: None,
    }))
}

fn resource_metadata(issuer: &str, resource: String) -> ProtectedResourceMetadata {
    ProtectedResourceMetadata {
        resource,
        authorization_servers: vec![issuer.to_string()],
        scopes_supported: vec![MCP_SCOPE.into()],
        bearer_methods_supported: vec!["header".into()],
        resource_name: Some("MCP Director".into()),
    }
}

pub async fn protected_resource(
    State(state): State<AppState>,
) -> Result<Json<ProtectedResourceMetadata>, OAuthError> {
    enabled(&state)?;
    let issuer = issuer(&state);
    let [_, _, root] = resources(&issuer);
    Ok(Json(resource_metadata(&issuer, root)))
}

pub async fn protected_resource_mcp(
    State(state): State<AppState>,
) -> Result<Json<ProtectedResourceMetadata>, OAuthError> {
    enabled(&state)?;
    let issuer = issuer(&state);
    let [mcp, _, _] = resources(&issuer);
    Ok(Json(resource_metadata(&issuer, mcp)))
}

/// The legacy `/sse` endpoint's own document: RFC 9728 §3.3 wants `resource` to be the URL the
/// client asked.
pub async fn protected_resource_sse(
    State(state): State<AppState>,
) -> Result<Json<ProtectedResourceMetadata>, OAuthError> {
    enabled(&state)?;
    let issuer = issuer(&state);
    let [_, sse, _] = resources(&issuer);
    Ok(Json(resource_metadata(&issuer, sse)))
}
