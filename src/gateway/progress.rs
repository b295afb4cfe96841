//! Progress: a request's `_meta.progressToken` is swapped for one of ours on its way upstream
//! and restored on the way back, for notifications from the very connection the request went
//! to. Our tokens are unguessable, so an upstream cannot reach another request's stream by
//! spraying tokens; one that names a token of another connection is ignored.

use super::Params;
use crate::jsonrpc::{ErrorObject, Notification, raw};
use crate::session::Sink;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Progress {
    routes: Mutex<HashMap<String, Route>>,
}

/// Where progress for one of our tokens goes.
struct Route {
    /// The upstream connection the request was sent on (`Connection::id`).
    connection: u64,
    sink: Sink,
    /// The client's own token.
    token: Value,
}

impl Progress {
    /// Delivers an upstream's progress notification to its requester, with the client's own
    /// token restored; progress for no request of this connection is dropped.
    pub fn deliver(&self, connection: u64, n: &Notification) {
        let mut params: serde_json::Map<String, Value> =
            match n.params.as_deref().map(|p| serde_json::from_str(p.get())) {
                Some(Ok(p)) => p,
                _ => return,
            };
        let Some(token) = params.get("progressToken").and_then(Value::as_str) else {
            return;
        };
        let route = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .filter(|r| r.connection == connection)
            .map(|r| (r.sink.clone(), r.token.clone()));
        match route {
            Some((sink, original)) => {
                params.insert("progressToken".into(), original);
                sink.send(
                    Notification {
                        method: n.method.clone(),
                        params: Some(raw(&params)),
                    }
                    .into(),
                );
            }
            None => tracing::debug!(
                connection,
                "progress for no request of this connection dropped"
            ),
        }
    }

    /// Replaces the client's `_meta.progressToken` by a fresh token of ours, bound to
    /// `connection`; returns it (to [`Progress::forget`] when the request is over).
    pub fn route(
        &self,
        params: &mut Params,
        connection: u64,
        sink: &Sink,
    ) -> Result<Option<String>, ErrorObject> {
        let Some(meta) = params.get("_meta") else {
            return Ok(None);
        };
        let mut meta: serde_json::Map<String, Value> = serde_json::from_str(meta.get())
            .map_err(|_| ErrorObject::invalid_params("_meta must be an object"))?;
        let Some(original) = meta.get("progressToken").cloned() else {
            return Ok(None);
        };
        let ours = format!("mcpd-{}", crate::secrets::random_token());
        meta.insert("progressToken".into(), Value::String(ours.clone()));
        params.insert("_meta".into(), raw(&meta));
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                ours.clone(),
                Route {
                    connection,
                    sink: sink.clone(),
                    token: original,
                },
            );
        Ok(Some(ours))
    }

    pub fn forget(&self, token: &str) {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    /// The sink a token of ours leads to, when it was issued for `connection` (a server
    /// request that names the progress token of the call it belongs to).
    pub fn sink(&self, token: &str, connection: u64) -> Option<Sink> {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .filter(|r| r.connection == connection)
            .map(|r| r.sink.clone())
    }
}
