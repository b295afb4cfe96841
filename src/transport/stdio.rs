//! MCP over stdio for one client: newline-delimited JSON-RPC on stdin/stdout; logs go to
//! stderr. Each request is served concurrently, so a long tool call does not block a ping.

use crate::gateway::Gateway;
use crate::jsonrpc::{ErrorObject, Message, RATE_LIMITED, Response};
use crate::profile::Scope;
use crate::rate_limit::RateLimits;
use crate::session::{Session, Sink, TransportKind};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Serves one client, with the profile chosen at start, until its input ends.
pub async fn serve<R, W>(
    gateway: Arc<Gateway>,
    input: R,
    mut output: W,
    scope: Scope,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let session = Session::new(crate::session::new_id(), TransportKind::Stdio, scope);
    gateway.add_session(session.clone());
    let mut outbound = session.outbound.attach(None);
    let writer = tokio::spawn(async move {
        while let Some((_, message)) = outbound.recv().await {
            let mut line = message.to_json();
            line.push('\n');
            if output.write_all(line.as_bytes()).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let limits = RateLimits::default();
    let max = gateway.settings().settings.limits.max_request_bytes;
    let mut lines = crate::ndjson::Lines::new(input, usize::try_from(max).unwrap_or(usize::MAX));
    loop {
        let line = match lines.next().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                // Past the limit the stream cannot be resynchronised: the client is told, and
                // the session ends.
                let error = ErrorObject::new(
                    crate::jsonrpc::INVALID_REQUEST,
                    format!("Invalid Request: {e} (settings.limits.max_request_bytes)"),
                );
                session
                    .outbound
                    .send(Response::err(serde_json::Value::Null, error).into());
                break;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match Message::parse(line) {
            Ok(message) => {
                if let Message::Request(r) = &message
                    && let Some(wait) = rate_limited(&gateway, &session, &limits)
                {
                    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                    let error = ErrorObject::new(RATE_LIMITED, "Rate limit exceeded")
                        .with_data(serde_json::json!({ "retryAfterSecs": secs }));
                    session
                        .outbound
                        .send(Response::err(r.id.clone(), error).into());
                    continue;
                }
                let g = gateway.clone();
                let s = session.clone();
                tokio::spawn(async move {
                    let sink = Sink::new(s.clone());
                    if let Some(response) = g.handle(&s, message, sink).await {
                        s.outbound.send(response.into());
                    }
                });
            }
            Err(e) => session.outbound.send(Response::err(e.id, e.error).into()),
        }
    }
    // Ending the session closes its stream: the writer sends what is queued, then stops.
    gateway.remove_session(&session.id).await;
    if tokio::time::timeout(std::time::Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        tracing::debug!("stdout not drained in time");
    }
    Ok(())
}

/// Takes one request from the client's bucket (its profile's rate limit, else
/// `settings.rate_limit`); the wait when it is empty.
fn rate_limited(
    gateway: &Gateway,
    session: &Session,
    limits: &RateLimits,
) -> Option<std::time::Duration> {
    let config = gateway.settings();
    let quota = session
        .profile
        .as_ref()
        .and_then(|p| config.profiles.get(p))
        .and_then(|p| p.rate_limit.as_ref())
        .unwrap_or(&config.settings.rate_limit);
    limits.check("stdio", quota).err()
}
