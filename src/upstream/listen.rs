//! A 2026 server announces list changes only on a `subscriptions/listen` stream (there is no
//! GET stream and no session). The director keeps one open per connection for the lists the
//! server says can change, re-opened when the server ends it, and given up with the connection.
//! What arrives there (`list_changed`) takes the ordinary path of server notifications.

use super::{Connection, Sent, with_modern_meta};
use crate::jsonrpc::{Id, Message, Request, raw};
use serde_json::{Value, json};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often a listening task checks that its connection is still wanted.
const CHECK: Duration = Duration::from_secs(5);

/// The `notifications` filter for what the server's capabilities say can change.
fn filter(capabilities: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    let mut filter = serde_json::Map::new();
    for (capability, field) in [
        ("tools", "toolsListChanged"),
        ("prompts", "promptsListChanged"),
        ("resources", "resourcesListChanged"),
    ] {
        if capabilities
            .get(capability)
            .and_then(|c| c.get("listChanged"))
            .and_then(Value::as_bool)
            == Some(true)
        {
            filter.insert(field.into(), json!(true));
        }
    }
    filter
}

/// Starts listening on `conn`, if its server has anything to announce.
pub fn spawn(conn: &Arc<Connection>) {
    let filter = filter(&conn.info.capabilities);
    if filter.is_empty() {
        return;
    }
    let weak = Arc::downgrade(conn);
    tokio::spawn(async move {
        let mut pause = Duration::from_secs(1);
        loop {
            // The connection is not held while listening: dropping it ends this task.
            let Some((sending, answer)) = open(&weak, &filter) else {
                return;
            };
            let started = tokio::time::Instant::now();
            let listening = async {
                if let Sent::Answered(_) = sending.await {
                    return;
                }
                let _ = answer.await;
            };
            tokio::select! {
                () = listening => {}
                () = gone(&weak) => return,
            }
            if started.elapsed() > Duration::from_secs(60) {
                pause = Duration::from_secs(1);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(60));
        }
    });
}

/// Sends `subscriptions/listen`: the write under way (over HTTP, the stream itself) and the
/// waiter for its final answer. None once the connection is gone.
fn open(
    weak: &Weak<Connection>,
    filter: &serde_json::Map<String, Value>,
) -> Option<(futures::future::BoxFuture<'static, Sent>, super::Answer)> {
    let conn = weak.upgrade().filter(|c| c.is_open())?;
    let (id, answer) = conn.register().ok()?;
    let params = with_modern_meta(Some(&raw(&json!({ "notifications": filter }))), &json!({}));
    let request = Message::Request(Request {
        id: Id::from(id),
        method: "subscriptions/listen".into(),
        params: Some(params),
    });
    Some(((conn.writer)(request), answer))
}

/// Resolves once the connection is dropped or closed.
async fn gone(weak: &Weak<Connection>) {
    loop {
        tokio::time::sleep(CHECK).await;
        if weak.upgrade().is_none_or(|c| !c.is_open()) {
            return;
        }
    }
}
