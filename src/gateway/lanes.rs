//! Lanes: a shared stdio or legacy SSE upstream cannot say which client a request of its
//! (sampling, elicitation) is for while it serves several at once. So a session that can be
//! asked such things (it declared sampling or elicitation) has a connection to itself while
//! its requests are in flight: a lane — an extra connection to the same instance, opened for
//! the purpose, reused by the next such session, and closed after [`IDLE`] unused. Sessions
//! that cannot be asked share the instance's own connection, where a request of the upstream
//! is attributed only when one client is being served. Streamable HTTP upstreams need none:
//! their requests arrive on the answer stream of the call they belong to.

use super::Gateway;
use crate::jsonrpc::ErrorObject;
use crate::session::Session;
use crate::upstream::Connection;
use crate::upstream::pool::Upstream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lanes an instance opens at most; past this, sessions share (and a request of the upstream
/// that could be for several of them is refused).
const MAX_LANES: usize = 8;
/// A lane unused this long is closed.
pub const IDLE: Duration = Duration::from_secs(300);

/// A session's hold on a connection, released when the request is over.
pub struct Hold {
    upstream: Arc<Upstream>,
    connection: u64,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut lanes = self
            .upstream
            .lanes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((_, n)) = lanes.held.get_mut(&self.connection) {
            *n -= 1;
            if *n == 0 {
                lanes.held.remove(&self.connection);
            }
        }
        let now = Instant::now();
        for (c, used) in lanes.extra.iter_mut() {
            if c.id == self.connection {
                *used = now;
            }
        }
    }
}

/// Whether requests of `session` to `upstream` need a connection of their own.
pub fn needed(session: &Session, upstream: &Upstream) -> bool {
    use mcp_director_api::models::Transport;
    upstream.config.transport != Transport::StreamableHttp
        && (session.has_capability("sampling") || session.has_capability("elicitation"))
}

/// A connection to `upstream` that no other session that can be asked is using: the shared
/// one, a free lane, or a new lane.
pub async fn hold(
    g: &Arc<Gateway>,
    session: &Arc<Session>,
    upstream: &Arc<Upstream>,
    shared: Arc<Connection>,
) -> Result<(Arc<Connection>, Option<Hold>), ErrorObject> {
    let claim = |lanes: &mut crate::upstream::pool::Lanes, c: &Arc<Connection>| -> bool {
        match lanes.held.get_mut(&c.id) {
            None => {
                lanes.held.insert(c.id, (session.id.clone(), 1));
                true
            }
            Some((holder, n)) if *holder == session.id => {
                *n += 1;
                true
            }
            Some(_) => false,
        }
    };
    let hold = |c: &Arc<Connection>| Hold {
        upstream: upstream.clone(),
        connection: c.id,
    };
    {
        let mut lanes = upstream.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes.extra.retain(|(c, _)| c.is_open());
        // Never the shared connection: sessions that cannot be asked use it at any time, and
        // a request of the upstream there could be on behalf of any of them.
        let open: Vec<Arc<Connection>> = lanes.extra.iter().map(|(c, _)| c.clone()).collect();
        for c in open {
            if claim(&mut lanes, &c) {
                return Ok((c.clone(), Some(hold(&c))));
            }
        }
        if lanes.extra.len() >= MAX_LANES {
            tracing::warn!(server = %upstream.name, "every lane is in use: sharing");
            return Ok((shared, None));
        }
    }
    let (lane, mut events) = g.pool.open_dedicated(upstream).await.map_err(|e| {
        ErrorObject::internal(format!(
            "upstream server '{}' is unavailable: {e}",
            upstream.name
        ))
    })?;
    tracing::info!(server = %upstream.name, "lane opened");
    let weak = Arc::downgrade(g);
    let (server, c) = (upstream.name.clone(), lane.clone());
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let Some(g) = weak.upgrade() else { break };
            super::relay::from_server(&g, &server, c.clone(), None, event);
        }
    });
    let mut lanes = upstream.lanes.lock().unwrap_or_else(|e| e.into_inner());
    lanes.extra.push((lane.clone(), Instant::now()));
    lanes.held.insert(lane.id, (session.id.clone(), 1));
    Ok((lane.clone(), Some(hold(&lane))))
}

/// Closes lanes nobody has used for [`IDLE`].
pub fn close_idle(upstreams: &[Arc<Upstream>]) {
    for u in upstreams {
        let mut lanes = u.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let held = std::mem::take(&mut lanes.held);
        lanes.extra.retain(|(c, used)| {
            let keep = held.contains_key(&c.id) || used.elapsed() < IDLE;
            if !keep {
                c.close();
            }
            keep
        });
        lanes.held = held;
    }
}
