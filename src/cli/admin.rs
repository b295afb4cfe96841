//! Admin subcommands, each one call of the generated `mcp-director-client`.

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use clap::{Args, Subcommand};
use mcp_director_client::{Client, types};
use serde::Serialize;
use serde_json::{Value, json};

/// Where the director is and how to authenticate to it.
#[derive(Args, Debug)]
pub struct Remote<C: Subcommand> {
    #[command(subcommand)]
    command: C,
    /// Base URL of a running director.
    #[arg(
        long,
        env = "MCP_DIRECTOR_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    url: String,
    /// Admin user name (when Basic auth is enabled).
    #[arg(long, env = "MCP_DIRECTOR_USER", global = true)]
    user: Option<String>,
    /// Admin password (when Basic auth is enabled). Prefer the environment variable.
    #[arg(
        long,
        env = "MCP_DIRECTOR_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    password: Option<String>,
}

/// progenitor ignores security schemes: credentials travel as a default header of the
/// reqwest client.
fn client(url: &str, user: Option<&str>, password: Option<&str>) -> Result<Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(user) = user {
        let raw = format!("{user}:{}", password.unwrap_or_default());
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        let mut value = reqwest::header::HeaderValue::from_str(&value)?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let http = crate::net::http_client()
        .default_headers(headers)
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    Ok(Client::new_with_client(url.trim_end_matches('/'), http))
}

/// A readable error from the client: status and the spec's `Error` body.
fn api_err(e: mcp_director_client::Error<types::Error>) -> anyhow::Error {
    match e {
        mcp_director_client::Error::ErrorResponse(r) => {
            let status = r.status();
            let body = r.into_inner();
            anyhow!(
                "{} {}: {}",
                status.as_u16(),
                body.error,
                body.error_description.unwrap_or_default()
            )
        }
        other => anyhow!("{other}"),
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints rows as aligned columns under a header.
fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

/// `KEY=VALUE` pairs into a JSON object.
fn pairs(items: &[String]) -> Result<Value> {
    let mut map = serde_json::Map::new();
    for item in items {
        let (k, v) = item
            .split_once('=')
            .with_context(|| format!("`{item}` is not KEY=VALUE"))?;
        map.insert(k.to_string(), json!(v));
    }
    Ok(Value::Object(map))
}

/// Builds a spec type from JSON, so the CLI states fields by their spec names.
fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).context("invalid arguments")
}

fn name_of<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

