//! The one JSON-RPC 2.0 envelope type of the director.
//!
//! Payloads (`params`, `result`, `error.data`) stay [`RawValue`]s: the director forwards what it
//! does not need to inspect byte for byte, and parses only the fields it routes on.

use serde::de::Error as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Over the rate limit (stdio; HTTP answers 429). In the implementation-defined server range.
pub const RATE_LIMITED: i64 = -32029;

/// The deepest nesting of arrays and objects a message may have. serde_json refuses deeper
/// values only where it builds them; payloads the director forwards as raw JSON are checked
/// here, so no upstream (or client) is handed a 100,000-level document.
pub const MAX_DEPTH: usize = 128;

/// The deepest nesting of `[`/`{` in JSON text (strings skipped), in one pass.
fn nesting(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A request id: a string or an integer (JSON-RPC also allows other numbers; MCP does not).
pub type Id = Value;

#[derive(Debug, Clone)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub id: Id,
    pub method: String,
    pub params: Option<Box<RawValue>>,
}

#[derive(Debug, Clone)]
pub struct Notification {
    pub method: String,
    pub params: Option<Box<RawValue>>,
}

#[derive(Debug, Clone)]
pub struct Response {
    /// `null` only for errors about a message whose id could not be read.
    pub id: Id,
    pub outcome: Result<Box<RawValue>, ErrorObject>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }
    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(INTERNAL_ERROR, message)
    }
}

impl std::fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// Why bytes are not a message, with the error to answer.
#[derive(Debug)]
pub struct Invalid {
    /// The id, when it could be read (so the error response can carry it).
    pub id: Id,
    pub error: ErrorObject,
}

/// The wire shape read, deliberately loose: [`Message::parse`] classifies it.
#[derive(Deserialize)]
struct Wire {
    jsonrpc: Option<String>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    method: Option<String>,
    params: Option<Box<RawValue>>,
    result: Option<Box<RawValue>>,
    error: Option<Value>,
}

/// The wire shape written, borrowing every part of the message.
#[derive(Serialize, Default)]
struct Out<'a> {
    jsonrpc: Version,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorObject>,
}

/// `"2.0"`, always.
#[derive(Default)]
struct Version;

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("2.0")
    }
}

/// Distinguishes `"id": null` (Some(Null)) from a missing id (None).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl Message {
    /// Parses one message: malformed JSON → -32700, anything else that is not a JSON-RPC 2.0
    /// request, notification or response → -32600.
    pub fn parse(bytes: &[u8]) -> Result<Message, Box<Invalid>> {
        let invalid = |id: Id, msg: &str| {
            Box::new(Invalid {
                id,
                error: ErrorObject::new(INVALID_REQUEST, format!("Invalid Request: {msg}")),
            })
        };
        let parse_error = |e: serde_json::Error| {
            Box::new(Invalid {
                id: Value::Null,
                error: ErrorObject::new(PARSE_ERROR, format!("Parse error: {e}")),
            })
        };
        // One pass for what is an object (every message); anything else is checked for being
        // JSON at all first, so malformed text is always a parse error.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            serde_json::from_slice::<&RawValue>(bytes).map_err(parse_error)?;
            return Err(if first == Some(&b'[') {
                invalid(Value::Null, "batches are not supported")
            } else {
                invalid(Value::Null, "a message is a JSON object")
            });
        }
        if nesting(bytes) > MAX_DEPTH {
            return Err(invalid(
                Value::Null,
                &format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                parse_error(e)
            } else {
                invalid(Value::Null, &e.to_string())
            }
        })?;
        let id = wire.id.clone().unwrap_or(Value::Null);
        if wire.jsonrpc.as_deref() != Some("2.0") {
            return Err(invalid(id, "jsonrpc must be \"2.0\""));
        }
        if let Some(id) = &wire.id
            && !(id.is_string()
                || id.is_i64()
                || id.is_u64()
                || (id.is_null() && wire.method.is_none()))
        {
            return Err(invalid(Value::Null, "id must be a string or an integer"));
        }
        match (wire.method, wire.id, wire.result, wire.error) {
            (Some(method), id, None, None) => {
                if let Some(p) = &wire.params
                    && !matches!(p.get().trim_start().as_bytes().first(), Some(b'{' | b'['))
                {
                    return Err(invalid(
                        id.unwrap_or(Value::Null),
                        "params must be an object",
                    ));
                }
                Ok(match id {
                    Some(id) => Message::Request(Request {
                        id,
                        method,
                        params: wire.params,
                    }),
                    None => Message::Notification(Notification {
                        method,
                        params: wire.params,
                    }),
                })
            }
            (None, Some(id), Some(result), None) => Ok(Message::Response(Response {
                id,
                outcome: Ok(result),
            })),
            (None, Some(id), None, Some(error)) => {
                let error: ErrorObject = serde_json::from_value(error)
                    .map_err(|_| invalid(id.clone(), "malformed error object"))?;
                Ok(Message::Response(Response {
                    id,
                    outcome: Err(error),
                }))
            }
            (_, id, _, _) => Err(invalid(
                id.unwrap_or(Value::Null),
                "neither a request, a notification nor a response",
            )),
        }
    }

    /// The wire form. Payloads are borrowed, never copied: only the envelope is written.
    pub fn to_json(&self) -> String {
        let wire = match self {
            Message::Request(r) => Out {
                id: Some(&r.id),
                method: Some(&r.method),
                params: r.params.as_deref(),
                ..Out::default()
            },
            Message::Notification(n) => Out {
                method: Some(&n.method),
                params: n.params.as_deref(),
                ..Out::default()
            },
            Message::Response(r) => Out {
                id: Some(&r.id),
                result: r.outcome.as_ref().ok().map(|v| &**v),
                error: r.outcome.as_ref().err(),
                ..Out::default()
            },
        };
        serde_json::to_string(&wire).expect("messages serialise")
    }

    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(r) => Some(&r.method),
            Message::Notification(n) => Some(&n.method),
            Message::Response(_) => None,
        }
    }
}

impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.to_json()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Message::parse(raw.get().as_bytes()).map_err(|e| D::Error::custom(e.error.message))
    }
}

impl Response {
    pub fn ok(id: Id, result: Box<RawValue>) -> Self {
        Self {
            id,
            outcome: Ok(result),
        }
    }
    pub fn err(id: Id, error: ErrorObject) -> Self {
        Self {
            id,
            outcome: Err(error),
        }
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Message::Response(r)
    }
}

impl From<Notification> for Message {
    fn from(n: Notification) -> Self {
        Message::Notification(n)
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Message::Request(r)
    }
}

/// Serialises a value into a raw payload.
pub fn raw<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("payloads serialise")
}

/// `params` with these `_meta` entries added (`keep`: an entry already there stays, else it is
/// replaced); everything else as it was.
pub fn with_meta(
    params: Option<&RawValue>,
    entries: impl IntoIterator<Item = (&'static str, serde_json::Value)>,
    keep: bool,
) -> Box<RawValue> {
    use serde_json::{Map, Value};
    let mut params: Map<String, Value> = params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default();
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        for (key, value) in entries {
            if !(keep && meta.contains_key(key)) {
                meta.insert(key.into(), value);
            }
        }
    }
    raw(&params)
}

/// Parses a raw payload (absent = `{}`) into `T`, as an invalid-params error if it does not fit.
pub fn params<T: serde::de::DeserializeOwned>(params: Option<&RawValue>) -> Result<T, ErrorObject> {
    let text = params.map_or("{}", RawValue::get);
    serde_json::from_str(text)
        .map_err(|e| ErrorObject::invalid_params(format!("Invalid params: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(bytes: &str) -> i64 {
        Message::parse(bytes.as_bytes()).unwrap_err().error.code
    }

    #[test]
    fn classification() {
        assert_eq!(code("{not json"), PARSE_ERROR);
        assert_eq!(code(""), PARSE_ERROR);
        assert_eq!(code("[]"), INVALID_REQUEST);
        assert_eq!(code("3"), INVALID_REQUEST);
        assert_eq!(
            code(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#),
            INVALID_REQUEST
        );
        assert_eq!(code(r#"{"id":1,"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#),
            INVALID_REQUEST
        );
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1}"#), INVALID_REQUEST);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#),
            INVALID_REQUEST
        );
        let bad = Message::parse(br#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#).unwrap_err();
        assert_eq!(bad.id, serde_json::json!(7));
        assert!(matches!(
            Message::parse(br#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#),
            Ok(Message::Request(_))
        ));
        assert!(matches!(
            Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification(_))
        ));
        assert!(matches!(
            Message::parse(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
            Ok(Message::Response(Response { outcome: Ok(_), .. }))
        ));
        assert!(matches!(
            Message::parse(br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#),
            Ok(Message::Response(Response {
                outcome: Err(_),
                ..
            }))
        ));
    }

    #[test]
    fn deep_nesting_is_refused_and_brackets_in_strings_do_not_count() {
        let deep = |n: usize| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","arguments":{{"a":{}{}}}}}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(Message::parse(deep(100).as_bytes()).is_ok());
        assert_eq!(code(&deep(100_000)), INVALID_REQUEST);
        let strings = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"s":"{}\"{}"}}}}"#,
            "[".repeat(1000),
            "{".repeat(1000)
        );
        assert!(Message::parse(strings.as_bytes()).is_ok());
    }

    #[test]
    fn payloads_are_forwarded_byte_for_byte() {
        let text = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"x","arguments":{"b":1.50,"a":[1e3,"\u00e9"]},"_meta":{"progressToken":"p"}}}"#;
        let msg = Message::parse(text.as_bytes()).unwrap();
        let Message::Request(r) = &msg else { panic!() };
        assert_eq!(
            r.params.as_ref().unwrap().get(),
            r#"{"name":"x","arguments":{"b":1.50,"a":[1e3,"\u00e9"]},"_meta":{"progressToken":"p"}}"#
        );
        assert_eq!(msg.to_json(), text);
    }
}
