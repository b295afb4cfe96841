//! `initialize` (version negotiation, capabilities) and `server/discover`.

use super::Gateway;
use crate::jsonrpc::{ErrorObject, METHOD_NOT_FOUND, raw};
use crate::session::Session;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;

/// Protocol versions the director serves to clients, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The version to use with a client that asked for `requested`: the same when supported,
/// otherwise the director's default (the client then decides whether it can continue).
pub fn negotiate(requested: &str, default: &str) -> String {
    if SUPPORTED_VERSIONS.contains(&requested) {
        requested.to_string()
    } else {
        default.to_string()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitializeParams {
    protocol_version: String,
    #[serde(default)]
    capabilities: serde_json::Map<String, Value>,
    #[serde(default)]
    client_info: Value,
}

pub fn initialize(
    g: &Gateway,
    session: &Arc<Session>,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    let p: InitializeParams = crate::jsonrpc::params(params)?;
    let settings = g.settings();
    let version = negotiate(
        &p.protocol_version,
        &settings.settings.default_protocol_version.to_string(),
    );
    {
        let mut n = session
            .negotiated
            .write()
            .unwrap_or_else(|e| e.into_inner());
        n.version = version.clone();
        n.client_capabilities = p.capabilities;
        n.client_info = p.client_info;
    }
    let instructions: Vec<String> = g
        .pool
        .all()
        .iter()
        .filter_map(|u| {
            let text = u.status().info?.instructions?;
            Some(format!("## {}\n{}", u.name, text.trim()))
        })
        .collect();
    let mut result = json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": true},
            "prompts": {"listChanged": true},
            "resources": {"subscribe": true, "listChanged": true},
            "logging": {},
            "completions": {},
        },
        "serverInfo": {
            "name": "mcp-director",
            "title": "MCP Director",
            "version": env!("CARGO_PKG_VERSION"),
        },
    });
    // Tasks arrived with 2025-11-25; they need the store (not on stdio).
    if g.store.is_some() && version.as_str() >= "2025-11-25" {
        result["capabilities"]["tasks"] =
            json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}});
    }
    if !instructions.is_empty() {
        result["instructions"] = Value::String(format!(
            "MCP Director serves the tools, prompts and resources of several servers; tool and \
             prompt names are prefixed with their server.\n\n{}",
            instructions.join("\n\n")
        ));
    }
    Ok(raw(&result))
}

/// `server/discover` belongs to the 2026-07-28 protocol, which the director does not serve
/// yet; "method not found" makes clients that try it first fall back to `initialize`.
pub fn discover_unsupported() -> ErrorObject {
    ErrorObject::new(METHOD_NOT_FOUND, "Method not found: server/discover").with_data(json!({
        "supportedVersions": SUPPORTED_VERSIONS,
    }))
}
