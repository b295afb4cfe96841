//! Servers: the configured upstreams, one added (a stdio command, or a Streamable HTTP or
//! SSE URL), one edited, restarted or removed. Through the admin API's own handlers.

use super::layout::{action_button, page};
use super::session::{Cx, Fields};
use crate::admin::Admin;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use mcp_director_api::AdminApi;
use mcp_director_api::models::Server;

pub async fn show(cx: Cx) -> Response {
    let config = cx.state.config.raw();
    let editing = cx.fields.given("edit").and_then(|name| {
        let s = config.servers.get(name)?;
        Some(NewServer {
            name: name.to_string(),
            transport: s.transport.to_string(),
            command: s.command.clone().unwrap_or_default(),
            args: s.args.join("\n"),
            url: s.url.clone().unwrap_or_default(),
        })
    });
    render(
        &cx,
        StatusCode::OK,
        cx.fields.given("notice"),
        None,
        editing.as_ref().unwrap_or(&NewServer::default()),
        editing.is_some(),
    )
    .await
}

/// The add (or edit) form's fields.
#[derive(Default)]
struct NewServer {
    name: String,
    transport: String,
    command: String,
    /// One argument per line.
    args: String,
    url: String,
}

impl NewServer {
    fn from(fields: &Fields) -> Self {
        NewServer {
            name: fields.get("name").to_string(),
            transport: fields.get("transport").to_string(),
            command: fields.get("command").to_string(),
            args: fields.get("args").to_string(),
            url: fields.get("url").to_string(),
        }
    }

    fn server(&self) -> Result<Server, String> {
        let name = super::layout::name(&self.name)?;
        self.over(Server {
            name: Some(name),
            ..Server::default()
        })
    }

    /// `base` (a server's definition) with what the form sets: the transport, and the command
    /// and arguments or the URL; the rest of `base` (env, headers, …) is kept.
    fn over(&self, mut server: Server) -> Result<Server, String> {
        server.transport = self
            .transport
            .parse()
            .map_err(|_| format!("no transport `{}`", self.transport))?;
        (server.command, server.args, server.url) = if self.transport == "stdio" {
            let args = super::layout::lines(&self.args);
            (super::layout::optional(&self.command), args, None)
        } else {
            (None, Vec::new(), Some(self.url.trim().to_string()))
        };
        Ok(server)
    }
}

