//! The admin API: the hand-written implementation of the generated [`AdminApi`] trait.
//! Routing, extraction and status codes come from the spec (`generated/api`); this file holds
//! only what each operation means.

use crate::config::{ConfigError, is_valid_name};
use crate::secrets;
use crate::state::AppState;
use axum::http::{HeaderMap, header};
use base64::Engine;
use mcp_director_api::models::{
    AnalyticsReport, AuthStatus, Config, EnableAuthRequest, OAuthClient, OAuthGrant, Profile,
    ProfileCreated, Project, PromptInfo, ResourceInfo, Server, ServerStatus, TaskInfo, ToolInfo,
    UpstreamState,
};
use mcp_director_api::{AdminApi, ApiError, GetAnalyticsQuery, ListTasksQuery};
use std::collections::BTreeMap;

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Io { .. } | ConfigError::Store(_) => ApiError::internal(e.to_string()),
            ConfigError::Conflict(_) => ApiError::conflict(e.to_string()),
            _ => ApiError::bad_request(e.to_string()),
        }
    }
}

/// The admin API over the shared application state.
pub struct Admin(pub AppState);

/// A named entry of one of the config maps (`servers`, `profiles`, `projects`).
trait Named: Clone {
    const KIND: &'static str;
    fn name(&self) -> Option<&str>;
    fn with_name(self, name: &str) -> Self;
}

macro_rules! named {
    ($ty:ty, $kind:literal) => {
        impl Named for $ty {
            const KIND: &'static str = $kind;
            fn name(&self) -> Option<&str> {
                self.name.as_deref().map(String::as_str)
            }
            fn with_name(mut self, name: &str) -> Self {
                // Keys were validated against the same pattern when the config was loaded.
                self.name = name.parse().ok();
                self
            }
        }
    };
}
named!(Server, "server");
named!(Profile, "profile");
named!(Project, "project");

fn list<T: Named>(map: &BTreeMap<String, T>) -> Vec<T> {
    map.iter().map(|(k, v)| v.clone().with_name(k)).collect()
}

/// The name of a new entry: required, valid, and not taken.
fn new_name<T: Named>(entry: &T, map: &BTreeMap<String, T>) -> Result<String, ApiError> {
    let name = entry
        .name()
        .ok_or_else(|| ApiError::bad_request(format!("missing field `name` of the {}", T::KIND)))?;
    if !is_valid_name(name) {
        return Err(ApiError::bad_request(format!(
            "invalid {} name `{name}`",
            T::KIND
        )));
    }
    if map.contains_key(name) {
        return Err(ApiError::conflict(format!(
            "{} `{name}` already exists",
            T::KIND
        )));
    }
    Ok(name.to_string())
}

fn not_found(kind: &str, name: &str) -> ApiError {
    ApiError::not_found(format!("no {kind} named `{name}`"))
}

impl Admin {
    async fn add<T: Named>(
        &self,
        entry: T,
        map: impl Fn(&mut Config) -> &mut BTreeMap<String, T>,
    ) -> Result<T, ApiError> {
        self.0
            .config
            .update(|c| {
                let name = new_name(&entry, map(c))?;
                map(c).insert(name.clone(), entry.clone().with_name(&name));
                Ok::<_, ApiError>(entry.with_name(&name))
            })
            .await
    }

    async fn remove<T: Named>(
        &self,
        name: String,
        map: impl Fn(&mut Config) -> &mut BTreeMap<String, T>,
    ) -> Result<T, ApiError> {
        self.0
            .config
            .update(|c| {
                let removed = map(c)
                    .remove(&name)
                    .ok_or_else(|| not_found(T::KIND, &name))?;
                Ok::<_, ApiError>(removed.with_name(&name))
            })
            .await
    }
}

/// `user:password` from `Authorization: Basic …`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Every operation's future is boxed: `/api` and the console both await it, and behind a
/// box its code is compiled once (awaited directly, it would be inlined into each caller).
fn boxed<'a, T>(
    operation: impl Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>> {
    Box::pin(operation)
}

