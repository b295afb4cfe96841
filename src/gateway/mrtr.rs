//! Multi round-trip requests for 2026-07-28 clients. A 2026 client cannot be sent requests;
//! when the upstream serving its call asks something (sampling, elicitation, roots), the
//! director answers the call with an `InputRequiredResult` and keeps the upstream call waiting
//! ("parked"); the client's retry, carrying `inputResponses` and the `requestState` it was
//! given, resumes that very call. The state is the director's: a handle to the parked call,
//! bound to the caller's identity, the call's method and name, and an expiry, under a keyed
//! MAC, so a tampered, expired or foreign state is refused and never reaches another call.

use crate::jsonrpc::{ErrorObject, raw};
use crate::session::{RequestStream, Session};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a parked call waits for its retry.
pub const PARKED_FOR: Duration = Duration::from_secs(300);

/// A call waiting for its client's answers.
pub struct Parked {
    pub session: Arc<Session>,
    pub stream: Arc<RequestStream>,
    /// The next message of `stream` not yet given to the client.
    pub next: u64,
    /// Input requests asked and not answered yet.
    pub pending: Questions,
    /// What the state was issued for: the method and `name`/`uri` of the call.
    pub call: String,
    pub until: Instant,
}

/// The parked calls of this process, and the key their states are signed with.
pub struct Calls {
    key: [u8; 32],
    parked: Mutex<HashMap<String, Parked>>,
}

impl Default for Calls {
    /// With the replicas' shared secret (`cluster::secret`), states signed by one replica verify
    /// on every other (a 2026 upstream's state can be retried through any replica); without
    /// it, each process signs with a key of its own.
    fn default() -> Self {
        Self::keyed(crate::cluster::secret())
    }
}

impl Calls {
    /// Signing with a key derived from `secret` (one of the process's own when `None`).
    fn keyed(secret: Option<&str>) -> Self {
        let mut key = [0u8; 32];
        match secret.filter(|s| !s.is_empty()) {
            Some(secret) => {
                use sha2::Digest;
                let derived = Sha256::digest(format!("mcp-director requestState\0{secret}"));
                key.copy_from_slice(&derived);
            }
            None => rand_bytes(&mut key),
        }
        Self {
            key,
            parked: Mutex::default(),
        }
    }
}

fn rand_bytes(out: &mut [u8]) {
    use base64::Engine;
    // 256 bits from the OS CSPRNG, through the one helper the crate has for it.
    let token = crate::secrets::random_token();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .unwrap_or_default();
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b;
    }
}

/// What a state says, once its MAC checks out.
#[derive(Serialize, Deserialize)]
struct Claims {
    /// The parked call (empty when the state is an upstream's, `u`).
    h: String,
    /// A 2026 upstream's own `requestState`, carried for its retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<String>,
    /// SHA-256 of the caller's identity.
    p: String,
    /// The method and name of the call.
    c: String,
    /// Expiry, ms since the epoch.
    e: i64,
}

/// Why a `requestState` is refused.
fn refused(why: &str) -> ErrorObject {
    ErrorObject::invalid_params(format!("requestState refused: {why}"))
}

impl Calls {
    fn mac(&self, payload: &str) -> String {
        use base64::Engine;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(payload.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    fn sign(&self, claims: &Claims) -> String {
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(claims).unwrap_or_default());
        let mac = self.mac(&payload);
        format!("{payload}.{mac}")
    }

    /// The claims of a state, if it is ours, untampered, unexpired, and was issued to
    /// `principal` for `call`.
    fn verify(&self, state: &str, principal: &str, call: &str) -> Result<Claims, ErrorObject> {
        use base64::Engine;
        let (payload, mac) = state
            .split_once('.')
            .ok_or_else(|| refused("not one this director issued"))?;
        let want = self.mac(payload);
        if !crate::secrets::ct_eq(&want, mac) {
            return Err(refused("integrity check failed"));
        }
        let claims: Claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| refused("unreadable"))?;
        if claims.e < crate::analytics::now_ms() {
            return Err(refused("expired"));
        }
        if !crate::secrets::ct_eq(&claims.p, &crate::secrets::sha256_hex(principal)) {
            return Err(refused("issued to another caller"));
        }
        if claims.c != call {
            return Err(refused("issued for another call"));
        }
        Ok(claims)
    }

    /// A 2026 upstream's `requestState`, wrapped for the client: bound to `principal`, `call`
    /// and an expiry, so a client can only retry its own call with it.
    pub fn wrap(&self, upstream_state: &str, principal: &str, call: &str) -> String {
        self.sign(&Claims {
            h: String::new(),
            u: Some(upstream_state.to_string()),
            p: crate::secrets::sha256_hex(principal),
            c: call.to_string(),
            e: crate::analytics::now_ms() + PARKED_FOR.as_millis() as i64,
        })
    }

