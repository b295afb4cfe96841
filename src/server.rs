//! The HTTP server: [`AppState`], the router (generated admin routes + hand-written
//! observability routes) and graceful serving.

use crate::admin::Admin;
use crate::session::TransportKind;
use crate::state::AppState;
use crate::transport;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use mcp_director_api::models::{
    Health, HealthStatus, StoreHealth, StoreHealthStatus, UpstreamHealth, UpstreamState,
};
use std::sync::Arc;

/// The OpenAPI document, `spec/openapi.yaml` as JSON (converted by build.rs).
pub const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

pub fn router(state: AppState) -> Router {
    let observability = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api-docs", get(api_docs))
        .merge(
            Router::new()
                .route(
                    "/mcp",
                    get(transport::http::get)
                        .post(transport::http::post)
                        .delete(transport::http::delete),
                )
                .route("/sse", get(transport::http::sse))
                // A session another replica holds is served there.
                .route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    transport::http::hop::forward_foreign_sessions,
                )),
        )
        .merge(crate::oauth::routes().layer(middleware::from_fn_with_state(
            state.clone(),
            crate::oauth::rate_limit,
        )));
    #[cfg(feature = "console")]
    let observability = observability.merge(crate::console::routes());
    let observability = observability.with_state(state.clone());
    mcp_director_api::router(Arc::new(Admin(state.clone())))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            admin_from_afar,
        ))
        .merge(observability)
        .layer(middleware::from_fn_with_state(state, count_requests))
}

/// Without `[settings.auth]` the admin API (which can start processes) answers only clients on
/// this machine; a director reachable from elsewhere needs admin credentials for it. An
/// address that presented wrong credentials 10 times in a minute waits (429).
async fn admin_from_afar(
    State(state): State<AppState>,
    crate::client_addr::ClientAddr(client): crate::client_addr::ClientAddr,
    request: Request,
    next: Next,
) -> Response {
    let auth = state.config.effective().settings.auth.enabled;
    // Both the connection and the client it is for: behind a proxy on this machine everyone
    // would look local, and a proxy elsewhere can be made to name 127.0.0.1 as the client.
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let local = client.is_loopback() && peer.is_none_or(|p| p.is_loopback());
    if !auth && !local {
        return mcp_director_api::ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the admin API answers remote clients only with [settings.auth] enabled",
        )
        .into_response();
    }
    if let Some(wait) = state.admin_failures.blocked(client) {
        let mut r = mcp_director_api::ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many wrong admin credentials; try again later",
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, wait.as_secs().max(1).into());
        return r;
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        state.admin_failures.failed(client);
    }
    response
}

/// Counts every request by route template (never the raw path: bounded label cardinality).
async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    // Any token is a valid HTTP method: only the standard ones are labels.
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    }
    .to_string();
    let response = next.run(request).await;
    state
        .metrics
        .http_request(&method, &route, response.status().as_u16());
    response
}

#[derive(serde::Deserialize)]
struct HealthQuery {
    ready: Option<String>,
}

/// Liveness: 200 with the store's and each upstream's state, 503 when the store is unusable
/// (`status: degraded` while an upstream is down). Readiness (`?ready`): also 503 while an
/// upstream is still making its first connection attempt, so orchestrators wait for start-up.
async fn health(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<HealthQuery>,
) -> Response {
    let store = match state.store.check().await {
        Ok(()) => StoreHealth {
            status: StoreHealthStatus::Ok,
            backend: state.store.backend().to_string(),
            error: None,
        },
        Err(e) => StoreHealth {
            status: StoreHealthStatus::Unavailable,
            backend: state.store.backend().to_string(),
            error: Some(e.to_string()),
        },
    };
    let config = state.config.effective();
    let upstreams = config
        .servers
        .iter()
        .map(|(name, s)| {
            let status = state.gateway.pool.get(name).map(|u| u.status());
            let info = status.as_ref().and_then(|s| s.info.as_ref());
            UpstreamHealth {
                name: name.clone(),
                state: match &status {
                    Some(status) => status.state,
                    None if !s.enabled => UpstreamState::Disabled,
                    None => UpstreamState::Configured,
                },
                protocol_version: info.map(|i| i.protocol_version.clone()),
                protocol_era: info.map(|i| i.era()),
            }
        })
        .collect::<Vec<_>>();
    let store_ok = store.status == StoreHealthStatus::Ok;
    let all_running = upstreams
        .iter()
        .all(|u| matches!(u.state, UpstreamState::Running | UpstreamState::Disabled));
    let starting = upstreams.iter().any(|u| {
        u.state == UpstreamState::Starting
            && state
                .gateway
                .pool
                .get(&u.name)
                .is_some_and(|p| p.status().restarts == 0)
    });
    let body = Health {
        status: match (store_ok, all_running) {
            (false, _) => HealthStatus::Unavailable,
            (true, true) => HealthStatus::Ok,
            (true, false) => HealthStatus::Degraded,
        },
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_secs: state.started.elapsed().as_secs(),
        store,
        upstreams,
    };
    if !store_ok {
        let error = mcp_director_api::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            body.store.error.unwrap_or_default(),
        );
        return error.into_response();
    }
    if q.ready.is_some() && starting {
        let error = mcp_director_api::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "upstream servers are still starting",
        );
        return error.into_response();
    }
    (StatusCode::OK, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let upstreams: Vec<(String, bool, u64)> = state
        .gateway
        .pool
        .all()
        .iter()
        .map(|u| {
            let s = u.status();
            (
                u.name.clone(),
                s.state == UpstreamState::Running,
                s.restarts,
            )
        })
        .collect();
    let mut sessions = TransportKind::ALL.map(|t| (t.label(), 0, 0));
    for s in state.gateway.sessions() {
        if let Some(row) = sessions
            .iter_mut()
            .find(|(l, _, _)| *l == s.transport.label())
        {
            row.1 += 1;
            row.2 += s.streams();
        }
    }
    let tasks = crate::tasks::count_by_status(&state.store)
        .await
        .unwrap_or_default();
    let text = state.metrics.scrape(&upstreams, &sessions, &tasks);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn api_docs() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let stopping = state.clone();
    let limits = Arc::downgrade(&state.0);
    tokio::spawn(async move {
        while let Some(inner) = limits.upgrade() {
            inner.rate_limits.shrink();
            drop(inner);
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        }
    });
    // Without TCP_NODELAY an answer written in two parts (an SSE event, then the end of the
    // chunked body) waits for the client's delayed ACK: 40 ms per request on keep-alive.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        // Streams hear `notifications/shutdown` before they close; calls in flight to
        // upstreams fail with an error when the upstreams stop.
        stopping.gateway.announce_shutdown();
        // Before the upstreams stop: the tasks fail with the true reason.
        stopping.gateway.abandon_tasks().await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        stopping.shutdown.send_replace(true);
        stopping.gateway.pool.stop_all();
    })
    .await?;
    state.gateway.pool.stop_all();
    crate::upstream::stdio::stop_every_group();
    if let Some(analytics) = state.gateway.analytics() {
        analytics.flush().await;
    }
    state.store.close().await;
    Ok(())
}
