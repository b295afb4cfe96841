//! `subscriptions/listen` (2026-07-28): one long-lived stream per listener (over HTTP, the
//! POST's SSE answer; on stdio, lines among the rest), carrying the change notifications it
//! opted into, each tagged with its subscription id (the request's id).
//! The listener is a session of its own that lives as long as the stream: list changes reach
//! it as they reach every session, resource updates through the subscriptions it makes here.

use crate::gateway::{Gateway, resources};
use crate::jsonrpc::{Message, Notification, Request, raw, with_meta};
use crate::session::Session;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// What a listener asked for (`params.notifications`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Filter {
    tools_list_changed: bool,
    prompts_list_changed: bool,
    resources_list_changed: bool,
    resource_subscriptions: Vec<String>,
}

impl Filter {
    fn wants(&self, n: &Notification) -> bool {
        match n.method.as_str() {
            "notifications/tools/list_changed" => self.tools_list_changed,
            "notifications/prompts/list_changed" => self.prompts_list_changed,
            "notifications/resources/list_changed" => self.resources_list_changed,
            "notifications/resources/updated" => n
                .params
                .as_deref()
                .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
                .and_then(|p| p.get("uri").and_then(Value::as_str).map(str::to_string))
                .is_some_and(|uri| self.resource_subscriptions.contains(&uri)),
            _ => false,
        }
    }
}

/// `n` with the subscription's id in `_meta`.
fn tagged(n: Notification, id: &Value) -> Message {
    let key = "io.modelcontextprotocol/subscriptionId";
    let params = with_meta(n.params.as_deref(), [(key, id.clone())], false);
    Message::from(Notification {
        method: n.method,
        params: Some(params),
    })
}

/// Opens a listener: the acknowledgment first (with what the director will honour: every
/// list it was asked for, and the resources it could subscribe to), then the notifications
/// the listener's session receives that it asked for, each tagged with the subscription's id.
/// The transport frames them, and ends the stream.
pub async fn listen(
    g: &Arc<Gateway>,
    session: &Arc<Session>,
    r: &Request,
) -> impl Stream<Item = Message> + Send + 'static {
    let mut filter: Filter = r
        .params
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
        .and_then(|p| p.get("notifications").cloned())
        .and_then(|n| serde_json::from_value(n).ok())
        .unwrap_or_default();
    let mut subscribed = Vec::new();
    for uri in std::mem::take(&mut filter.resource_subscriptions) {
        let params = raw(&json!({ "uri": uri }));
        if resources::subscribe(g, session, Some(&params))
            .await
            .is_ok()
        {
            subscribed.push(uri);
        }
    }
    filter.resource_subscriptions = subscribed;
    let mut acknowledged = serde_json::Map::new();
    for (name, on) in [
        ("toolsListChanged", filter.tools_list_changed),
        ("promptsListChanged", filter.prompts_list_changed),
        ("resourcesListChanged", filter.resources_list_changed),
    ] {
        if on {
            acknowledged.insert(name.into(), json!(true));
        }
    }
    if !filter.resource_subscriptions.is_empty() {
        acknowledged.insert(
            "resourceSubscriptions".into(),
            json!(filter.resource_subscriptions),
        );
    }
    let ack = Notification {
        method: "notifications/subscriptions/acknowledged".into(),
        params: Some(raw(&json!({ "notifications": acknowledged }))),
    };
    let id = r.id.clone();
    let rx = session.outbound.attach(None);
    let events =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|(_, m)| (m, rx)) },
        )
        .filter_map(move |m| {
            std::future::ready(match m {
                Message::Notification(n) if filter.wants(&n) => Some(n),
                _ => None,
            })
        });
    let id2 = id.clone();
    futures::stream::once(async move { tagged(ack, &id) })
        .chain(events.map(move |m| tagged(m, &id2)))
}
