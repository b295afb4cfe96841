//! Client ID Metadata Documents (MCP 2025-11-25): a client whose `client_id` is a URL publishes
//! its metadata at that URL instead of registering. Fetching a URL a client chose invites
//! server-side request forgery, so the fetch is fenced: https only (plain http only to a
//! loopback address), no private, link-local or otherwise non-public address (the address
//! checked is the address connected to), no redirects, a 5 s deadline and at most 5 KiB.

use super::grants::{self, Client};
use super::{OAuthError, redirect_uri_allowed};
use crate::server::AppState;
use futures::StreamExt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const MAX_BYTES: usize = 5 * 1024;

/// Whether a `client_id` names a metadata document rather than a registered client.
pub fn is_metadata_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

fn refuse(description: impl Into<String>) -> OAuthError {
    OAuthError::bad("invalid_client", description)
}

/// Public addresses, and loopback (a client on this machine). Everything a request forger
/// would aim at inside a network is refused.
pub fn address_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [first, second, ..] = a.octets();
            a.is_loopback()
                || !(a.is_private()
                    || a.is_link_local()
                    || a.is_unspecified()
                    || a.is_broadcast()
                    || a.is_documentation()
                    || a.is_multicast()
                    || first == 0
                    || (first == 100 && (second & 0xc0) == 64)) // 100.64.0.0/10, shared
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return address_allowed(IpAddr::V4(v4));
            }
            let first = a.segments()[0];
            a.is_loopback()
                || !(a.is_unspecified()
                    || a.is_multicast()
                    || (first & 0xfe00) == 0xfc00 // unique local
                    || (first & 0xffc0) == 0xfe80) // link local
        }
    }
}

/// The client a metadata URL describes, fetched under the rules above and kept in the store
/// (so /token knows it as it knows registered clients).
pub async fn resolve(state: &AppState, client_id: &str) -> Result<Client, OAuthError> {
    let url = url::Url::parse(client_id).map_err(|_| refuse("client_id is not a URL"))?;
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "a client metadata URL has no fragment or credentials",
        ));
    }
    if url.path().len() <= 1 {
        return Err(refuse("a client metadata URL has a path"));
    }
    let host = url
        .host_str()
        .ok_or_else(|| refuse("client_id has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| refuse("the client metadata host did not resolve in time"))?
        .map_err(|_| refuse("the client metadata host does not resolve"))?
        .collect(),
    };
    let Some(address) = addresses.first().copied() else {
        return Err(refuse("the client metadata host does not resolve"));
    };
    if addresses.iter().any(|a| !address_allowed(a.ip())) {
        return Err(refuse(
            "the client metadata URL points at a private or reserved address",
        ));
    }
    let loopback = addresses.iter().all(|a| a.ip().is_loopback());
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(refuse("a client metadata URL must be https"));
    }

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .resolve(&host, address)
        .build()
        .map_err(|e| refuse(format!("cannot fetch client metadata: {e}")))?;
    let response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| refuse(format!("cannot fetch client metadata: {e}")))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(refuse(format!(
            "the client metadata URL answered {} (redirects are not followed)",
            response.status()
        )));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BYTES as u64)
    {
        return Err(refuse(format!(
            "the client metadata document is larger than {MAX_BYTES} bytes"
        )));
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| refuse(format!("cannot read client metadata: {e}")))?;
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(refuse(format!(
                "the client metadata document is larger than {MAX_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }

    #[derive(serde::Deserialize)]
    struct Document {
        client_id: String,
        client_name: Option<String>,
        #[serde(default)]
        redirect_uris: Vec<String>,
        #[serde(default)]
        grant_types: Vec<String>,
        token_endpoint_auth_method: Option<String>,
    }
    let doc: Document = serde_json::from_slice(&body)
        .map_err(|e| refuse(format!("the client metadata document is not valid: {e}")))?;
    if doc.client_id != client_id {
        return Err(refuse(
            "the client metadata document's client_id is not its own URL",
        ));
    }
    if doc.redirect_uris.is_empty() || !doc.redirect_uris.iter().all(|u| redirect_uri_allowed(u)) {
        return Err(refuse(
            "the client metadata document needs redirect_uris, each https or loopback http",
        ));
    }
    if doc
        .token_endpoint_auth_method
        .as_deref()
        .is_some_and(|m| m != "none")
    {
        return Err(refuse(
            "only public clients (token_endpoint_auth_method none) may use a metadata URL",
        ));
    }
    let grant_types = if doc.grant_types.is_empty() {
        vec![
            "authorization_code".to_string(),
            "refresh_token".to_string(),
        ]
    } else {
        doc.grant_types
            .into_iter()
            .filter(|g| matches!(g.as_str(), "authorization_code" | "refresh_token"))
            .collect()
    };
    let client = Client {
        client_id: client_id.to_string(),
        secret_hash: None,
        name: doc
            .client_name
            .map(|n| n.chars().take(200).collect::<String>()),
        redirect_uris: doc.redirect_uris,
        grant_types,
        auth_method: "none".to_string(),
    };
    grants::upsert_client(&state.store, &client)
        .await
        .map_err(OAuthError::store)?;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_and_loopback_addresses_are_fetched() {
        for ok in ["127.0.0.1", "::1", "93.184.216.34", "2606:2800:220:1::1"] {
            assert!(address_allowed(ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!address_allowed(bad.parse().unwrap()), "{bad}");
        }
    }
}
