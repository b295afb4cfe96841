//! Resources: merged lists, and read/subscribe/unsubscribe routed by URI to the owning server.
//! URIs are not renamed: they are already global identifiers.

use super::view::page;
use super::{Gateway, params_map, string_param};
use crate::jsonrpc::{ErrorObject, Request, raw};
use crate::session::{Session, Sink, Subscription};
use mcp_director_api::models::AnalyticsRowKind;
use serde_json::json;
use serde_json::value::RawValue;
use std::sync::Arc;

/// MCP's "resource not found".
const RESOURCE_NOT_FOUND: i64 = -32002;

pub fn list(
    g: &Gateway,
    session: &Session,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    let view = g.view_for(session.project.as_deref());
    page(&view.resources, &session.filter, "resources", params)
}

pub fn templates(
    g: &Gateway,
    session: &Session,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    let view = g.view_for(session.project.as_deref());
    page(
        &view.templates,
        &session.filter,
        "resourceTemplates",
        params,
    )
}

/// The server of a URI the session may see (a hidden resource is "not found").
fn owner(g: &Gateway, session: &Session, uri: &str) -> Result<String, ErrorObject> {
    g.view_for(session.project.as_deref())
        .resource_server(uri)
        .filter(|server| session.filter.sees(server, uri))
        .map(str::to_string)
        .ok_or_else(|| {
            // 2026-07-28 retired its own code for this: invalid params, naming the URI.
            let code = if session.negotiated().version >= crate::version::Version::V2026_07_28 {
                crate::jsonrpc::INVALID_PARAMS
            } else {
                RESOURCE_NOT_FOUND
            };
            ErrorObject::new(code, format!("Resource not found: {uri}"))
                .with_data(json!({"uri": uri}))
        })
}

pub async fn read(
    g: &Arc<Gateway>,
    session: &Arc<Session>,
    r: &Request,
    sink: Sink,
) -> Result<Box<RawValue>, ErrorObject> {
    let params = params_map(r.params.as_deref())?;
    let uri = string_param(&params, "uri")?;
    let server = owner(g, session, &uri)?;
    let started = std::time::Instant::now();
    let outcome = g
        .forward(session, sink, &r.id, &server, "resources/read", params)
        .await;
    let ok = outcome.is_ok();
    g.observe(
        session,
        r,
        AnalyticsRowKind::Resource,
        &server,
        &uri,
        started,
        &outcome,
        ok,
    );
    outcome
}

pub async fn subscribe(
    g: &Arc<Gateway>,
    session: &Arc<Session>,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    let params = params_map(params)?;
    let uri = string_param(&params, "uri")?;
    let server = owner(g, session, &uri)?;
    let (upstream, connection) = g.connection(session, &server).await?;
    connection
        .subscribe_resource(&uri, true, upstream.timeout())
        .await?;
    session
        .subscriptions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            uri,
            Subscription {
                server,
                connection: connection.id,
            },
        );
    Ok(raw(&json!({})))
}

pub async fn unsubscribe(
    g: &Arc<Gateway>,
    session: &Arc<Session>,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    let params = params_map(params)?;
    let uri = string_param(&params, "uri")?;
    let removed = session
        .subscriptions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&uri);
    let Some(sub) = removed else {
        return Ok(raw(&json!({})));
    };
    // A connection keeps the subscription while another session holds it through it.
    let others = g
        .sessions()
        .iter()
        .any(|s| s.subscribed_through(&uri, sub.connection));
    if !others
        && let Ok((upstream, connection)) = g.connection(session, &sub.server).await
        && connection.id == sub.connection
    {
        connection
            .subscribe_resource(&uri, false, upstream.timeout())
            .await?;
    }
    Ok(raw(&json!({})))
}

/// Subscriptions made through a connection that is gone are made again through `connection`,
/// the new connection of the same instance (`sessions` use it): updates do not stop silently
/// when an upstream restarts.
pub async fn resubscribe(
    sessions: &[Arc<Session>],
    upstream: &crate::upstream::pool::Upstream,
    connection: &Arc<crate::upstream::Connection>,
) {
    let mut uris = std::collections::BTreeSet::new();
    for s in sessions {
        let mut subs = s.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
        for (uri, sub) in subs.iter_mut() {
            if sub.server == upstream.server && sub.connection != connection.id {
                sub.connection = connection.id;
                uris.insert(uri.clone());
            }
        }
    }
    for uri in uris {
        if let Err(e) = connection
            .subscribe_resource(&uri, true, upstream.timeout())
            .await
        {
            tracing::warn!(server = %upstream.name, %uri, error = %e, "resubscribe failed");
        }
    }
}
