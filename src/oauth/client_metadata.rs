//! Client ID Metadata Documents (MCP 2025-11-25): a client whose `client_id` is a URL publishes
//! its metadata at that URL instead of registering. Fetching a URL a client chose invites
//! server-side request forgery, so the fetch is fenced: https only, no private, link-local or
//! otherwise non-public address (the address checked is the address connected to; no proxy),
//! no redirects, a 5 s deadline and at most 5 KiB. Loopback (and plain http to it) is allowed
//! only while the director itself is on loopback (a developer's machine). The client learns
//! only that the document could not be used; the reason goes to the log, so the fetch cannot
//! be used to probe what answers where.

use super::grants::{self, Client};
use super::{OAuthError, redirect_uri_allowed};
use crate::state::AppState;
use futures::StreamExt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const MAX_BYTES: usize = 5 * 1024;

/// Whether a `client_id` names a metadata document rather than a registered client.
pub fn is_metadata_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// What the client is told; why goes to the log.
fn refuse(why: impl std::fmt::Display) -> OAuthError {
    tracing::warn!(reason = %why, "client metadata document refused");
    OAuthError::bad(
        "invalid_client",
        "the client_id metadata document could not be used",
    )
}

/// Public addresses only: everything a request forger would aim at inside a network is
/// refused, including IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4).
/// Loopback is decided by the caller.
pub fn address_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [first, second, ..] = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_multicast()
                || first == 0
                || first >= 240 // reserved
                || (first == 100 && (second & 0xc0) == 64) // 100.64.0.0/10, shared
                || (first == 198 && (second & 0xfe) == 18)) // 198.18.0.0/15, benchmarking
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            let embedded = |hi: u16, lo: u16| {
                std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            if let Some(v4) = a.to_ipv4_mapped() {
                return address_public(IpAddr::V4(v4));
            }
            if s[..6] == [0; 6] && !a.is_loopback() && !a.is_unspecified() {
                return address_public(IpAddr::V4(embedded(s[6], s[7]))); // ::a.b.c.d
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return address_public(IpAddr::V4(embedded(s[6], s[7]))); // NAT64
            }
            if s[0] == 0x2002 {
                return address_public(IpAddr::V4(embedded(s[1], s[2]))); // 6to4
            }
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

/// The client a metadata URL describes, fetched under the rules above and kept in the store
/// (so /token knows it as it knows registered clients).
pub async fn resolve(state: &AppState, client_id: &str) -> Result<Client, OAuthError> {
    let url = url::Url::parse(client_id).map_err(|_| refuse("client_id is not a URL"))?;
    // The exact URL it names, nothing the parser would clean up (control characters, case).
    if url.as_str() != client_id {
        return Err(refuse("client_id is not a normalized URL"));
    }
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
    let director_on_loopback = url::Url::parse(&super::issuer(state))
        .ok()
        .and_then(|u| {
            u.host().map(|h| match h {
                url::Host::Domain(d) => d == "localhost",
                url::Host::Ipv4(ip) => ip.is_loopback(),
                url::Host::Ipv6(ip) => ip.is_loopback(),
            })
        })
        .unwrap_or(false);
    let loopback = addresses.iter().all(|a| a.ip().is_loopback());
    let allowed = addresses
        .iter()
        .all(|a| address_public(a.ip()) || (director_on_loopback && a.ip().is_loopback()));
    if !allowed {
        return Err(refuse(format!(
            "{client_id} points at a private or reserved address"
        )));
    }
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(refuse(format!("{client_id} is not https")));
    }

    let http = crate::net::http_client()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
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
    fn only_public_addresses_are_fetched() {
        for ok in ["93.184.216.34", "2606:2800:220:1::1", "2002:5db8:d822::1"] {
            assert!(address_public(ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "::1",
            "198.18.0.1",
            "240.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "::10.0.0.1",
            "fec0::1",
            "2001:db8::1",
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
            assert!(!address_public(bad.parse().unwrap()), "{bad}");
        }
    }
}
