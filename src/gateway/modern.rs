//! MCP 2026-07-28 at the gateway. A request carries its version and the client's capabilities
//! in `_meta` (no handshake, no session); the methods the revision removed are unknown; every
//! result says its `resultType` and names the server, and lists and reads carry caching hints.
//! What the director itself says is built from the generated protocol types of that revision.

use super::Gateway;
use crate::jsonrpc::{ErrorObject, METHOD_NOT_FOUND, raw};
use crate::session::Session;
use crate::version::Version;
use mcp_director_protocol::v2026_07_28 as p;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::borrow::Cow;

/// A header does not match the body, or a required one is missing or malformed.
pub const HEADER_MISMATCH: i64 = -32020;
/// The request needs a client capability it did not declare.
pub const MISSING_CAPABILITY: i64 = -32021;
/// The request's protocol version is not one the director serves this way.
pub const UNSUPPORTED_VERSION: i64 = -32022;

pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
pub const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";

/// The revisions served as stateless requests; older ones are reached through `initialize`.
pub const STATELESS_VERSIONS: &[Version] = &[Version::V2026_07_28];

/// How long a client may reuse a list the director answers (a list_changed notification on
/// `subscriptions/listen` says when to drop it sooner).
const LIST_TTL_MS: u64 = 60_000;

/// What a 2026 request says about itself in `params._meta`.
#[derive(Debug, Default, Deserialize)]
pub struct RequestMeta {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
    pub version: Option<Value>,
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities")]
    pub capabilities: Option<Value>,
    #[serde(rename = "io.modelcontextprotocol/logLevel")]
    pub log_level: Option<Value>,
}

impl RequestMeta {
    /// The `_meta` of `params` (absent or unreadable: empty).
    pub fn of(params: Option<&RawValue>) -> (bool, RequestMeta) {
        #[derive(Deserialize)]
        struct P {
            #[serde(rename = "_meta")]
            meta: Option<RequestMeta>,
        }
        match params.and_then(|p| serde_json::from_str::<P>(p.get()).ok()) {
            Some(P { meta: Some(m) }) => (true, m),
            _ => (false, RequestMeta::default()),
        }
    }

    pub fn version(&self) -> Option<&str> {
        self.version.as_ref().and_then(Value::as_str)
    }
}

/// The director's identity, as 2026 results carry it.
pub fn server_info() -> p::Implementation {
    p::Implementation {
        name: "mcp-director".into(),
        title: Some("MCP Director".into()),
        version: env!("CARGO_PKG_VERSION").into(),
        description: None,
        icons: None,
        website_url: None,
        extra: Map::new(),
    }
}

/// `-32022`: the versions the director serves statelessly, and what was asked.
pub fn unsupported_version(requested: &str) -> ErrorObject {
    let data = p::UnsupportedProtocolVersionErrorErrorData {
        requested: requested.to_string(),
        supported: STATELESS_VERSIONS.iter().map(|v| v.to_string()).collect(),
        extra: Map::new(),
    };
    ErrorObject::new(UNSUPPORTED_VERSION, "Unsupported protocol version")
        .with_data(serde_json::to_value(data).unwrap_or_default())
}

/// `-32601` for what 2026 removed (`initialize`, `ping`, `logging/setLevel`, subscribe …) or
/// never had.
pub fn method_not_found(method: &str) -> ErrorObject {
    ErrorObject::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
}

/// Whether a session's answers depend on who asks (its profile, project or credential): its
/// lists are then `private` to that authorization context.
fn private(session: &Session) -> bool {
    session.profile.is_some() || session.project.is_some() || session.credential().is_some()
}

fn empty() -> p::JsonObject {
    p::JsonObject(Default::default())
}

