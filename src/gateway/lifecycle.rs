//! `initialize` (version negotiation, capabilities) and `server/discover`.

use super::Gateway;
use crate::jsonrpc::{ErrorObject, METHOD_NOT_FOUND, raw};
use crate::session::{ClientCapabilities, Session};
use crate::version::Version;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;

/// Protocol versions the director serves to clients, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The version to use with a client that asked for `requested`: the same when supported,
/// otherwise the director's default (the client then decides whether it can continue).
pub fn negotiate(requested: &str, default: Version) -> Version {
    Version::parse(requested)
        .filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str()))
        .unwrap_or(default)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitializeParams {
    protocol_version: String,
    #[serde(default)]
    capabilities: serde_json::Map<String, Value>,
}

pub fn initialize(
    g: &Gateway,
    session: &Arc<Session>,
    params: Option<&RawValue>,
) -> Result<Box<RawValue>, ErrorObject> {
    let p: InitializeParams = crate::jsonrpc::params(params)?;
    let settings = g.settings();
    let default = Version::parse(&settings.settings.default_protocol_version.to_string())
        .unwrap_or(Version::V2025_11_25);
    let version = negotiate(&p.protocol_version, default);
    {
        let mut n = session
            .negotiated
            .write()
            .unwrap_or_else(|e| e.into_inner());
        n.version = version;
        n.capabilities = ClientCapabilities::from_map(&p.capabilities);
    }
    let mut result = json!({
        "protocolVersion": version.as_str(),
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
    if g.store.is_some() && version >= Version::V2025_11_25 {
        result["capabilities"]["tasks"] =
            json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}});
    }
    if let Some(text) = instructions(g, session) {
        result["instructions"] = Value::String(text);
    }
    Ok(raw(&result))
}

/// The instructions of the servers the session can see (through its project's instances),
/// each under its name; `None` when none has any.
pub fn instructions(g: &Gateway, session: &Session) -> Option<String> {
    let settings = g.settings();
    let parts: Vec<String> = settings
        .servers
        .keys()
        .filter(|server| session.filter.sees_server(server))
        .filter_map(|server| g.pool.instance(server, session.project.as_deref()))
        .filter_map(|u| {
            let text = u.status().info?.instructions?;
            Some(format!("## {}\n{}", u.server, text.trim()))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "MCP Director serves the tools, prompts and resources of several servers; tool and \
             prompt names are prefixed with their server.\n\n{}",
            parts.join("\n\n")
        )
    })
}

/// `server/discover` belongs to the 2026-07-28 protocol, which the director does not serve
/// yet; "method not found" makes clients that try it first fall back to `initialize`.
pub fn discover_unsupported() -> ErrorObject {
    ErrorObject::new(METHOD_NOT_FOUND, "Method not found: server/discover").with_data(json!({
        "supportedVersions": SUPPORTED_VERSIONS,
    }))
}
