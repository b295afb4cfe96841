//! Legacy HTTP+SSE upstreams (MCP 2024-11-05): a GET stream whose first `endpoint` event names
//! the URL to POST messages to; every answer comes back on the stream as a `message` event.

use super::{Pipe, Sent};
use crate::jsonrpc::Message;
use crate::sse;
use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

pub async fn connect(
    server: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
    http: reqwest::Client,
    max_message: usize,
) -> Result<Pipe, String> {
    let url = reqwest::Url::parse(url).map_err(|e| format!("bad url {url}: {e}"))?;
    let base = super::header_map(headers)?;
    let response = http
        .get(url.clone())
        .headers(base.clone())
        .header(ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered HTTP {}", response.status()));
    }
    let mut events = Box::pin(sse::events(response.bytes_stream(), max_message));
    let endpoint = loop {
        match events.next().await {
            Some(Ok(e)) if e.event.as_deref() == Some("endpoint") => break e.data,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("{url}: {e}")),
            None => return Err(format!("{url} closed before sending its endpoint")),
        }
    };
    let post_url = url
        .join(endpoint.trim())
        .map_err(|e| format!("bad endpoint {endpoint}: {e}"))?;
    if post_url.origin() != url.origin() {
        return Err(format!("endpoint {post_url} is not on the server's origin"));
    }

    let (from_server, inbound) = mpsc::channel::<super::Inbound>(256);
    let name = server.to_string();
    let reader = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let Ok(event) = event else {
                tracing::warn!(server = %name, "upstream stream sent too much; reconnecting");
                break;
            };
            if event.event.as_deref().unwrap_or("message") != "message" {
                continue;
            }
            match Message::parse(event.data.as_bytes()) {
                Ok(m) => {
                    if from_server.send(m.into()).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(server = %name, error = %e.error.message, "ignoring an invalid SSE message")
                }
            }
        }
    });
    let name = server.to_string();
    let writer: super::Writer = Arc::new(move |message: Message| {
        let (http, url, base, name) = (http.clone(), post_url.clone(), base.clone(), name.clone());
        Box::pin(async move {
            let sent = http
                .post(url)
                .headers(base)
                .header(CONTENT_TYPE, "application/json")
                .body(message.to_json())
                .send()
                .await;
            match sent.and_then(|r| r.error_for_status()) {
                Ok(_) => Sent::Written,
                Err(e) => {
                    tracing::warn!(server = %name, error = %e, "POST to the SSE endpoint failed");
                    if e.is_connect() {
                        Sent::Closed
                    } else {
                        Sent::Written
                    }
                }
            }
        })
    });
    Ok(Pipe {
        writer,
        inbound,
        pid: None,
        shutdown: Box::new(move || reader.abort()),
    })
}