    /// Parks a call and answers its `InputRequiredResult`: the requests asked so far (and
    /// still unanswered), and a state naming the call.
    pub fn park(&self, principal: &str, parked: Parked) -> Box<RawValue> {
        // Names this replica, as a session id does: a retry landing elsewhere is sent here.
        let handle = crate::session::new_id();
        let claims = Claims {
            h: handle.clone(),
            u: None,
            p: crate::secrets::sha256_hex(principal),
            c: parked.call.clone(),
            e: crate::analytics::now_ms() + PARKED_FOR.as_millis() as i64,
        };
        let result = input_required(&parked.pending.input_requests(), self.sign(&claims));
        let mut calls = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        calls.retain(|_, p| p.until > Instant::now());
        calls.insert(handle, parked);
        result
    }

    /// What a retry's state names: a parked call (taken: the retry now serves it), or the state
    /// of a 2026 upstream to hand back to it.
    pub fn resume(&self, state: &str, principal: &str, call: &str) -> Result<Resumed, ErrorObject> {
        let claims = self.verify(state, principal, call)?;
        if let Some(upstream) = claims.u {
            return Ok(Resumed::Upstream(upstream));
        }
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&claims.h)
            .filter(|p| p.until > Instant::now())
            .map(Resumed::Parked)
            .ok_or_else(|| refused("the call it belongs to is over (or waits on another replica)"))
    }

    /// Calls whose client did not come back in time: their sessions end (their upstream
    /// requests are cancelled).
    pub fn expired(&self) -> Vec<Arc<Session>> {
        let mut calls = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let gone: Vec<String> = calls
            .iter()
            .filter(|(_, p)| p.until <= now)
            .map(|(h, _)| h.clone())
            .collect();
        gone.into_iter()
            .filter_map(|h| calls.remove(&h))
            .map(|p| p.session)
            .collect()
    }
}

/// The prefix of the replica holding the call a state names (`cluster::PREFIX`), read without
/// checking the MAC: it only routes the retry, and the holder checks the state.
pub fn holder(state: &str) -> Option<String> {
    use base64::Engine;
    let (payload, _) = state.split_once('.')?;
    let claims: Claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())?;
    let (prefix, _) = claims.h.split_once('.')?;
    Some(prefix.to_string())
}

/// What a valid `requestState` leads to.
pub enum Resumed {
    Parked(Parked),
    /// A 2026 upstream's own state: the retry goes to it with this state in place of ours.
    Upstream(String),
}

/// `{resultType: "input_required", inputRequests, requestState}`, from the generated type.
fn input_required(requests: &Map<String, Value>, state: String) -> Box<RawValue> {
    use mcp_director_protocol::v2026_07_28 as p;
    let requests = requests.clone();
    let result = p::InputRequiredResult {
        input_requests: serde_json::from_value(Value::Object(requests)).ok(),
        meta: None,
        request_state: Some(state),
        result_type: "input_required".into(),
        extra: Map::new(),
    };
    raw(&result)
}

/// Questions an upstream asked a 2026 client and that are not answered yet: the key the
/// client sees, the id the director relayed them under (its answer goes back by it), and the
/// input request itself.
#[derive(Default)]
pub struct Questions(BTreeMap<String, (i64, Value)>);

impl Questions {
    /// Takes in a relayed request. Its key is the upstream's own request id when that is a
    /// string (a server names its questions, and may expect answers under those names), unless
    /// taken; else the director's id.
    pub fn ask(&mut self, session: &Session, r: &crate::jsonrpc::Request) {
        let Some(id) = r.id.as_i64() else { return };
        let named = session
            .relayed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .and_then(|rel| match &rel.to {
                crate::session::AnswerTo::Upstream { upstream_id, .. } => {
                    upstream_id.as_str().map(str::to_string)
                }
                _ => None,
            })
            .filter(|name| !self.0.contains_key(name) && name.parse::<i64>().is_err());
        let key = named.unwrap_or_else(|| id.to_string());
        self.0
            .insert(key, (id, input_request(&r.method, r.params.as_deref())));
    }

