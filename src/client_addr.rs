//! Who a request comes from: the connection's peer, or — when that peer is one of
//! `[settings] trusted_proxies` (a load balancer, a reverse proxy) — the client it names in
//! `X-Forwarded-For`. Anyone can write that header, so it is believed only from a trusted
//! peer, and only as far as the chain of trusted proxies goes: the rightmost address that is
//! not itself a trusted proxy is the client. A request another replica forwarded carries the
//! client it vouches for (`transport::http::hop`).

use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The client's address, as [`resolve`] decides it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// A `trusted_proxies` entry: a network, or a single address.
pub fn parse(entry: &str) -> Option<IpNet> {
    entry
        .parse::<IpNet>()
        .ok()
        .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The client of a request from `peer` with these headers.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let trusts = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !trusts(&peer) {
        return peer;
    }
    // Every X-Forwarded-For header, in order, as one list; read from the right.
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .map(|hop| hop.parse::<IpAddr>().ok())
        .collect::<Option<Vec<_>>>()
        // A list with anything unreadable in it says nothing reliable.
        .unwrap_or_default();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        client = hop;
        if !trusts(&hop) {
            break;
        }
    }
    client
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        // Served without connection info (never, outside tests): the unspecified address.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        // Another replica forwarding a session's request vouches for its client.
        if let Some(client) = crate::transport::http::hop::forwarded_client(&parts.headers) {
            return Ok(ClientAddr(client));
        }
        let proxies = &state.config.effective().settings.trusted_proxies;
        if proxies.is_empty() {
            return Ok(ClientAddr(peer));
        }
        let trusted: Vec<IpNet> = proxies.iter().filter_map(|p| parse(p)).collect();
        Ok(ClientAddr(resolve(peer, &parts.headers, &trusted)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_only_as_far_as_the_trusted_chain() {
        let trusted = [parse("10.0.0.0/8").unwrap(), parse("192.0.2.7").unwrap()];
        let lb = ip("10.1.2.3");
        // Not trusted: the header is anyone's to write.
        assert_eq!(
            resolve(ip("203.0.113.9"), &headers(&["1.1.1.1"]), &trusted),
            ip("203.0.113.9")
        );
        // Trusted: the client it names.
        assert_eq!(resolve(lb, &headers(&["1.1.1.1"]), &trusted), ip("1.1.1.1"));
        // A spoofed entry before the real client stays left of it.
        assert_eq!(
            resolve(lb, &headers(&["6.6.6.6, 1.1.1.1"]), &trusted),
            ip("1.1.1.1")
        );
        // Chains of trusted proxies are walked, across several headers too.
        assert_eq!(
            resolve(lb, &headers(&["1.1.1.1", "192.0.2.7, 10.9.9.9"]), &trusted),
            ip("1.1.1.1")
        );
        // No header, or garbage in it: the peer.
        assert_eq!(resolve(lb, &headers(&[]), &trusted), lb);
        assert_eq!(resolve(lb, &headers(&["1.1.1.1, nonsense"]), &trusted), lb);
    }

    proptest! {
        /// Whatever an untrusted peer writes, it is the client.
        #[test]
        fn an_untrusted_peer_is_the_client(header in ".{0,80}", a in any::<[u8; 4]>()) {
            let peer = IpAddr::from(a);
            prop_assume!(!peer.to_string().starts_with("10."));
            let mut h = HeaderMap::new();
            if let Ok(v) = header.parse() {
                h.insert("x-forwarded-for", v);
            }
            let trusted = [parse("10.0.0.0/8").unwrap()];
            prop_assert_eq!(resolve(peer, &h, &trusted), peer);
        }
    }
}
