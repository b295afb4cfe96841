//! Logs and traces. Logs: the `tracing` subscriber on stderr (stdout is the MCP stream in
//! `stdio`), filtered by `MCP_DIRECTOR_LOG`, as JSON lines with `MCP_DIRECTOR_LOG_FORMAT=json`.
//! Traces: with `settings.observability.otlp_endpoint`, every span (one `mcp.request` per
//! client request, naming its method, server and tool) is exported over OTLP/HTTP.
//!
//! W3C trace context: a client's `params._meta.traceparent` (and `tracestate`) becomes the parent
//! of its request span, and a request to an HTTP upstream carries a `traceparent` header: our
//! span's when traces are exported, else the client's own, unchanged.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::future::Future;
use std::sync::OnceLock;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Set once traces are exported: spans then carry OpenTelemetry contexts.
static EXPORTING: OnceLock<()> = OnceLock::new();

tokio::task_local! {
    /// The traceparent a client sent with the request being served.
    static CLIENT_TRACEPARENT: Option<String>;
}

/// Flushes exported spans when dropped through [`Telemetry::shutdown`].
pub struct Telemetry(Option<SdkTracerProvider>);

impl Telemetry {
    /// Sends what is still buffered (off the async workers: the exporter blocks).
    pub async fn shutdown(self) {
        if let Some(provider) = self.0 {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Installs the global subscriber: logs, plus the OTLP exporter when `otlp` names a collector
/// (`(endpoint, service name)`). Needs a Tokio runtime when exporting.
pub fn init(otlp: Option<(&str, &str)>) -> Telemetry {
    let filter = || {
        EnvFilter::try_from_env("MCP_DIRECTOR_LOG")
            .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"))
    };
    let json = std::env::var("MCP_DIRECTOR_LOG_FORMAT").is_ok_and(|f| f == "json");
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    };
    let (provider, traces) = match otlp.map(|(endpoint, service)| exporter(endpoint, service)) {
        Some(Ok(provider)) => {
            // Our spans at every level, and no events: the exporter sees requests, not logs.
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("mcp-director"))
                .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                    meta.is_span() && meta.target().starts_with("mcp_director")
                }));
            (Some(provider), Some(layer))
        }
        Some(Err(e)) => {
            eprintln!("OpenTelemetry export is off: {e}");
            (None, None)
        }
        None => (None, None),
    };
    if tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .is_ok()
        && provider.is_some()
    {
        let _ = EXPORTING.set(());
    }
    Telemetry(provider)
}

fn exporter(endpoint: &str, service: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Http(
            // The exporter does not apply its own timeout to a custom client.
            crate::net::http_client()
                .timeout(std::time::Duration::from_secs(10))
                .build()?,
            tokio::runtime::Handle::try_current()?,
        ))
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .build())
}

/// The exporter's HTTP client: our reqwest, on our runtime (the batch exporter runs on a
/// thread of its own, outside Tokio).
#[derive(Debug)]
struct Http(reqwest::Client, tokio::runtime::Handle);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Http {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<
        opentelemetry_http::Response<opentelemetry_http::Bytes>,
        opentelemetry_http::HttpError,
    > {
        let client = self.0.clone();
        let (parts, body) = request.into_parts();
        let sent = self.1.spawn(async move {
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut out = opentelemetry_http::Response::new(opentelemetry_http::Bytes::new());
            *out.status_mut() = response.status();
            *out.headers_mut() = response.headers().clone();
            *out.body_mut() = response.bytes().await?;
            Ok::<_, reqwest::Error>(out)
        });
        Ok(sent.await??)
    }
}

/// `_meta.traceparent` and `_meta.tracestate` of a request's params, if any. Params without
/// the word are not parsed again.
pub fn trace_context(params: Option<&RawValue>) -> Option<HashMap<String, String>> {
    let params = params?;
    if !params.get().contains("traceparent") {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(rename = "_meta")]
        meta: Option<HashMap<String, serde_json::Value>>,
    }
    let meta = serde_json::from_str::<Params>(params.get()).ok()?.meta?;
    let carrier: HashMap<String, String> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|k| Some((k.to_string(), meta.get(k)?.as_str()?.to_string())))
        .collect();
    carrier.contains_key("traceparent").then_some(carrier)
}

/// Runs `work` (the serving of one request, inside `span`) with the client's trace context
/// (from [`trace_context`]):
/// the span's parent when exporting, and what [`outgoing_traceparent`] hands to upstreams.
pub async fn with_client_context<F: Future>(
    carrier: Option<HashMap<String, String>>,
    span: &tracing::Span,
    work: F,
) -> F::Output {
    if EXPORTING.get().is_some()
        && let Some(carrier) = &carrier
    {
        let parent = TraceContextPropagator::new().extract(carrier);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    let traceparent = carrier
        .and_then(|mut c| c.remove("traceparent"))
        .filter(|t| well_formed(t));
    CLIENT_TRACEPARENT.scope(traceparent, work).await
}

/// `00-<32 hex>-<16 hex>-<2 hex>` (W3C Trace Context, version 00): anything else is not
/// passed on.
fn well_formed(traceparent: &str) -> bool {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
}

/// The `traceparent` header for a request to an upstream: the current span's context when
/// exporting, else the client's own traceparent, else none.
pub fn outgoing_traceparent() -> Option<String> {
    if EXPORTING.get().is_some() {
        let cx = tracing::Span::current().context();
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            return Some(format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            ));
        }
    }
    CLIENT_TRACEPARENT.try_with(Clone::clone).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_read_from_meta_only() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let p = serde_json::value::to_raw_value(&serde_json::json!({
            "name": "x", "_meta": {"traceparent": tp, "tracestate": "a=b"}
        }))
        .unwrap();
        let c = trace_context(Some(&p)).unwrap();
        assert_eq!(c["traceparent"], tp);
        assert_eq!(c["tracestate"], "a=b");
        let in_args = serde_json::value::to_raw_value(&serde_json::json!({
            "arguments": {"traceparent": tp}
        }))
        .unwrap();
        assert!(trace_context(Some(&in_args)).is_none());
        assert!(trace_context(None).is_none());
    }
}
