//! The web console at `/ui/`: operators see and steer the director in a browser. Pages are
//! rendered on the server (maud: everything interpolated is escaped) from the same `AdminApi`
//! handlers `/api` serves, so the two never disagree; a small script keeps the overview live.
//! Assets are embedded; no CDN, no build step. Who may use it: `session.rs`.
//!
//! Its share of the binary is budgeted (README, "Web console size"), which shapes two things:
//! every page is an `async fn(Cx) -> Response` behind one axum handler ([`session::to`]), and
//! the admin operations it calls return boxed futures, so `/api` and the console share one
//! copy of each instead of each inlining its own.

mod analytics;
mod assets;
mod config;
mod layout;
mod oauth;
mod overview;
mod playground;
mod profiles;
mod projects;
mod servers;
mod session;
mod sign_in;
mod tasks;
mod tools;

pub use assets::size as assets_size;
pub use sign_in::{OIDC_STATE_PREFIX, oidc_callback};

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

/// A page handler (`async fn(Cx) -> Response`) as a route's handler: see [`session::Handler`].
macro_rules! to {
    ($handler:path) => {
        session::to(|cx| Box::pin($handler(cx)))
    };
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::permanent("/ui/") }),
        )
        .route("/ui/", get(to!(overview::show)))
        .route("/ui/live/overview", get(to!(overview::live)))
        .route(
            "/ui/servers",
            get(to!(servers::show)).post(to!(servers::add)),
        )
        .route("/ui/servers/{name}/edit", post(to!(servers::edit)))
        .route("/ui/servers/{name}/{action}", post(to!(servers::act)))
        .route("/ui/tools", get(to!(tools::show)))
        .route(
            "/ui/playground",
            get(to!(playground::show)).post(to!(playground::call)),
        )
        .route("/ui/tasks", get(to!(tasks::show)))
        .route("/ui/live/tasks", get(to!(tasks::live)))
        .route("/ui/tasks/{id}/cancel", post(to!(tasks::cancel)))
        .route(
            "/ui/profiles",
            get(to!(profiles::show)).post(to!(profiles::create)),
        )
        .route("/ui/profiles/{name}/{action}", post(to!(profiles::act)))
        .route(
            "/ui/projects",
            get(to!(projects::show)).post(to!(projects::create)),
        )
        .route("/ui/projects/{name}/delete", post(to!(projects::delete)))
        .route("/ui/oauth", get(to!(oauth::show)))
        .route("/ui/oauth/{kind}/{id}/{action}", post(to!(oauth::act)))
        .route("/ui/analytics", get(to!(analytics::show)))
        .route("/ui/config", get(to!(config::show)))
        .route("/ui/config/reload", post(to!(config::reload)))
        .route("/ui/logout", post(to!(sign_in::sign_out)))
        // Open to anyone: signing in, and the assets its page needs.
        .route("/ui/login", get(sign_in::form).post(sign_in::sign_in))
        .route("/ui/login/oidc", get(sign_in::oidc_start))
        .route("/ui/assets/{name}", get(assets::asset))
}
