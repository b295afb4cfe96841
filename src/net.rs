//! Outgoing HTTP: every client the director builds (upstreams, OAuth/OIDC fetches, OTLP export,
//! the admin CLI) starts from [`http_client`], so socket options are set in one place.

/// A reqwest builder with TCP_NODELAY: MCP messages are small writes that must leave at once
/// (reqwest's default today; stated here so it cannot silently change).
pub fn http_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tcp_nodelay(true)
}

/// A request body: one buffer.
pub type Body = http_body_util::Full<bytes::Bytes>;

/// The client of Streamable HTTP upstreams: hyper with a keep-alive pool, TLS by rustls with
/// the platform's verifier, TCP_NODELAY.
pub type HyperClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Body,
>;

pub fn hyper_client() -> HyperClient {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(std::time::Duration::from_secs(10)));
    http.enforce_http(false);
    let tls = hyper_rustls::HttpsConnectorBuilder::new();
    let tls = match tls.try_with_platform_verifier() {
        Ok(tls) => tls,
        Err(e) => {
            tracing::warn!(error = %e, "no platform certificate verifier: https upstreams will fail");
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
        }
    };
    let connector = tls.https_or_http().enable_http1().wrap_connector(http);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector)
}
