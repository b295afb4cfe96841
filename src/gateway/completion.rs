//! `completion/complete`, routed by its reference: a prompt (by exposed name) or a resource
//! template (by URI).

use super::{Gateway, params_map};
use crate::jsonrpc::{ErrorObject, Request, raw};
use crate::session::{Session, Sink};
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;

pub async fn complete(
    g: &Arc<Gateway>,
    session: &Arc<Session>,
    r: &Request,
    sink: Sink,
) -> Result<Box<RawValue>, ErrorObject> {
    let mut params = params_map(r.params.as_deref())?;
    let reference: serde_json::Map<String, Value> = params
        .get("ref")
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .ok_or_else(|| ErrorObject::invalid_params("missing params.ref"))?;
    let view = g.view_for(session.project.as_deref());
    let server = match reference.get("type").and_then(Value::as_str) {
        Some("ref/prompt") => {
            let name = reference
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (server, original) = view
                .prompt_names
                .resolve(name)
                .filter(|(server, _)| session.filter.sees(server, name))
                .ok_or_else(|| ErrorObject::invalid_params(format!("Unknown prompt: {name}")))?;
            let mut reference = reference.clone();
            reference.insert("name".into(), Value::String(original.to_string()));
            params.insert("ref".into(), raw(&reference));
            server.to_string()
        }
        Some("ref/resource") => {
            let uri = reference
                .get("uri")
                .and_then(Value::as_str)
                .unwrap_or_default();
            view.resource_server(uri)
                .filter(|server| session.filter.sees(server, uri))
                .ok_or_else(|| ErrorObject::invalid_params(format!("Unknown resource: {uri}")))?
                .to_string()
        }
        _ => {
            return Err(ErrorObject::invalid_params(
                "ref.type must be ref/prompt or ref/resource",
            ));
        }
    };
    g.forward(session, sink, &r.id, &server, "completion/complete", params)
        .await
}
