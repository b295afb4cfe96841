//! `tools/list` (merged, paginated) and `tools/call` (routed by exposed name).

use super::Gateway;
use super::Named;
use super::view::page;
use crate::jsonrpc::{ErrorObject, Request};
use crate::session::{Session, Sink};
use serde_json::value::RawValue;
use std::sync::Arc;

pub fn list(
    g: &Gateway,
    session: &Session,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    let view = g.view_for(session.project.as_deref());
    page(&view.tools, &session.filter, "tools", params)
}

/// `tools/call`: routed by exposed name; a tool the session cannot see is unknown.
pub async fn call(
    g: &Arc<Gateway>,
    session: &Arc<Session>,
    r: &Request,
    sink: Sink,
) -> Result<Box<RawValue>, ErrorObject> {
    g.forward_named(session, r, sink, Named::Tool).await
}