    /// The director's id of the question `key`, which is then answered (None: not asked, or
    /// answered already).
    pub fn answer(&mut self, key: &str) -> Option<i64> {
        self.0.remove(key).map(|(id, _)| id)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `inputRequests` as the client gets them.
    pub fn input_requests(&self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect()
    }
}

/// An input request as a 2026 client gets it: the server request's method and params, without
/// the director's own bookkeeping.
pub fn input_request(method: &str, params: Option<&RawValue>) -> Value {
    let params: Value = params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or(json!({}));
    json!({ "method": method, "params": params })
}

/// A retry's `inputResponses` and `requestState` (absent: not a retry).
pub struct Retry {
    pub state: String,
    pub responses: Map<String, Value>,
}

impl Retry {
    /// Reads them from a request's params; malformed ones are invalid params.
    pub fn of(params: Option<&RawValue>) -> Result<Option<Retry>, ErrorObject> {
        #[derive(Deserialize)]
        struct P {
            #[serde(rename = "requestState")]
            state: Option<Value>,
            #[serde(rename = "inputResponses", default)]
            responses: Option<Value>,
        }
        let Some(p) = params.and_then(|p| serde_json::from_str::<P>(p.get()).ok()) else {
            return Ok(None);
        };
        let state = match p.state {
            // Answers to nothing this director asked: ignored, as the spec says of unknown
            // keys (the call is served anew and asks again what it needs).
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s,
            Some(_) => return Err(ErrorObject::invalid_params("requestState must be a string")),
        };
        let responses = match p.responses {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(ErrorObject::invalid_params(
                    "inputResponses must be an object",
                ));
            }
        };
        if let Some((key, _)) = responses.iter().find(|(_, v)| !v.is_object()) {
            return Err(ErrorObject::invalid_params(format!(
                "inputResponses[{key:?}] must be an object"
            )));
        }
        Ok(Some(Retry { state, responses }))
    }
}

/// A retry's params for a 2026 upstream: the director's `requestState` replaced by the
/// upstream's own, the answers kept.
pub fn with_state(params: Option<&RawValue>, upstream_state: &str) -> Box<RawValue> {
    let mut params: Map<String, Value> = params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default();
    params.insert("requestState".into(), json!(upstream_state));
    raw(&params)
}

/// An upstream result that asks for input (`resultType: "input_required"`): its requests and
/// its state.
pub fn asks(result: &RawValue) -> Option<(Map<String, Value>, Option<String>)> {
    #[derive(Deserialize)]
    struct R {
        #[serde(rename = "resultType")]
        result_type: Option<String>,
        #[serde(rename = "inputRequests", default)]
        requests: Map<String, Value>,
        #[serde(rename = "requestState")]
        state: Option<String>,
    }
    // Every call's result passes here: most are not questions, and say so without a parse.
    memchr::memmem::find(result.get().as_bytes(), b"input_required")?;
    let r: R = serde_json::from_str(result.get()).ok()?;
    (r.result_type.as_deref() == Some("input_required")).then_some((r.requests, r.state))
}

/// What a call is, for binding its state: the method and the `name` or `uri` it addresses.
pub fn call_of(method: &str, params: Option<&RawValue>) -> String {
    let target = params
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
        .and_then(|p| {
            p.get("name")
                .or_else(|| p.get("uri"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    format!("{method} {target}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_bound_to_caller_call_and_integrity() {
        let calls = Calls::keyed(None);
        let claims = Claims {
            h: "handle".into(),
            u: None,
            p: crate::secrets::sha256_hex("alice"),
            c: "tools/call x".into(),
            e: crate::analytics::now_ms() + 60_000,
        };
        let state = calls.sign(&claims);
        assert_eq!(
            calls.verify(&state, "alice", "tools/call x").unwrap().h,
            "handle"
        );
        assert!(calls.verify(&state, "mallory", "tools/call x").is_err());
        assert!(calls.verify(&state, "alice", "tools/call y").is_err());
        assert!(
            calls
                .verify(&format!("{state}-TAMPERED"), "alice", "tools/call x")
                .is_err()
        );
        let other = Calls::keyed(None);
        assert!(
            other.verify(&state, "alice", "tools/call x").is_err(),
            "another key"
        );
        // Replicas sharing a secret verify each other's states; a different secret does not.
        let (one, two) = (Calls::keyed(Some("s3cret")), Calls::keyed(Some("s3cret")));
        let shared = one.wrap("upstream-state", "alice", "tools/call x");
        let claims = two.verify(&shared, "alice", "tools/call x").unwrap();
        assert_eq!(claims.u.as_deref(), Some("upstream-state"));
        assert!(
            Calls::keyed(Some("other"))
                .verify(&shared, "alice", "tools/call x")
                .is_err()
        );
        let expired = calls.sign(&Claims {
            e: crate::analytics::now_ms() - 1,
            ..claims
        });
        assert!(calls.verify(&expired, "alice", "tools/call x").is_err());
    }
}
