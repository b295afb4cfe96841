//! A 2026 server announces changes only on a `subscriptions/listen` stream (there is no GET
//! stream, no session, and no `resources/subscribe`). The director keeps one open per
//! connection, asking for the lists the server says can change and for the resources its
//! clients subscribed to; it is re-opened when the server ends it or the resources change, and
//! given up with the connection. What arrives there (`list_changed`, `resources/updated`)
//! takes the ordinary path of server notifications.

use super::{Connection, Sent, with_modern_meta};
use crate::jsonrpc::{Id, Message, Request, raw};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often a listening task checks that its connection is still wanted.
const CHECK: Duration = Duration::from_secs(5);

/// What a connection listens for.
#[derive(Default)]
pub struct Listening {
    lists: serde_json::Map<String, Value>,
    resources: Mutex<BTreeSet<String>>,
    changed: tokio::sync::Notify,
}

impl Listening {
    /// Adds (or, `on` false, removes) a resource; the stream is re-opened to say so.
    pub fn resource(&self, uri: &str, on: bool) {
        let mut resources = self.resources.lock().unwrap_or_else(|e| e.into_inner());
        let changed = match on {
            true => resources.insert(uri.to_string()),
            false => resources.remove(uri),
        };
        if changed {
            self.changed.notify_one();
        }
    }

    /// The `notifications` filter to listen with now (empty: nothing to listen for).
    fn filter(&self) -> serde_json::Map<String, Value> {
        let mut filter = self.lists.clone();
        let resources = self.resources.lock().unwrap_or_else(|e| e.into_inner());
        if !resources.is_empty() {
            filter.insert("resourceSubscriptions".into(), json!(*resources));
        }
        filter
    }
}

/// The lists a server's capabilities say can change, as a `notifications` filter.
fn lists(capabilities: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
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

/// Starts listening on `conn` (a 2026 server's), for as long as it lives.
pub fn spawn(conn: &Arc<Connection>) {
    let listening = Arc::new(Listening {
        lists: lists(&conn.info.capabilities),
        ..Default::default()
    });
    if conn.listening.set(listening.clone()).is_err() {
        return;
    }
    let weak = Arc::downgrade(conn);
    tokio::spawn(async move {
        let mut pause = Duration::from_secs(1);
        loop {
            let filter = listening.filter();
            if filter.is_empty() {
                tokio::select! {
                    () = listening.changed.notified() => continue,
                    () = gone(&weak) => return,
                }
            }
            // The connection is not held while listening: dropping it ends this task.
            let Some((id, sending, answer)) = open(&weak, &filter) else {
                return;
            };
            let started = tokio::time::Instant::now();
            let listening_done = async {
                if let Sent::Answered(_) = sending.await {
                    return;
                }
                let _ = answer.await;
            };
            tokio::select! {
                () = listening_done => {}
                // Re-opened at once with what is wanted now; the old request is ended (over
                // stdio it would otherwise go on, and every update arrive twice).
                () = listening.changed.notified() => {
                    if let Some(conn) = weak.upgrade() {
                        conn.forget(id);
                        let cancel = json!({"requestId": id, "reason": "listening again, for other notifications"});
                        conn.notify("notifications/cancelled", Some(raw(&cancel))).await;
                    }
                    continue;
                }
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

/// Sends `subscriptions/listen`: its id, the write under way (over HTTP, the stream itself) and
/// the waiter for its final answer. None once the connection is gone.
fn open(
    weak: &Weak<Connection>,
    filter: &serde_json::Map<String, Value>,
) -> Option<(
    i64,
    futures::future::BoxFuture<'static, Sent>,
    super::Answer,
)> {
    let conn = weak.upgrade().filter(|c| c.is_open())?;
    let (id, answer) = conn.register().ok()?;
    let params = with_modern_meta(Some(&raw(&json!({ "notifications": filter }))), &json!({}));
    let request = Message::Request(Request {
        id: Id::from(id),
        method: "subscriptions/listen".into(),
        params: Some(params),
    });
    Some((id, (conn.writer)(request), answer))
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
