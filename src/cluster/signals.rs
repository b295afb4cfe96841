//! Signals between the replicas of one PostgreSQL store, over LISTEN/NOTIFY: a configuration
//! version written, a task cancelled. They only hurry what each replica finds out by polling
//! anyway (the configuration every `live_config::FOLLOW`, task leases every `HEARTBEAT`), so a
//! signal lost while the listener reconnects costs seconds, never correctness.

use crate::store::Store;
use std::time::Duration;

const CHANNEL: &str = "mcp_director";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A new configuration version is in the store.
    Config,
    /// This task was cancelled: the replica running it stops its work.
    Cancelled(String),
}

impl Signal {
    fn payload(&self) -> String {
        match self {
            Signal::Config => "config".into(),
            Signal::Cancelled(id) => format!("cancelled:{id}"),
        }
    }

    fn parse(payload: &str) -> Option<Signal> {
        match payload.split_once(':') {
            None if payload == "config" => Some(Signal::Config),
            Some(("cancelled", id)) if !id.is_empty() => Some(Signal::Cancelled(id.into())),
            _ => None,
        }
    }
}

/// Tells every replica on `store` (itself included); nothing on a store of one's own.
pub async fn send(store: &Store, signal: Signal) {
    if !store.shared() {
        return;
    }
    // pg_notify returns void, which the Any driver cannot decode: select a constant instead.
    let sent = sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS sent")
        .bind(CHANNEL)
        .bind(signal.payload())
        .execute(store.pool())
        .await;
    if let Err(e) = sent {
        tracing::debug!(error = %e, ?signal, "signal not sent; the others will find out by polling");
    }
}

/// Hands every signal on `store` to `on`, reconnecting when the connection drops, for as long
/// as the process lives. Returns at once on a store of one's own.
pub async fn listen(store: Store, on: impl Fn(Signal) + Send + 'static) {
    if !store.shared() {
        return;
    }
    loop {
        match sqlx::postgres::PgListener::connect(store.url()).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => match Signal::parse(n.payload()) {
                            Some(signal) => on(signal),
                            None => tracing::debug!(payload = n.payload(), "unknown signal"),
                        },
                        // The connection was lost (and is re-established by the next call):
                        // signals may have been missed, which polling makes up for.
                        Ok(None) => tracing::debug!("signal listener reconnecting"),
                        Err(e) => {
                            tracing::warn!(error = %e, "signal listener failed");
                            break;
                        }
                    }
                },
                Err(e) => tracing::warn!(error = %e, "cannot listen for the replicas' signals"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot connect for the replicas' signals"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_reads_back_as_itself_and_nothing_else_is_one() {
        for s in [Signal::Config, Signal::Cancelled("a:b".into())] {
            assert_eq!(Signal::parse(&s.payload()), Some(s));
        }
        for junk in ["", "conf", "cancelled:", "cancelled", "config:x", "other:1"] {
            assert_eq!(Signal::parse(junk), None, "{junk}");
        }
    }
}