impl AdminApi for Admin {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let config = self.0.config.raw();
        let auth = &config.settings.auth;
        if !auth.enabled {
            return Ok(());
        }
        let (Some(username), Some(hash)) = (auth.username.clone(), auth.password_hash.clone())
        else {
            return Err(ApiError::unauthorized(
                "admin credentials are not configured",
            ));
        };
        let denied = || ApiError::unauthorized("valid admin credentials required");
        let (user, password) = basic_credentials(headers).ok_or_else(denied)?;
        // A credential verified within the last minute (against this very stored hash) is not
        // verified again: argon2 is slow and memory-hungry on purpose.
        let seen = secrets::sha256_hex(&format!("{hash}\0{user}\0{password}"));
        let fresh = |at: &std::time::Instant| at.elapsed() < std::time::Duration::from_secs(60);
        {
            let verified = self
                .0
                .admin_verified
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if verified.get(&seen).is_some_and(fresh) {
                return Ok(());
            }
        }
        // Always run the (slow) hash so a wrong user name takes as long as a wrong password.
        let password_ok =
            tokio::task::spawn_blocking(move || secrets::verify_password(&password, &hash))
                .await
                .unwrap_or(false);
        if secrets::ct_eq(&user, &username) && password_ok {
            let mut verified = self
                .0
                .admin_verified
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            verified.retain(|_, at| fresh(at));
            verified.insert(seen, std::time::Instant::now());
            Ok(())
        } else {
            Err(denied())
        }
    }

    fn list_servers(&self) -> impl Future<Output = Result<Vec<Server>, ApiError>> + Send {
        boxed(async move { Ok(list(&self.0.config.raw().servers)) })
    }

    fn add_server(&self, body: Server) -> impl Future<Output = Result<Server, ApiError>> + Send {
        boxed(async move { self.add(body, |c| &mut c.servers).await })
    }

    fn update_server(
        &self,
        name: String,
        body: Server,
    ) -> impl Future<Output = Result<Server, ApiError>> + Send {
        boxed(async move {
            if body.name().is_some_and(|n| n != name) {
                return Err(ApiError::bad_request(format!(
                    "the body names another server than `{name}`"
                )));
            }
            self.0
                .config
                .update(|c| {
                    let entry = c
                        .servers
                        .get_mut(&name)
                        .ok_or_else(|| not_found("server", &name))?;
                    *entry = body.clone().with_name(&name);
                    Ok::<_, ApiError>(entry.clone())
                })
                .await
        })
    }

    fn remove_server(&self, name: String) -> impl Future<Output = Result<Server, ApiError>> + Send {
        boxed(async move { self.remove(name, |c| &mut c.servers).await })
    }

    fn get_server_status(
        &self,
        name: String,
    ) -> impl Future<Output = Result<ServerStatus, ApiError>> + Send {
        boxed(async move {
            let config = self.0.config.effective();
            let server = config
                .servers
                .get(&name)
                .ok_or_else(|| not_found("server", &name))?;
            let Some(upstream) = self.0.gateway.pool.get(&name) else {
                // Configured but not running (disabled, or just added and not yet picked up).
                return Ok(ServerStatus {
                    name,
                    transport: server.transport,
                    state: if server.enabled {
                        UpstreamState::Configured
                    } else {
                        UpstreamState::Disabled
                    },
                    pid: None,
                    protocol_version: None,
                    protocol_era: None,
                    server_info: Default::default(),
                    capabilities: Default::default(),
                    last_error: None,
                    restarts: 0,
                    tools: None,
                    stderr: Vec::new(),
                });
            };
            let status = upstream.status();
            let view = self.0.gateway.view();
            let tools = upstream
                .catalog(crate::upstream::pool::Kind::Tools)
                .iter()
                .filter_map(|t| t.get("name")?.as_str())
                .filter(|n| view.tool_names.exposed(&name, n).is_some())
                .count() as u64;
            Ok(ServerStatus {
                name,
                transport: server.transport,
                state: status.state,
                pid: status.pid,
                protocol_version: status.info.as_ref().map(|i| i.protocol_version.clone()),
                protocol_era: status.info.as_ref().map(|i| i.era()),
                server_info: status
                    .info
                    .as_ref()
                    .map(|i| i.server_info.clone())
                    .unwrap_or_default(),
                capabilities: status
                    .info
                    .as_ref()
                    .map(|i| i.capabilities.clone())
                    .unwrap_or_default(),
                last_error: status.last_error,
                restarts: status.restarts,
                tools: Some(tools),
                stderr: upstream.stderr.lines(),
            })
        })
    }

    fn restart_server(
        &self,
        name: String,
    ) -> impl Future<Output = Result<ServerStatus, ApiError>> + Send {
        boxed(async move {
            let upstream = self
                .0
                .gateway
                .pool
                .get(&name)
                .ok_or_else(|| not_found("running server", &name))?;
            upstream.restart();
            tracing::info!(server = %name, "restart asked through the admin API");
            self.get_server_status(name).await
        })
    }

    fn list_tools(&self) -> impl Future<Output = Result<Vec<ToolInfo>, ApiError>> + Send {
        boxed(async move {
            let view = self.0.gateway.view();
            Ok(view
                .tools
                .iter()
                .filter_map(|item| {
                    let (t, name) = (&item.value, item.key.as_str());
                    let (server, original) = view.tool_names.resolve(name)?;
                    Some(ToolInfo {
                        name: name.to_string(),
                        server: server.to_string(),
                        original_name: original.to_string(),
                        title: t.get("title").and_then(|v| v.as_str()).map(str::to_string),
                        description: t
                            .get("description")
                            .and_then(|v| v.as_str())
                            .map(str::to_string),
                        input_schema: t
                            .get("inputSchema")
                            .and_then(|v| v.as_object())
                            .cloned()
                            .unwrap_or_default(),
                        annotations: t
                            .get("annotations")
                            .and_then(|v| v.as_object())
                            .cloned()
                            .unwrap_or_default(),
                    })
                })
                .collect())
        })
    }

    fn list_prompts(&self) -> impl Future<Output = Result<Vec<PromptInfo>, ApiError>> + Send {
        boxed(async move {
            let view = self.0.gateway.view();
            Ok(view
                .prompts
                .iter()
                .filter_map(|item| {
                    let (p, name) = (&item.value, item.key.as_str());
                    let (server, original) = view.prompt_names.resolve(name)?;
                    Some(PromptInfo {
                        name: name.to_string(),
                        server: server.to_string(),
                        original_name: original.to_string(),
                        title: text(p, "title"),
                        description: text(p, "description"),
                        arguments: p
                            .get("arguments")
                            .and_then(|v| v.as_array())
                            .into_iter()
                            .flatten()
                            .filter_map(|a| a.as_object().cloned())
                            .collect(),
                    })
                })
                .collect())
        })
    }

    fn list_resources(&self) -> impl Future<Output = Result<Vec<ResourceInfo>, ApiError>> + Send {
        boxed(async move {
            let view = self.0.gateway.view();
            let info = |item: &crate::gateway::view::Item, template: bool| {
                let r = &item.value;
                ResourceInfo {
                    server: item.server.clone(),
                    uri: (!template).then(|| item.key.clone()),
                    uri_template: template.then(|| item.key.clone()),
                    name: text(r, "name").unwrap_or_default(),
                    title: text(r, "title"),
                    description: text(r, "description"),
                    mime_type: text(r, "mimeType"),
                }
            };
            Ok(view
                .resources
                .iter()
                .map(|i| info(i, false))
                .chain(view.templates.iter().map(|i| info(i, true)))
                .collect())
        })
    }

    fn list_profiles(&self) -> impl Future<Output = Result<Vec<Profile>, ApiError>> + Send {
        boxed(async move { Ok(list(&self.0.config.raw().profiles)) })
    }

    fn create_profile(
        &self,
        mut body: Profile,
    ) -> impl Future<Output = Result<ProfileCreated, ApiError>> + Send {
        boxed(async move {
            let token =
                (body.require_token && body.token_sha256.is_none()).then(secrets::random_token);
            if let Some(t) = &token {
                body.token_sha256 = secrets::sha256_hex(t).parse().ok();
            }
            let profile = self.add(body, |c| &mut c.profiles).await?;
            Ok(ProfileCreated { profile, token })
        })
    }

    fn rotate_profile_token(
        &self,
        name: String,
    ) -> impl Future<Output = Result<ProfileCreated, ApiError>> + Send {
        boxed(async move {
            let token = secrets::random_token();
            let hash = secrets::sha256_hex(&token);
            let profile = self
                .0
                .config
                .update(|c| {
                    let p = c
                        .profiles
                        .get_mut(&name)
                        .ok_or_else(|| not_found("profile", &name))?;
                    p.token_sha256 = hash.parse().ok();
                    p.require_token = true;
                    Ok::<_, ApiError>(p.clone().with_name(&name))
                })
                .await?;
            tracing::info!(profile = %name, "profile token rotated");
            Ok(ProfileCreated {
                profile,
                token: Some(token),
            })
        })
    }

    fn delete_profile(
        &self,
        name: String,
    ) -> impl Future<Output = Result<Profile, ApiError>> + Send {
        boxed(async move { self.remove(name, |c| &mut c.profiles).await })
    }

    fn list_projects(&self) -> impl Future<Output = Result<Vec<Project>, ApiError>> + Send {
        boxed(async move { Ok(list(&self.0.config.raw().projects)) })
    }

    fn create_project(
        &self,
        body: Project,
    ) -> impl Future<Output = Result<Project, ApiError>> + Send {
        boxed(async move { self.add(body, |c| &mut c.projects).await })
    }

    fn delete_project(
        &self,
        name: String,
    ) -> impl Future<Output = Result<Project, ApiError>> + Send {
        boxed(async move { self.remove(name, |c| &mut c.projects).await })
    }

    fn get_config(&self) -> impl Future<Output = Result<Config, ApiError>> + Send {
        boxed(async move { Ok((*self.0.config.raw()).clone()) })
    }

    fn update_config(&self, body: Config) -> impl Future<Output = Result<Config, ApiError>> + Send {
        boxed(async move {
            self.0
                .config
                .update(|c| {
                    *c = body;
                    Ok::<_, ApiError>(())
                })
                .await?;
            Ok((*self.0.config.raw()).clone())
        })
    }

    fn reload_config(&self) -> impl Future<Output = Result<Config, ApiError>> + Send {
        boxed(async move { Ok((*self.0.config.reload().await?).clone()) })
    }

    fn get_analytics(
        &self,
        query: GetAnalyticsQuery,
    ) -> impl Future<Output = Result<AnalyticsReport, ApiError>> + Send {
        boxed(async move {
            let window_secs = query.window_secs.unwrap_or(3600).max(1);
            let scope = crate::analytics::Scope {
                window: std::time::Duration::from_secs(window_secs),
                server: query.server.as_deref(),
                name: query.name.as_deref(),
                profile: query.profile.as_deref(),
                buckets: query.buckets.unwrap_or(24).clamp(1, 240) as usize,
            };
            let (rows, series) =
                crate::analytics::report(&self.0.store, self.0.gateway.analytics(), &scope)
                    .await
                    .map_err(store_unavailable)?;
            Ok(AnalyticsReport {
                window_secs,
                rows,
                series,
            })
        })
    }

    fn list_tasks(
        &self,
        query: ListTasksQuery,
    ) -> impl Future<Output = Result<Vec<TaskInfo>, ApiError>> + Send {
        boxed(async move {
            let status = match query.status.as_deref() {
                None | Some("") => None,
                Some(name) => Some(crate::tasks::Status::from_name(name).ok_or_else(|| {
                    ApiError::bad_request(format!("unknown task status `{name}`"))
                })?),
            };
            let limit = query.limit.unwrap_or(200).clamp(1, 1000) as i64;
            let found = crate::tasks::recent(&self.0.store, status, limit)
                .await
                .map_err(store_unavailable)?;
            Ok(found.into_iter().filter_map(task_info).collect())
        })
    }

    fn cancel_task(
        &self,
        task_id: String,
    ) -> impl Future<Output = Result<TaskInfo, ApiError>> + Send {
        boxed(async move {
            let cancelled = self
                .0
                .gateway
                .cancel_task(&task_id)
                .await
                .map_err(|e| ApiError::bad_request(e.message))?
                .ok_or_else(|| ApiError::not_found(format!("no task `{task_id}`")))?;
            task_info(cancelled).ok_or_else(|| ApiError::internal("unreadable task"))
        })
    }

    fn list_oauth_clients(
        &self,
    ) -> impl Future<Output = Result<Vec<OAuthClient>, ApiError>> + Send {
        boxed(async move {
            let clients = crate::oauth::grants::clients(&self.0.store)
                .await
                .map_err(store_unavailable)?;
            Ok(clients.into_iter().map(oauth_client).collect())
        })
    }

    fn delete_oauth_client(
        &self,
        client_id: String,
    ) -> impl Future<Output = Result<OAuthClient, ApiError>> + Send {
        boxed(async move {
            let deleted = crate::oauth::grants::delete_client(&self.0.store, &client_id)
                .await
                .map_err(store_unavailable)?
                .ok_or_else(|| ApiError::not_found(format!("no OAuth client `{client_id}`")))?;
            // Tokens this process verified lately are checked against the store again.
            self.0.access_cache.clear();
            tracing::info!(client = %client_id, "OAuth client deleted, its grants revoked");
            Ok(oauth_client(deleted))
        })
    }

    fn list_oauth_grants(&self) -> impl Future<Output = Result<Vec<OAuthGrant>, ApiError>> + Send {
        boxed(async move {
            let grants = crate::oauth::grants::in_force(&self.0.store, None)
                .await
                .map_err(store_unavailable)?;
            Ok(grants.into_iter().map(oauth_grant).collect())
        })
    }

    fn revoke_oauth_grant(
        &self,
        grant_id: String,
    ) -> impl Future<Output = Result<OAuthGrant, ApiError>> + Send {
        boxed(async move {
            let store = &self.0.store;
            let grant = crate::oauth::grants::in_force(store, Some(&grant_id))
                .await
                .map_err(store_unavailable)?
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::not_found(format!("no grant in force `{grant_id}`")))?;
            crate::oauth::grants::revoke_family(store, &grant_id)
                .await
                .map_err(store_unavailable)?;
            self.0.access_cache.clear();
            tracing::info!(client = %grant.client_id, "OAuth grant revoked by an operator");
            Ok(oauth_grant(grant))
        })
    }

    fn enable_auth(
        &self,
        body: EnableAuthRequest,
    ) -> impl Future<Output = Result<AuthStatus, ApiError>> + Send {
        boxed(async move {
            let username = body.username.to_string();
            let password = body.password.to_string();
            let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&password))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            self.0
                .config
                .update(|c| {
                    c.settings.auth.enabled = true;
                    c.settings.auth.username = Some(username.clone());
                    c.settings.auth.password_hash = Some(hash);
                    Ok::<_, ApiError>(())
                })
                .await?;
            tracing::info!(user = %username, "admin Basic auth enabled");
            Ok(AuthStatus {
                enabled: true,
                username: Some(username),
            })
        })
    }
}

