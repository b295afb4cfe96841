//! Traces: W3C trace context from a client's `_meta` to HTTP upstreams, and spans exported
//! over OTLP/HTTP to a collector (this test plays the collector and decodes what arrives with
//! the OpenTelemetry protobuf types).

mod common;

use common::{Director, McpHttp};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// The fixture over HTTP, writing the headers it receives to a log; its URL and the log.
fn http_upstream(dir: &std::path::Path) -> (common::Peer, String, std::path::PathBuf) {
    let log = dir.join("upstream-headers.log");
    let port = common::free_port();
    let peer = common::Peer::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_mcp-fixture-server"))
            .args(["--http", &format!("127.0.0.1:{port}")])
            .env("FIXTURE_HEADERS_LOG", &log)
            .stdout(std::process::Stdio::null()),
    );
    (peer, format!("http://127.0.0.1:{port}/mcp"), log)
}

/// tools/call of up/echo with the client's traceparent in `_meta`.
async fn traced_call(d: &Director) {
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    let answer = c
        .post(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "up/echo", "arguments": {"text": "traced"},
            "_meta": {"traceparent": format!("00-{TRACE_ID}-{CLIENT_SPAN}-01")}}}),
        )
        .await;
    assert!(
        common::result_text(&answer).contains("traced"),
        "{answer:?}"
    );
}

/// The traceparent headers the upstream received on tools/call (the last request).
fn upstream_traceparents(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<Value>(l).ok()?["traceparent"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_clients_traceparent_reaches_http_upstreams() {
    let temp = tempfile::tempdir().unwrap();
    let (_up, url, log) = http_upstream(temp.path());
    let d = Director::start(&format!(
        "[servers.up]\ntransport = \"streamable-http\"\nurl = \"{url}\"\n"
    ));
    d.wait_running(&["up"]).await;
    traced_call(&d).await;
    // Without export the client's own context goes on unchanged; requests without one carry none.
    assert_eq!(
        upstream_traceparents(&log),
        vec![format!("00-{TRACE_ID}-{CLIENT_SPAN}-01")]
    );
}

/// An OTLP/HTTP collector on a free port: the decoded export requests it received.
async fn collector() -> (String, Arc<Mutex<Vec<ExportTraceServiceRequest>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                store.lock().unwrap().push(request);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn request_spans_are_exported_over_otlp_as_children_of_the_clients_span() {
    let temp = tempfile::tempdir().unwrap();
    let (_up, url, log) = http_upstream(temp.path());
    let (otlp, received) = collector().await;
    let d = Director::start(&format!(
        "[servers.up]\ntransport = \"streamable-http\"\nurl = \"{url}\"\n\
         [settings.observability]\notlp_endpoint = \"{otlp}\"\nservice_name = \"director-under-test\"\n"
    ));
    d.wait_running(&["up"]).await;
    traced_call(&d).await;

    // The batch exporter sends within its 5 s schedule.
    let span = common::wait_for(|| async {
        let received = received.lock().unwrap();
        received
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| rs.scope_spans.iter().map(move |ss| (rs, ss)))
            .flat_map(|(rs, ss)| ss.spans.iter().map(move |s| (rs, s)))
            .find(|(_, s)| s.name == "tools/call")
            .map(|(rs, s)| (rs.clone(), s.clone()))
    })
    .await;
    let (resource, span) = span;
    let attr = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => Some(s.clone()),
                _ => None,
            })
    };
    assert_eq!(hex(&span.trace_id), TRACE_ID, "the client's trace");
    assert_eq!(
        hex(&span.parent_span_id),
        CLIENT_SPAN,
        "a child of the client's span"
    );
    assert_eq!(attr("rpc.method").as_deref(), Some("tools/call"));
    assert_eq!(attr("mcp.server").as_deref(), Some("up"));
    assert_eq!(attr("mcp.tool").as_deref(), Some("echo"));
    assert_eq!(attr("mcp.transport").as_deref(), Some("streamable-http"));
    let service = resource
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            _ => None,
        });
    assert_eq!(service.as_deref(), Some("director-under-test"));
    // The upstream was called as a child of the director's span.
    assert_eq!(
        upstream_traceparents(&log),
        vec![format!("00-{TRACE_ID}-{}-01", hex(&span.span_id))]
    );
}
