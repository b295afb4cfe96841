//! `prompts/list` (merged, paginated) and `prompts/get` (routed by exposed name).

use super::view::page;
use super::{Gateway, Named};
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
    page(&view.prompts, &session.filter, "prompts", params)
}

/// `prompts/get`: routed by exposed name; a prompt the session cannot see is unknown.
pub async fn get(
    g: &Arc<Gateway>,
    session: &Arc<Session>,
    r: &Request,
    sink: Sink,
) -> Result<Box<RawValue>, ErrorObject> {
    g.forward_named(session, r, sink, Named::Prompt).await
}