pub async fn add(cx: Cx) -> Response {
    let form = NewServer::from(&cx.fields);
    let added = match form.server() {
        Ok(server) => Admin(cx.state.clone())
            .add_server(server)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match added {
        Ok(s) => {
            let name = s.name.map(|n| n.to_string()).unwrap_or_default();
            super::layout::done("/ui/servers", &format!("Added {name}: it starts now."))
        }
        Err(e) => render(&cx, StatusCode::BAD_REQUEST, None, Some(&e), &form, false).await,
    }
}

/// A server's definition changed in place (`/ui/servers/{name}/edit`): one configuration
/// change, which restarts only this server.
pub async fn edit(cx: Cx) -> Response {
    let name = cx.param(0).to_string();
    let mut form = NewServer::from(&cx.fields);
    form.name = name.clone();
    let current = cx.state.config.raw().servers.get(&name).cloned();
    let changed = match current {
        None => Err(format!("no server named `{name}`")),
        Some(base) => match form.over(base) {
            Ok(server) => Admin(cx.state.clone())
                .update_server(name.clone(), server)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
    };
    match changed {
        Ok(_) => super::layout::done("/ui/servers", &format!("Saved {name}.")),
        Err(e) => render(&cx, StatusCode::BAD_REQUEST, None, Some(&e), &form, true).await,
    }
}

/// A server's restart or removal (`/ui/servers/{name}/{action}`).
pub async fn act(cx: Cx) -> Response {
    let (name, action) = (cx.param(0).to_string(), cx.param(1));
    let admin = Admin(cx.state.clone());
    let done = match action {
        "restart" => admin
            .restart_server(name.clone())
            .await
            .map(|_| format!("Restarting {name}.")),
        "remove" => admin
            .remove_server(name.clone())
            .await
            .map(|_| format!("Removed {name}.")),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match done {
        Ok(notice) => super::layout::done("/ui/servers", &notice),
        Err(e) => {
            let error = e.to_string();
            let form = NewServer::default();
            render(
                &cx,
                StatusCode::BAD_REQUEST,
                None,
                Some(&error),
                &form,
                false,
            )
            .await
        }
    }
}

async fn render(
    cx: &Cx,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
    form: &NewServer,
    editing: bool,
) -> Response {
    let (state, signed) = (&cx.state, &cx.signed);
    let admin = Admin(state.clone());
    let servers = admin.list_servers().await.unwrap_or_default();
    let mut statuses = Vec::new();
    for s in &servers {
        let name = s.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
        statuses.push(admin.get_server_status(name).await.ok());
    }
    let transport = if form.transport.is_empty() {
        "stdio"
    } else {
        form.transport.as_str()
    };
    let body = html! {
        (super::layout::notices(notice, error))
        h2 { "Configured" }
        div class="table" {
            table id="servers" {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "State" } th scope="col" { "Transport" }
                    th scope="col" { "Runs" } th scope="col" { span class="muted" { "Actions" } }
                } }
                tbody {
                    @for (s, status) in servers.iter().zip(&statuses) {
                        @let name = s.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                        tr data-server=(name) {
                            th scope="row" { (name) }
                            td {
                                @if let Some(st) = status {
                                    @let state = st.state.to_string();
                                    span class={ "state state-" (state) } { (state) }
                                    @if let Some(e) = &st.last_error { br; span class="error" { (e) } }
                                    @if !st.stderr.is_empty() {
                                        details {
                                            summary { "stderr, last " (st.stderr.len()) " lines" }
                                            pre class="stderr" { (st.stderr.join("\n")) }
                                        }
                                    }
                                }
                            }
                            td { (s.transport.to_string()) }
                            td { code { (s.command.clone().or_else(|| s.url.clone()).unwrap_or_default()) " " (s.args.join(" ")) } }
                            td class="actions" {
                                a href={ "/ui/servers?edit=" (name) "#add" } aria-label={ "Edit " (name) } { "Edit" }
                                " "
                                (action_button(signed, &format!("/ui/servers/{name}/restart"), "Restart", &name, false))
                                " "
                                (action_button(signed, &format!("/ui/servers/{name}/remove"), "Remove", &name, true))
                            }
                        }
                    }
                }
            }
        }
        h2 id="add" { @if editing { "Edit " (form.name) } @else { "Add a server" } }
        form class="stack" method="post" aria-labelledby="add"
            action=(if editing { format!("/ui/servers/{}/edit", form.name) } else { "/ui/servers".to_string() }) {
            input type="hidden" name="csrf" value=(signed.csrf);
            div { label for="name" { "Name " span class="hint" { "(letters, digits, - and _; its tools appear as name/tool)" } }
                  input id="name" name="name" required value=(form.name) autocomplete="off" readonly[editing]; }
            div { label for="transport" { "Transport" }
                  select id="transport" name="transport" {
                      @for (value, label) in [("stdio", "stdio (a command the director runs)"), ("streamable-http", "Streamable HTTP (a URL)"), ("sse", "HTTP+SSE, legacy (a URL)")] {
                          option value=(value) selected[transport == value] { (label) }
                      }
                  } }
            div { label for="command" { "Command " span class="hint" { "(stdio)" } }
                  input id="command" name="command" value=(form.command) autocomplete="off"; }
            div { label for="args" { "Arguments " span class="hint" { "(stdio; one per line)" } }
                  textarea id="args" name="args" rows="3" { (form.args) } }
            div { label for="url" { "URL " span class="hint" { "(Streamable HTTP or SSE)" } }
                  input id="url" name="url" type="url" value=(form.url) autocomplete="off"; }
            div { button type="submit" { @if editing { "Save" } @else { "Add server" } } }
        }
    };
    page(status, "Servers", Some(signed), "/ui/servers", body)
}
