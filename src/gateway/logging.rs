//! `logging/setLevel` per session: each session's level filters the log messages it is sent;
//! upstreams are asked for the most verbose level any session wants.

use super::{Gateway, params_map, string_param};
use crate::jsonrpc::{ErrorObject, raw};
use crate::session::Session;
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

/// The rank of a level name (debug = 0 … emergency = 7).
pub fn rank(level: &str) -> Option<u8> {
    LEVELS.iter().position(|l| *l == level).map(|i| i as u8)
}

/// The name of a level rank.
pub fn name(rank: u8) -> Option<&'static str> {
    LEVELS.get(rank as usize).copied()
}

/// Whether a `notifications/message` at `level` goes to `session`: at or above the level it
/// set; everything while it set none.
pub fn wanted(session: &Session, level: Option<&str>) -> bool {
    let want = *session.log_level.lock().unwrap_or_else(|e| e.into_inner());
    match (want, level.and_then(rank)) {
        (None, _) => true,
        (Some(want), Some(got)) => got >= want,
        (Some(_), None) => true,
    }
}

/// Records the session's level, then asks every upstream that offers logging for the most
/// verbose level any session wants: upstreams are shared, so each session's own level is
/// applied when messages are relayed (`wanted`), not by the upstream.
pub async fn set_level(
    g: &Gateway,
    session: &Session,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    let params = params_map(params)?;
    let level = string_param(&params, "level")?;
    let Some(rank) = rank(&level) else {
        return Err(ErrorObject::invalid_params(format!(
            "unknown level {level}"
        )));
    };
    *session.log_level.lock().unwrap_or_else(|e| e.into_inner()) = Some(rank);
    let most_verbose = g
        .sessions()
        .iter()
        .filter_map(|s| *s.log_level.lock().unwrap_or_else(|e| e.into_inner()))
        .min()
        .unwrap_or(rank);
    let body = raw(&json!({"level": LEVELS[most_verbose as usize]}));
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
