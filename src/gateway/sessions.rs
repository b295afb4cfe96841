//! The session registry: sessions by id, their end (requests in flight cancelled upstream),
//! idle expiry, and the shutdown announcement.

use super::Gateway;
use crate::jsonrpc::{Message, Notification, raw};
use crate::session::{InFlight, Session, TransportKind};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

impl Gateway {
    pub fn add_session(&self, session: Arc<Session>) {
        self.sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.id.clone(), session);
    }

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// The sessions running task jobs' upstream requests.
    pub fn task_sessions(&self) -> Vec<Arc<Session>> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|r| r.detached.clone())
            .collect()
    }

    pub fn sessions(&self) -> Vec<Arc<Session>> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Ends a session: its requests in flight are cancelled upstream.
    pub async fn remove_session(&self, id: &str) -> bool {
        let session = self
            .sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        let Some(session) = session else { return false };
        session.close();
        let in_flight: Vec<InFlight> = session
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, v)| v)
            .collect();
        for f in in_flight {
            let cancel = json!({"requestId": f.upstream_id, "reason": "client session ended"});
            f.connection
                .notify("notifications/cancelled", Some(raw(&cancel)))
                .await;
            f.connection.forget(f.upstream_id);
        }
        for (_, c) in session.isolated.lock().await.drain() {
            c.close();
        }
        true
    }

    /// Ends Streamable HTTP sessions nobody used for `limit` (clients rarely send DELETE);
    /// the other transports' sessions end with their connection.
    pub(super) async fn expire_idle(&self, limit: Duration) {
        let idle: Vec<String> = self
            .sessions()
            .iter()
            .filter(|s| s.transport == TransportKind::StreamableHttp && s.idle_for(limit))
            .map(|s| s.id.to_string())
            .collect();
        for id in idle {
            tracing::info!(session = %id, "idle session expired");
            self.remove_session(&id).await;
        }
    }

    /// Tells every open stream the director is going away (`notifications/shutdown`).
    pub fn announce_shutdown(&self) {
        let n: Message = Notification {
            method: "notifications/shutdown".into(),
            params: None,
        }
        .into();
        for s in self.sessions() {
            s.outbound.send(n.clone());
        }
    }
}