fn text(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key).and_then(|v| v.as_str()).map(str::to_string)
}

fn store_unavailable(e: sqlx::Error) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        e.to_string(),
    )
}

/// A stored task as operators see it: a profile token's identity shortened (a hash, but the
/// full one is what authenticates nothing and says nothing more).
fn task_info(t: crate::tasks::Task) -> Option<TaskInfo> {
    let owner = match t.owner.strip_prefix("token:") {
        Some(hash) => format!("token:{}", hash.get(..12).unwrap_or(hash)),
        None => t.owner.clone(),
    };
    Some(TaskInfo {
        status: t.status.as_str().parse().ok()?,
        node: t.node.filter(|_| !t.status.is_terminal()),
        task_id: t.id,
        owner,
        status_message: t.message,
        created_at: crate::tasks::iso8601(t.created_ms),
        updated_at: crate::tasks::iso8601(t.updated_ms),
    })
}

fn oauth_client(c: crate::oauth::grants::Registered) -> OAuthClient {
    OAuthClient {
        client_id: c.client_id,
        client_name: c.name,
        redirect_uris: c.redirect_uris,
        grants: c.grants.max(0) as u64,
        created_at: crate::tasks::iso8601(c.created_ms),
    }
}

fn oauth_grant(g: crate::oauth::grants::InForce) -> OAuthGrant {
    OAuthGrant {
        id: g.family,
        client_id: g.client_id,
        client_name: g.client_name,
        subject: g.subject,
        scope: g.scope,
        expires_at: crate::tasks::iso8601(g.expires_ms),
    }
}
