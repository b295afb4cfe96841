//! The configuration as written (TOML), and a reload (the file, or the store's latest
//! version when the replicas share one).

use super::layout::page;
use super::session::{Checked, Signed, Token};
use crate::admin::Admin;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use mcp_director_api::AdminApi;

pub async fn show(
    State(state): State<AppState>,
    Extension(signed): Extension<Signed>,
    Query(q): Query<super::servers::Added>,
) -> Response {
    render(&state, &signed, StatusCode::OK, q.notice.as_deref(), None)
}

fn render(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let toml = crate::config::to_toml(&state.config.raw());
    let source = if state.config.shared() {
        "the store, shared by the replicas".to_string()
    } else {
        state.config.path().display().to_string()
    };
    let body = html! {
        (super::layout::notices(notice, error))
        p { "From " code { (source) } "." }
        form method="post" action="/ui/config/reload" {
            input type="hidden" name="csrf" value=(signed.csrf);
            button type="submit" { "Reload" }
        }
        h2 { "As written" }
        pre id="config" tabindex="0" { (toml) }
    };
    page(status, "Configuration", Some(signed), "/ui/config", body)
}

pub async fn reload(
    State(state): State<AppState>,
    Checked { signed, .. }: Checked<Token>,
) -> Response {
    match Admin(state.clone()).reload_config().await {
        Ok(_) => super::layout::done("/ui/config", "Reloaded."),
        Err(e) => render(
            &state,
            &signed,
            StatusCode::BAD_REQUEST,
            None,
            Some(&e.to_string()),
        ),
    }
}
