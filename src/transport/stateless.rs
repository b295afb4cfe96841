//! A 2026-07-28 request, served the same on every transport: in a session that lives as long
//! as the request, telling the client what it causes (progress, log messages at the level it
//! asked for) as it comes, then its response. An upstream that asks the client something
//! (sampling, elicitation, roots) parks the call: the answer is then an `InputRequiredResult`
//! (see `gateway/mrtr.rs`), and the retry resumes it. Transports only frame what `Serving`
//! says (HTTP: JSON or SSE; stdio: lines).

use crate::gateway::Gateway;
use crate::gateway::modern;
use crate::gateway::mrtr;
use crate::jsonrpc::{ErrorObject, Message, Request, Response as RpcResponse};
use crate::profile::Scope;
use crate::session::{Session, Sink, TransportKind};
use crate::version::Version;
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;

/// What a new 2026 request is served with: who asks, what the client can be asked (its
/// `clientCapabilities`), and the log level it wants (`None`: no log messages).
pub struct Fresh {
    pub scope: Scope,
    pub capabilities: Value,
    pub log_level: Option<u8>,
}

/// Ends a request's session however the request ends (answered, or its client gone).
pub struct Ephemeral {
    gateway: Arc<Gateway>,
    id: Arc<str>,
}

impl Drop for Ephemeral {
    fn drop(&mut self) {
        let (gateway, id) = (self.gateway.clone(), self.id.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                gateway.remove_session(&id).await;
            });
        }
    }
}

/// The session of one 2026 request, registered (so upstream messages can find it) until the
/// guard is dropped.
pub fn open(gateway: &Arc<Gateway>, fresh: Fresh) -> (Arc<Session>, Ephemeral) {
    let session = Session::new(
        crate::session::new_id(),
        TransportKind::Stateless,
        fresh.scope,
    );
    {
        let mut n = session
            .negotiated
            .write()
            .unwrap_or_else(|e| e.into_inner());
        n.version = Version::V2026_07_28;
        n.capabilities = crate::session::ClientCapabilities::from_map(
            fresh
                .capabilities
                .as_object()
                .unwrap_or(&serde_json::Map::new()),
        );
        n.initialized = true;
    }
    // Without a level asked for, no log message at all (u8::MAX: none is that severe).
    *session.log_level.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(fresh.log_level.unwrap_or(u8::MAX));
    gateway.add_session(session.clone());
    let guard = Ephemeral {
        gateway: gateway.clone(),
        id: session.id.clone(),
    };
    (session, guard)
}

/// Serves `request` in `session`; the work runs while the `Serving` is driven (dropping it
/// cancels the request), and the guard ends the session with the work.
pub fn serve(
    gateway: &Arc<Gateway>,
    session: Arc<Session>,
    request: Request,
    guard: Ephemeral,
) -> Serving {
    let g = gateway.clone();
    let stream = session.request_stream();
    let sink = Sink {
        request_stream: Some(stream.clone()),
        session: session.clone(),
        task: None,
    };
    let answered = stream.clone();
    let call = mrtr::call_of(&request.method, request.params.as_deref());
    let id = request.id.clone();
    let worker_session = session.clone();
    let work: Work = Box::pin(async move {
        let _guard = guard;
        if let Some(response) = g
            .handle(&worker_session, Message::Request(request), sink)
            .await
        {
            let _ = answered.push(response.into());
        }
    });
    Serving {
        gateway: gateway.clone(),
        session,
        stream,
        next: 0,
        work: Some(work),
        id,
        call,
        pending: mrtr::Questions::default(),
    }
}

/// The answers and state of a retry, for the methods that take them (a task's answers come
/// through `tasks/update`); `None` for a first call.
pub fn retry_of(r: &Request) -> Result<Option<mrtr::Retry>, ErrorObject> {
    match r.method.as_str() {
        "tools/call" | "prompts/get" | "resources/read" => mrtr::Retry::of(r.params.as_deref()),
        _ => Ok(None),
    }
}

/// Where a retry leads.
pub enum Retried {
    /// The parked call, its answers delivered: serving goes on under the retry's id.
    Resumed(Serving),
    /// A 2026 upstream's own state: the retry is a new request to it, carrying that state.
    Anew(Request),
}

