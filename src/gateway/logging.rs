//! `logging/setLevel`, fanned out to every running upstream that offers logging.

use super::{Gateway, params_map, string_param};
use crate::jsonrpc::{ErrorObject, raw};
use serde_json::json;
use serde_json::value::RawValue;

const LEVELS: &[&str] = &[
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

pub async fn set_level(
    g: &Gateway,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    let params = params_map(params)?;
    let level = string_param(&params, "level")?;
    if !LEVELS.contains(&level.as_str()) {
        return Err(ErrorObject::invalid_params(format!(
            "unknown level {level}"
        )));
    }
    let body = raw(&params);
    let calls = g
        .pool
        .all()
        .into_iter()
        .filter(|u| {
            u.status()
                .info
                .is_some_and(|i| i.capabilities.contains_key("logging"))
        })
        .map(|u| {
            let body = body.clone();
            async move {
                if let Err(e) = u.request("logging/setLevel", Some(body)).await {
                    tracing::debug!(server = %u.name, error = %e, "logging/setLevel failed");
                }
            }
        });
    futures::future::join_all(calls).await;
    Ok(raw(&json!({})))
}
