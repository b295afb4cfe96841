//! The configuration as written (TOML), and a reload (the file, or the store's latest
//! version when the replicas share one).

use super::layout::page;
use super::session::Cx;
use crate::admin::Admin;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use mcp_director_api::AdminApi;

pub async fn show(cx: Cx) -> Response {
    render(&cx, StatusCode::OK, cx.fields.given("notice"), None)
}

fn render(cx: &Cx, status: StatusCode, notice: Option<&str>, error: Option<&str>) -> Response {
    let (state, signed) = (&cx.state, &cx.signed);
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

pub async fn reload(cx: Cx) -> Response {
    match Admin(cx.state.clone()).reload_config().await {
        Ok(_) => super::layout::done("/ui/config", "Reloaded."),
        Err(e) => render(&cx, StatusCode::BAD_REQUEST, None, Some(&e.to_string())),
    }
}