/// `server/discover`: the revisions, capabilities and identity of the director.
pub fn discover(g: &Gateway, session: &Session) -> Result<Box<RawValue>, ErrorObject> {
    let capabilities = p::ServerCapabilities {
        completions: Some(empty()),
        experimental: None,
        // Tasks need the store (not there on stdio).
        extensions: g.store.as_ref().map(|_| {
            [(crate::session::TASKS_EXTENSION.to_string(), empty())]
                .into_iter()
                .collect()
        }),
        logging: Some(empty()),
        prompts: Some(p::ServerCapabilitiesPrompts {
            list_changed: Some(true),
            extra: Map::new(),
        }),
        resources: Some(p::ServerCapabilitiesResources {
            list_changed: Some(true),
            subscribe: Some(true),
            extra: Map::new(),
        }),
        tools: Some(p::ServerCapabilitiesTools {
            list_changed: Some(true),
            extra: Map::new(),
        }),
        extra: Map::new(),
    };
    let result = p::DiscoverResult {
        cache_scope: if private(session) {
            p::DiscoverResultCacheScope::Private
        } else {
            p::DiscoverResultCacheScope::Public
        },
        capabilities,
        instructions: super::lifecycle::instructions(g, session),
        meta: Some(p::ResultMetaObject {
            io_modelcontextprotocol_server_info: Some(server_info()),
            extra: Map::new(),
        }),
        result_type: "complete".into(),
        // Newest first: every version served here (older ones through `initialize`).
        supported_versions: Version::ALL.iter().rev().map(|v| v.to_string()).collect(),
        ttl_ms: LIST_TTL_MS,
        extra: Map::new(),
    };
    Ok(raw(&result))
}

/// The caching hints a `method`'s complete result must carry (`None`: none required).
fn caching(method: &str, session: &Session) -> Option<(u64, &'static str)> {
    let scope = if private(session) {
        "private"
    } else {
        "public"
    };
    match method {
        "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" => {
            Some((LIST_TTL_MS, scope))
        }
        // What an upstream answers is the upstream's to say; nothing said: not to be reused.
        "resources/read" => Some((0, "private")),
        _ => None,
    }
}

/// A result as a 2026 client must get it: `resultType` (a legacy upstream's result is
/// `complete`, as the spec has clients read it anyway), the director named in `_meta`, and
/// caching hints where the method has them (an upstream's own are kept).
pub fn finish(method: &str, session: &Session, result: Box<RawValue>) -> Box<RawValue> {
    let Ok(fields) =
        serde_json::from_str::<indexmap::IndexMap<Cow<'_, str>, &RawValue>>(result.get())
    else {
        return result;
    };
    let result_type = fields.get("resultType").map(|v| v.get());
    let complete = result_type.is_none_or(|t| t == "\"complete\"");
    let mut out = String::with_capacity(result.get().len() + 128);
    out.push('{');
    let mut field = |key: &str, value: &str| {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(key).unwrap_or_default());
        out.push(':');
        out.push_str(value);
    };
    field("resultType", result_type.unwrap_or("\"complete\""));
    for (k, v) in &fields {
        if k != "resultType" && k != "_meta" {
            field(k, v.get());
        }
    }
    if complete && let Some((ttl, scope)) = caching(method, session) {
        if !fields.contains_key("ttlMs") {
            field("ttlMs", &ttl.to_string());
        }
        if !fields.contains_key("cacheScope") {
            field("cacheScope", &format!("\"{scope}\""));
        }
    }
    let mut meta: Map<String, Value> = fields
        .get("_meta")
        .and_then(|m| serde_json::from_str(m.get()).ok())
        .unwrap_or_default();
    meta.entry(META_SERVER_INFO)
        .or_insert_with(|| serde_json::to_value(server_info()).unwrap_or_default());
    field("_meta", &serde_json::to_string(&meta).unwrap_or_default());
    out.push('}');
    RawValue::from_string(out).unwrap_or(result)
}

/// The log level a 2026 request asked for (`None`: no log messages for it at all).
pub fn log_level(meta: &RequestMeta) -> Result<Option<u8>, ErrorObject> {
    match &meta.log_level {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(level)) => super::logging::rank(level)
            .map(Some)
            .ok_or_else(|| ErrorObject::invalid_params(format!("Unknown log level: {level}"))),
        Some(other) => Err(ErrorObject::invalid_params(format!(
            "Invalid log level: {other}"
        ))),
    }
}

/// `-32021`: what the request would need that its client did not declare.
pub fn missing_capability(required: Value) -> ErrorObject {
    ErrorObject::new(MISSING_CAPABILITY, "Missing required client capability")
        .with_data(json!({ "requiredCapabilities": required }))
}
