//! `prompts/list` (merged, paginated) and `prompts/get` (routed by exposed name).

use super::{Gateway, View, page, params_map, string_param};
use crate::jsonrpc::{ErrorObject, Request, raw};
use crate::session::{Session, Sink};
use serde_json::value::RawValue;
use std::sync::Arc;

pub fn list(
    g: &Gateway,
    session: &Session,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    page(
        &View::visible(
            &g.view_for(session.project.as_deref()).prompts,
            "name",
            &session.filter,
        ),
        "prompts",
        params,
        super::tools::PAGE,
    )
}

pub async fn get(
    g: &Arc<Gateway>,
    session: &Arc<Session>,
    r: &Request,
    sink: Sink,
) -> Result<Box<RawValue>, ErrorObject> {
    let mut params = params_map(r.params.as_deref())?;
    let name = string_param(&params, "name")?;
    let view = g.view_for(session.project.as_deref());
    let (server, original) = view
        .prompt_names
        .resolve(&name)
        .filter(|(server, _)| session.filter.sees(server, &name))
        .ok_or_else(|| ErrorObject::invalid_params(format!("Unknown prompt: {name}")))?;
    params.insert("name".into(), raw(original));
    g.forward(session, sink, &r.id, server, "prompts/get", params)
        .await
}
