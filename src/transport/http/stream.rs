//! How answers leave: a JSON body; a request's SSE stream (numbered, resumable, one write
//! when it is over at once); a session's standalone stream.

use crate::jsonrpc::Message;
use crate::session::{RequestStream, Session};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a request may take to be answered in one body (see `post`).
pub(super) const QUICK: Duration = Duration::from_millis(10);

/// A JSON answer (an empty body for none).
pub(super) fn json_answer(message: Option<Message>) -> Response {
    let body = message.map(|m| m.to_json()).unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// A request stream's messages from index `from` on, as SSE text, ending after the response.
pub(super) fn request_events(stream: Arc<RequestStream>, from: u64) -> impl Stream<Item = String> {
    futures::stream::unfold(Some((stream, from)), |state| async move {
        let (stream, index) = state?;
        let (index, m) = stream.next(index).await?;
        let last = matches!(m, Message::Response(_));
        let text = crate::sse::format(None, Some(&stream.event_id(index + 1)), &m.to_json());
        Some((text, (!last).then_some((stream, index + 1))))
    })
}

/// Resolves when a stream of `session` must end: the session or the director is.
pub(super) fn stream_end(
    state: &AppState,
    session: &Arc<Session>,
) -> impl Future<Output = ()> + use<> {
    let session = session.clone();
    let mut shutdown = state.shutdown.subscribe();
    async move {
        tokio::select! {
            () = session.ended() => {},
            _ = shutdown.wait_for(|s| *s) => {},
        }
    }
}

/// A request stream as an SSE response (see [`sse_response`]) holding a stream slot, ending
/// with the session or the director.
pub(super) fn request_stream_response(
    state: &AppState,
    session: &Arc<Session>,
    events: impl Stream<Item = String> + Send + 'static,
    slot: crate::session::StreamSlot,
) -> Response {
    sse_response(events, stream_end(state, session), slot)
}

/// SSE text as a response: written by hand (a priming event needs an empty `data:` line, which
/// axum omits), with a keep-alive comment every 15 s, ending with `events` or when `ended`
/// resolves; `hold` lives as long as the stream (a stream slot, a session's guard).
pub(super) fn sse_response(
    events: impl Stream<Item = String> + Send + 'static,
    ended: impl Future<Output = ()> + Send + 'static,
    hold: impl Send + 'static,
) -> Response {
    // Events ready together leave in one chunk (one write): the priming event with the
    // headers, a quick answer with the end of the body.
    let events = Box::pin(events.take_until(Box::pin(ended)).ready_chunks(64));
    let body = futures::stream::unfold((events, hold), |(mut events, hold)| async move {
        let chunk = match tokio::time::timeout(Duration::from_secs(15), events.next()).await {
            Ok(Some(texts)) => Bytes::from(texts.concat()),
            Ok(None) => return None,
            Err(_) => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok::<_, Infallible>(chunk), (events, hold)))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// The events of a session's standalone stream, ending when the session or the director does.
pub(super) fn session_events(
    rx: mpsc::Receiver<(u64, Message)>,
    state: &AppState,
    session: &Arc<Session>,
    event_name: Option<&'static str>,
) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
    let ended = stream_end(state, session);
    receiver_stream(rx)
        .map(move |(id, m)| {
            let e = Event::default().id(id.to_string()).data(m.to_json());
            Ok(match event_name {
                Some(name) => e.event(name),
                None => e,
            })
        })
        .take_until(Box::pin(ended))
}

fn receiver_stream<T: Send + 'static>(rx: mpsc::Receiver<T>) -> impl Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