#[derive(Subcommand, Debug)]
pub enum ServersCmd {
    /// List configured servers.
    List,
    /// Add a server (stdio: --command/--arg; HTTP: --transport streamable-http|sse --endpoint).
    Add {
        name: String,
        #[arg(long, default_value = "stdio")]
        transport: String,
        #[arg(long)]
        command: Option<String>,
        /// An argument of the command (repeatable).
        #[arg(long = "arg", allow_hyphen_values = true)]
        args: Vec<String>,
        /// KEY=VALUE environment of the command (repeatable).
        #[arg(long)]
        env: Vec<String>,
        #[arg(long)]
        cwd: Option<String>,
        /// URL of an HTTP server (streamable-http or sse).
        #[arg(long)]
        endpoint: Option<String>,
        /// KEY=VALUE HTTP header (repeatable).
        #[arg(long)]
        header: Vec<String>,
        /// Exposed-name prefix ("" = unprefixed).
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Remove a server.
    Remove { name: String },
    /// Show a server's status (with the last lines of its stderr).
    Status { name: String },
    /// Restart a server now (its process stopped and started again).
    Restart { name: String },
}

#[derive(Subcommand, Debug)]
pub enum ToolsCmd {
    /// List every exposed tool.
    List,
}

#[derive(Subcommand, Debug)]
pub enum ProfilesCmd {
    /// List profiles.
    List,
    /// Create a profile; with --require-token its token is printed once.
    Create {
        name: String,
        #[arg(long = "server")]
        servers: Vec<String>,
        #[arg(long)]
        allow: Vec<String>,
        #[arg(long)]
        deny: Vec<String>,
        #[arg(long)]
        require_token: bool,
    },
    /// Delete a profile.
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum ProjectsCmd {
    /// List projects.
    List,
    /// Create a project.
    Create {
        name: String,
        #[arg(long = "server")]
        servers: Vec<String>,
        /// KEY=VALUE environment for the project's stdio servers (repeatable).
        #[arg(long)]
        env: Vec<String>,
        #[arg(long)]
        cwd: Option<String>,
        /// A root URI offered to servers (repeatable).
        #[arg(long = "root")]
        roots: Vec<String>,
    },
    /// Delete a project.
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Print the configuration as JSON.
    Show,
    /// Re-read the configuration file (or, with replicas, the store's latest version).
    Reload,
    /// Print the configuration as TOML (to keep it in a file, or move it to another director).
    Export,
    /// Replace the whole configuration with a TOML file's (validated first; with replicas, a
    /// new version every replica applies).
    Import {
        /// The TOML file.
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuthCmd {
    /// Enable Basic auth on /api; the new password is read from MCP_DIRECTOR_NEW_PASSWORD or
    /// the first line of standard input.
    Enable {
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AnalyticsCmd {
    /// Aggregates over the last `--window` seconds, busiest first.
    Show {
        #[arg(long, default_value_t = 3600)]
        window: u64,
        /// Only this server's calls.
        #[arg(long)]
        server: Option<String>,
        /// Only calls of sessions with this profile.
        #[arg(long)]
        profile: Option<String>,
    },
}

/// One admin command.
pub trait Run {
    async fn run(self, client: &Client) -> Result<()>;
}

impl<C: Subcommand + Run> Remote<C> {
    pub async fn run(self) -> Result<()> {
        let client = client(&self.url, self.user.as_deref(), self.password.as_deref())?;
        self.command.run(&client).await
    }
}

impl Run for ServersCmd {
    async fn run(self, c: &Client) -> Result<()> {
        match self {
            ServersCmd::List => {
                let servers = c.list_servers().await.map_err(api_err)?.into_inner();
                let rows = servers
                    .iter()
                    .map(|s| {
                        let target = match (&s.url, &s.command) {
                            (Some(url), _) => url.clone(),
                            (None, Some(cmd)) => std::iter::once(cmd.clone())
                                .chain(s.args.iter().cloned())
                                .collect::<Vec<_>>()
                                .join(" "),
                            (None, None) => String::new(),
                        };
                        vec![
                            name_of(s),
                            s.transport.map_or("stdio".into(), |t| t.to_string()),
                            s.enabled.to_string(),
                            target,
                        ]
                    })
                    .collect();
                print_table(&["NAME", "TRANSPORT", "ENABLED", "TARGET"], rows);
            }
            ServersCmd::Add {
                name,
                transport,
                command,
                args,
                env,
                cwd,
                endpoint,
                header,
                prefix,
            } => {
                let server: types::Server = from_json(json!({
                    "name": name, "transport": transport, "command": command, "args": args,
                    "env": pairs(&env)?, "cwd": cwd, "url": endpoint, "headers": pairs(&header)?,
                    "prefix": prefix,
                }))?;
                let added = c.add_server(&server).await.map_err(api_err)?.into_inner();
                println!("added server {}", name_of(&added));
            }
            ServersCmd::Remove { name } => {
                c.remove_server(&name).await.map_err(api_err)?;
                println!("removed server {name}");
            }
            ServersCmd::Status { name } => {
                print_json(
                    &c.get_server_status(&name)
                        .await
                        .map_err(api_err)?
                        .into_inner(),
                )?;
            }
            ServersCmd::Restart { name } => {
                c.restart_server(&name).await.map_err(api_err)?;
                println!("restarting server {name}");
            }
        }
        Ok(())
    }
}

impl Run for ToolsCmd {
    async fn run(self, c: &Client) -> Result<()> {
        let ToolsCmd::List = self;
        let tools = c.list_tools().await.map_err(api_err)?.into_inner();
        let rows = tools
            .into_iter()
            .map(|t| vec![t.name, t.server, t.description.unwrap_or_default()])
            .collect();
        print_table(&["NAME", "SERVER", "DESCRIPTION"], rows);
        Ok(())
    }
}

impl Run for ProfilesCmd {
    async fn run(self, c: &Client) -> Result<()> {
        match self {
            ProfilesCmd::List => {
                let profiles = c.list_profiles().await.map_err(api_err)?.into_inner();
                let rows = profiles
                    .iter()
                    .map(|p| {
                        vec![
                            name_of(p),
                            p.servers.join(","),
                            p.allow.join(","),
                            p.deny.join(","),
                            p.require_token.to_string(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "SERVERS", "ALLOW", "DENY", "TOKEN"], rows);
            }
            ProfilesCmd::Create {
                name,
                servers,
                allow,
                deny,
                require_token,
            } => {
                let profile: types::Profile = from_json(json!({
                    "name": name, "servers": servers, "allow": allow, "deny": deny,
                    "require_token": require_token,
                }))?;
                let created = c
                    .create_profile(&profile)
                    .await
                    .map_err(api_err)?
                    .into_inner();
                println!("created profile {name}");
                if let Some(token) = created.token {
                    println!("token (shown once): {token}");
                }
            }
            ProfilesCmd::Delete { name } => {
                c.delete_profile(&name).await.map_err(api_err)?;
                println!("deleted profile {name}");
            }
        }
        Ok(())
    }
}

impl Run for ProjectsCmd {
    async fn run(self, c: &Client) -> Result<()> {
        match self {
            ProjectsCmd::List => {
                let projects = c.list_projects().await.map_err(api_err)?.into_inner();
                let rows = projects
                    .iter()
                    .map(|p| {
                        vec![
                            name_of(p),
                            p.servers.join(","),
                            p.cwd.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "SERVERS", "CWD"], rows);
            }
            ProjectsCmd::Create {
                name,
                servers,
                env,
                cwd,
                roots,
            } => {
                let roots: Vec<Value> = roots.iter().map(|r| json!({"uri": r})).collect();
                let project: types::Project = from_json(json!({
                    "name": name, "servers": servers, "env": pairs(&env)?, "cwd": cwd,
                    "roots": roots,
                }))?;
                c.create_project(&project).await.map_err(api_err)?;
                println!("created project {name}");
            }
            ProjectsCmd::Delete { name } => {
                c.delete_project(&name).await.map_err(api_err)?;
                println!("deleted project {name}");
            }
        }
        Ok(())
    }
}

impl Run for ConfigCmd {
    async fn run(self, c: &Client) -> Result<()> {
        let config = match self {
            ConfigCmd::Show => c.get_config().await,
            ConfigCmd::Reload => c.reload_config().await,
            ConfigCmd::Export => {
                let config = c.get_config().await.map_err(api_err)?.into_inner();
                let config: mcp_director_api::models::Config =
                    from_json(serde_json::to_value(config)?)?;
                print!("{}", crate::config::to_toml(&config));
                return Ok(());
            }
            ConfigCmd::Import { file } => {
                let config = crate::config::load(&file)?;
                crate::config::validate(&config)?;
                let body = from_json(serde_json::to_value(&config)?)?;
                c.update_config(&body).await.map_err(api_err)?;
                println!("configuration imported from {}", file.display());
                return Ok(());
            }
        };
        print_json(&config.map_err(api_err)?.into_inner())
    }
}

impl Run for AuthCmd {
    async fn run(self, c: &Client) -> Result<()> {
        let AuthCmd::Enable { username } = self;
        let password = match std::env::var("MCP_DIRECTOR_NEW_PASSWORD") {
            Ok(p) => p,
            Err(_) => {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_string()
            }
        };
        let request: types::EnableAuthRequest =
            from_json(json!({"username": username, "password": password}))?;
        let status = c.enable_auth(&request).await.map_err(api_err)?.into_inner();
        println!(
            "admin Basic auth enabled for {}",
            status.username.unwrap_or_default()
        );
        Ok(())
    }
}

impl Run for AnalyticsCmd {
    async fn run(self, c: &Client) -> Result<()> {
        let AnalyticsCmd::Show {
            window,
            server,
            profile,
        } = self;
        let window = std::num::NonZeroU64::new(window).context("--window must be at least 1")?;
        let report = c
            .get_analytics(
                None,
                None,
                profile.as_deref(),
                server.as_deref(),
                Some(window),
            )
            .await
            .map_err(api_err)?
            .into_inner();
        let rows = report
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.server.clone(),
                    r.kind.to_string(),
                    r.name.clone(),
                    r.profile.clone(),
                    r.calls.to_string(),
                    format!("{:.1}%", r.error_rate * 100.0),
                    format!("{:.1}", r.p50_ms),
                    format!("{:.1}", r.p95_ms),
                    format!("{:.1}", r.p99_ms),
                ]
            })
            .collect();
        print_table(
            &[
                "SERVER", "KIND", "NAME", "PROFILE", "CALLS", "ERRORS", "P50_MS", "P95_MS",
                "P99_MS",
            ],
            rows,
        );
        Ok(())
    }
}