/// A retry of a parked call: its answers go upstream, and the call goes on being answered
/// (the rest of it, on this request, under this request's id). `principal`: the caller.
pub async fn resume(
    gateway: &Arc<Gateway>,
    mut r: Request,
    retry: mrtr::Retry,
    principal: &str,
) -> Result<Retried, ErrorObject> {
    let call = mrtr::call_of(&r.method, r.params.as_deref());
    let mut parked = match gateway.calls.resume(&retry.state, principal, &call)? {
        mrtr::Resumed::Parked(parked) => parked,
        mrtr::Resumed::Upstream(upstream) => {
            r.params = Some(mrtr::with_state(r.params.as_deref(), &upstream));
            return Ok(Retried::Anew(r));
        }
    };
    for (key, value) in retry.responses {
        // Keys not asked (any more) are ignored, as the spec says.
        let Some(id) = parked.pending.answer(&key) else {
            continue;
        };
        let answer = RpcResponse::ok(Value::from(id), crate::jsonrpc::raw(&value));
        let sink = Sink::new(parked.session.clone());
        gateway.handle(&parked.session, answer.into(), sink).await;
    }
    Ok(Retried::Resumed(Serving {
        gateway: gateway.clone(),
        session: parked.session,
        stream: parked.stream,
        next: parked.next,
        work: None,
        id: r.id,
        call,
        pending: parked.pending,
    }))
}

/// How long after an upstream's request the director waits for more before answering the
/// 2026 client with what was asked: a server asking several things at once sends them in a burst.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

type Work = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// A 2026 call being answered: its session and request stream, how far the client has been
/// told, the work (while this answer drives it), the JSON-RPC id to answer with (a retry's
/// own), and the input requests still unanswered.
pub struct Serving {
    gateway: Arc<Gateway>,
    session: Arc<Session>,
    stream: Arc<crate::session::RequestStream>,
    next: u64,
    work: Option<Work>,
    id: Value,
    call: String,
    pending: mrtr::Questions,
}

/// What the client is told next.
pub enum Step {
    /// A notification (progress, a log message).
    Say(Message),
    /// The response (the call is over), or the `InputRequiredResult` of a parked call.
    Final(Message),
}

impl Serving {
    /// What the client is told next; after a `Final`, nothing more.
    pub async fn step(&mut self) -> Step {
        if !self.pending.is_empty() {
            return Step::Final(self.park());
        }
        loop {
            let next = self.stream.next(self.next);
            let message = match &mut self.work {
                Some(work) => tokio::select! {
                    biased;
                    m = next => m,
                    () = work => {
                        self.work = None;
                        continue;
                    }
                },
                None => next.await,
            };
            let Some((index, message)) = message else {
                let error = ErrorObject::internal("the call ended without an answer");
                return Step::Final(RpcResponse::err(self.id.clone(), error).into());
            };
            self.next = index + 1;
            match message {
                Message::Notification(n) => return Step::Say(n.into()),
                Message::Response(r) => {
                    let outcome = r.outcome.map(|result| self.wrap_state(result));
                    return Step::Final(
                        RpcResponse {
                            id: self.id.clone(),
                            outcome,
                        }
                        .into(),
                    );
                }
                Message::Request(r) => {
                    self.ask(r);
                    // Asked together (within GATHER of each other): answered together, in one
                    // InputRequiredResult.
                    while let Ok(Some((index, Message::Request(r)))) =
                        tokio::time::timeout(GATHER, self.stream.next(self.next)).await
                    {
                        self.next = index + 1;
                        self.ask(r);
                    }
                    return Step::Final(self.park());
                }
            }
        }
    }

    /// An upstream's `InputRequiredResult` with its own `requestState`: the state wrapped, so
    /// only this caller can retry this call with it (and the upstream gets its own back).
    fn wrap_state(&self, result: Box<RawValue>) -> Box<RawValue> {
        let Some((_, Some(state))) = mrtr::asks(&result) else {
            return result;
        };
        let principal = self.session.principal();
        let wrapped = self.gateway.calls.wrap(&state, &principal, &self.call);
        mrtr::with_state(Some(&result), &wrapped)
    }

    fn ask(&mut self, r: Request) {
        self.pending.ask(&self.session, &r);
    }

    /// Parks the call (its work goes on in a task of its own) and answers what it asks.
    fn park(&mut self) -> Message {
        if let Some(work) = self.work.take() {
            tokio::spawn(work);
        }
        let principal = self.session.principal().into_owned();
        let result = self.gateway.calls.park(
            &principal,
            mrtr::Parked {
                session: self.session.clone(),
                stream: self.stream.clone(),
                next: self.next,
                pending: std::mem::take(&mut self.pending),
                call: self.call.clone(),
                until: std::time::Instant::now() + mrtr::PARKED_FOR,
            },
        );
        let finished = modern::finish("", &self.session, result);
        RpcResponse::ok(self.id.clone(), finished).into()
    }
}
