//! The web console at `/ui/`: operators see and steer the director in a browser. Pages are
//! rendered on the server (maud: everything interpolated is escaped) from the same `AdminApi`
//! handlers `/api` serves, so the two never disagree; a small script keeps the overview live.
//! Assets are embedded; no CDN, no build step. Who may use it: `session.rs`.

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
use axum::middleware;
use axum::routing::{get, post};

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::permanent("/ui/") }),
        )
        .route("/ui/", get(overview::show))
        .route("/ui/live/overview", get(overview::live))
        .route("/ui/servers", get(servers::show).post(servers::add))
        .route("/ui/servers/{name}/edit", post(servers::edit))
        .route("/ui/servers/{name}/{action}", post(servers::act))
        .route("/ui/tools", get(tools::show))
        .route(
            "/ui/playground",
            get(playground::show).post(playground::call),
        )
        .route("/ui/tasks", get(tasks::show))
        .route("/ui/live/tasks", get(tasks::live))
        .route("/ui/tasks/{id}/cancel", post(tasks::cancel))
        .route("/ui/profiles", get(profiles::show).post(profiles::create))
        .route("/ui/profiles/{name}/{action}", post(profiles::act))
        .route("/ui/projects", get(projects::show).post(projects::create))
        .route("/ui/projects/{name}/delete", post(projects::delete))
        .route("/ui/oauth", get(oauth::show))
        .route("/ui/oauth/{kind}/{id}/{action}", post(oauth::act))
        .route("/ui/analytics", get(analytics::show))
        .route("/ui/config", get(config::show))
        .route("/ui/config/reload", post(config::reload))
        .route("/ui/login", get(sign_in::form).post(sign_in::sign_in))
        .route("/ui/login/oidc", get(sign_in::oidc_start))
        .route("/ui/logout", post(sign_in::sign_out))
        .route("/ui/assets/{name}", get(assets::asset))
        .route_layer(middleware::from_fn_with_state(state, session::require))
}
