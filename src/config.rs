//! The configuration file: parse, expand, validate, persist.
//!
//! The types are the spec's (`Config`, `Server`, `Profile`, `Project`, generated from
//! `spec/openapi.yaml`), so the TOML file, `GET /api/config` and the admin objects cannot drift
//! apart. Unknown keys are rejected by the generated `deny_unknown_fields`.
//!
//! Two forms exist: the *raw* configuration, exactly as written (with `${VAR}` references), is
//! what the admin API edits and what is written back; the *effective* one has the references
//! expanded and is what the director runs. Secrets from the environment are never written to disk.

use mcp_director_api::models::{Config, Profile, Project, Server, Transport};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A configuration problem, naming where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// toml's message carries line, column and the offending key.
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// The store holding the configuration of several replicas failed.
    #[error("configuration store: {0}")]
    Store(String),
    /// Another replica changed the configuration meanwhile.
    #[error("{0}")]
    Conflict(String),
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The built-in configuration used when no file exists: no upstreams, secure defaults.
pub fn embedded_default() -> Config {
    Config::default()
}

/// Parses TOML text; `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: origin.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    validate(&config)?;
    Ok(config)
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// The TOML text of a configuration; names live in the table keys, not in the entries.
pub fn to_toml(config: &Config) -> String {
    let mut config = config.clone();
    config.servers.values_mut().for_each(|s| s.name = None);
    config.profiles.values_mut().for_each(|p| p.name = None);
    config.projects.values_mut().for_each(|p| p.name = None);
    toml::to_string_pretty(&config).expect("the spec's config types serialise to TOML")
}

/// Writes the configuration atomically: temp file in the same directory, fsync, rename,
/// fsync the directory. A crash leaves either the old or the new file, never half of one.
pub fn save(path: &Path, config: &Config) -> Result<(), ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map_or("config".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let text = match std::fs::read_to_string(path) {
        Ok(old) => edited(&old, config),
        Err(_) => format!(
            "# MCP Director configuration. Changes made through the admin API are written here.\n{}",
            to_toml(config)
        ),
    };
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// The file's text with `config` in it: only what differs from what the file said is
/// changed, so the user's comments, order and formatting stay (and defaults the file leaves
/// out stay out). A file that no longer parses is replaced.
pub fn edited(old_text: &str, config: &Config) -> String {
    let (Ok(mut doc), Ok(old)) = (
        old_text.parse::<toml_edit::DocumentMut>(),
        parse(old_text, "the file"),
    ) else {
        return to_toml(config);
    };
    let full = |c: &Config| to_toml(c).parse::<toml_edit::DocumentMut>();
    let (Ok(before), Ok(after)) = (full(&old), full(config)) else {
        return to_toml(config);
    };
    apply_changes(doc.as_table_mut(), before.as_table(), after.as_table());
    doc.to_string()
}

/// Edits `doc` by what changed from `before` to `after` (both complete renderings).
fn apply_changes(doc: &mut toml_edit::Table, before: &toml_edit::Table, after: &toml_edit::Table) {
    let keys: Vec<String> = before
        .iter()
        .chain(after.iter())
        .map(|(k, _)| k.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for key in keys {
        match (before.get(&key), after.get(&key)) {
            (Some(b), Some(a)) if same(b, a) => {}
            (Some(toml_edit::Item::Table(b)), Some(toml_edit::Item::Table(a))) => {
                if !doc.contains_key(&key) {
                    let mut table = toml_edit::Table::new();
                    table.set_implicit(true);
                    doc.insert(&key, toml_edit::Item::Table(table));
                }
                match doc.get_mut(&key).and_then(toml_edit::Item::as_table_mut) {
                    Some(t) => apply_changes(t, b, a),
                    // Written some other way (an inline table): rewritten.
                    None => {
                        doc.insert(&key, toml_edit::Item::Table(a.clone()));
                    }
                }
            }
            (_, Some(a)) => match doc.get_mut(&key) {
                Some(toml_edit::Item::Value(v)) if a.is_value() => {
                    let decor = v.decor().clone();
                    *v = a.as_value().cloned().unwrap_or_else(|| v.clone());
                    *v.decor_mut() = decor;
                }
                _ => {
                    doc.insert(&key, a.clone());
                }
            },
            (Some(_), None) => {
                doc.remove(&key);
            }
            (None, None) => {}
        }
    }
}

/// Whether two items say the same, whatever their formatting.
fn same(a: &toml_edit::Item, b: &toml_edit::Item) -> bool {
    use toml_edit::Item;
    let tables = |a: &toml_edit::Table, b: &toml_edit::Table| {
        a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
    };
    match (a, b) {
        (Item::Table(a), Item::Table(b)) => tables(a, b),
        (Item::ArrayOfTables(a), Item::ArrayOfTables(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(a, b)| tables(a, b))
        }
        (Item::Value(a), Item::Value(b)) => {
            let bare = |v: &toml_edit::Value| {
                let mut v = v.clone();
                v.decor_mut().clear();
                v.to_string()
            };
            bare(a) == bare(b)
        }
        (Item::None, Item::None) => true,
        _ => false,
    }
}

/// Fills each entry's `name` from its table key (and rejects a contradicting one), then checks
/// every rule the schema cannot express.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let bind = &config.settings.bind;
    bind.parse::<std::net::SocketAddr>().map_err(|_| {
        ConfigError::invalid(
            "settings.bind",
            format!("`{bind}` is not an address:port such as 127.0.0.1:3000"),
        )
    })?;
    for proxy in &config.settings.trusted_proxies {
        if crate::client_addr::parse(proxy).is_none() {
            return Err(ConfigError::invalid(
                "settings.trusted_proxies",
                format!("`{proxy}` is not a network (10.0.0.0/8) or an address"),
            ));
        }
    }
    if let Some(redis) = &config.settings.cluster.redis_url
        && let Err(why) = crate::cluster::redis::SharedLimits::new(redis)
    {
        return Err(ConfigError::invalid("settings.cluster.redis_url", why));
    }
    for (key, server) in &config.servers {
        let at = format!("servers.{key}");
        check_name(&at, key, server.name.as_deref().map(String::as_str))?;
        validate_server(&at, server)?;
    }
    let servers: BTreeSet<&String> = config.servers.keys().collect();
    for (key, profile) in &config.profiles {
        let at = format!("profiles.{key}");
        check_name(&at, key, profile.name.as_deref().map(String::as_str))?;
        validate_refs(&at, &profile.servers, &servers)?;
        validate_profile(&at, profile)?;
    }
    for (key, project) in &config.projects {
        let at = format!("projects.{key}");
        check_name(&at, key, project.name.as_deref().map(String::as_str))?;
        validate_refs(&at, &project.servers, &servers)?;
        validate_project(&at, project)?;
    }
    if let Some(p) = &config.settings.default_profile
        && !config.profiles.contains_key(p)
    {
        return Err(ConfigError::invalid(
            "settings.default_profile",
            format!("no profile named `{p}`"),
        ));
    }
    let auth = &config.settings.auth;
    if auth.enabled && (auth.username.is_none() || auth.password_hash.is_none()) {
        return Err(ConfigError::invalid(
            "settings.auth",
            "enabled needs username and password_hash (use `mcp-director auth enable`)",
        ));
    }
    validate_oauth(config)
}

fn validate_oauth(config: &Config) -> Result<(), ConfigError> {
    let oauth = &config.settings.oauth;
    if oauth.enabled && !config.settings.auth.enabled && oauth.oidc.is_none() {
        return Err(ConfigError::invalid(
            "settings.oauth",
            "enabled needs a way for users to sign in: settings.auth (local admin) or settings.oauth.oidc",
        ));
    }
    if let Some(issuer) = &oauth.issuer {
        let ok = url::Url::parse(issuer).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.query().is_none()
                && u.fragment().is_none()
        });
        if !ok {
            return Err(ConfigError::invalid(
                "settings.oauth.issuer",
                format!("`{issuer}` is not an http(s) URL without query or fragment"),
            ));
        }
    }
    if let Some(oidc) = &oauth.oidc {
        if url::Url::parse(&oidc.issuer).is_err() {
            return Err(ConfigError::invalid(
                "settings.oauth.oidc.issuer",
                format!("`{}` is not a URL", oidc.issuer),
            ));
        }
        // A provider may know anyone (think of a public one): who may sign in must be said.
        // (With OAuth off the provider serves only the console, whose own rules say who.)
        if oauth.enabled
            && oidc.allowed_subjects.is_empty()
            && oidc.allowed_emails.is_empty()
            && oidc.allowed_groups.is_empty()
        {
            return Err(ConfigError::invalid(
                "settings.oauth.oidc",
                "say who may sign in: allowed_subjects, allowed_emails or allowed_groups",
            ));
        }
    }
    if let Some(rule) = oauth
        .profiles
        .iter()
        .find(|r| !config.profiles.contains_key(&r.profile))
    {
        return Err(ConfigError::invalid(
            "settings.oauth.profiles",
            format!("no profile named `{}`", rule.profile),
        ));
    }
    Ok(())
}

/// Names are `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`: safe in URLs, file names and exposed tool names.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn check_name(at: &str, key: &str, name: Option<&str>) -> Result<(), ConfigError> {
    if !is_valid_name(key) {
        return Err(ConfigError::invalid(
            at,
            "names are 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit",
        ));
    }
    match name {
        Some(n) if n != key => Err(ConfigError::invalid(
            format!("{at}.name"),
            format!("`{n}` contradicts the table key `{key}`"),
        )),
        _ => Ok(()),
    }
}

fn validate_server(at: &str, server: &Server) -> Result<(), ConfigError> {
    match server.transport {
        Transport::Stdio => {
            if server.command.as_deref().is_none_or(str::is_empty) {
                return Err(ConfigError::invalid(
                    format!("{at}.command"),
                    "a stdio server needs a command",
                ));
            }
            if server.url.is_some() {
                return Err(ConfigError::invalid(
                    format!("{at}.url"),
                    "a stdio server takes command/args, not url",
                ));
            }
        }
        Transport::StreamableHttp | Transport::Sse => {
            let url = server.url.as_deref().unwrap_or_default();
            if !(url.starts_with("http://") || url.starts_with("https://") || url.contains("${")) {
                return Err(ConfigError::invalid(
                    format!("{at}.url"),
                    "an HTTP server needs an http:// or https:// url",
                ));
            }
            if server.command.is_some() {
                return Err(ConfigError::invalid(
                    format!("{at}.command"),
                    "an HTTP server takes url, not command",
                ));
            }
        }
    }
    if let Some(prefix) = &server.prefix
        && !prefix.is_empty()
        && !is_valid_name(prefix)
    {
        return Err(ConfigError::invalid(
            format!("{at}.prefix"),
            "a prefix is \"\" or a valid name",
        ));
    }
    Ok(())
}

fn validate_profile(at: &str, profile: &Profile) -> Result<(), ConfigError> {
    for (list, globs) in [("allow", &profile.allow), ("deny", &profile.deny)] {
        if let Some(g) = globs.iter().find(|g| g.is_empty()) {
            return Err(ConfigError::invalid(
                format!("{at}.{list}"),
                format!("empty pattern `{g}`"),
            ));
        }
    }
    Ok(())
}

fn validate_project(at: &str, project: &Project) -> Result<(), ConfigError> {
    if let Some(root) = project.roots.iter().find(|r| !r.uri.contains(':')) {
        return Err(ConfigError::invalid(
            format!("{at}.roots"),
            format!("`{}` is not a URI (e.g. file:///code/web)", root.uri),
        ));
    }
    Ok(())
}

fn validate_refs(
    at: &str,
    names: &[String],
    servers: &BTreeSet<&String>,
) -> Result<(), ConfigError> {
    match names.iter().find(|n| !servers.contains(n)) {
        Some(n) => Err(ConfigError::invalid(
            format!("{at}.servers"),
            format!("no server named `{n}`"),
        )),
        None => Ok(()),
    }
}

/// The effective configuration: `${VAR}` (and `${VAR:-default}`) expanded in every server and
/// project string an operator would reasonably keep out of the file (command, args, env, cwd,
/// url, headers), the OIDC client secret and the store URL. `$$` is a literal `$`.
pub fn expand(config: &Config) -> Result<Config, ConfigError> {
    expand_with(config, &|name| std::env::var(name).ok())
}

pub fn expand_with(
    config: &Config,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut out = config.clone();
    for (name, server) in out.servers.iter_mut() {
        let at = format!("servers.{name}");
        let x = |field: &str, s: &mut String| -> Result<(), ConfigError> {
            *s = expand_str(s, lookup)
                .map_err(|m| ConfigError::invalid(format!("{at}.{field}"), m))?;
            Ok(())
        };
        if let Some(c) = server.command.as_mut() {
            x("command", c)?;
        }
        for a in server.args.iter_mut() {
            x("args", a)?;
        }
        for (k, v) in server.env.iter_mut() {
            x(&format!("env.{k}"), v)?;
        }
        if let Some(c) = server.cwd.as_mut() {
            x("cwd", c)?;
        }
        if let Some(u) = server.url.as_mut() {
            x("url", u)?;
        }
        for (k, v) in server.headers.iter_mut() {
            x(&format!("headers.{k}"), v)?;
        }
    }
    if let Some(secret) = out
        .settings
        .oauth
        .oidc
        .as_mut()
        .and_then(|o| o.client_secret.as_mut())
    {
        *secret = expand_str(secret, lookup)
            .map_err(|m| ConfigError::invalid("settings.oauth.oidc.client_secret", m))?;
    }
    if let Some(url) = out.settings.store.url.as_mut() {
        *url =
            expand_str(url, lookup).map_err(|m| ConfigError::invalid("settings.store.url", m))?;
    }
    for (name, project) in out.projects.iter_mut() {
        for (k, v) in project.env.iter_mut() {
            *v = expand_str(v, lookup)
                .map_err(|m| ConfigError::invalid(format!("projects.{name}.env.{k}"), m))?;
        }
        if let Some(c) = project.cwd.as_mut() {
            *c = expand_str(c, lookup)
                .map_err(|m| ConfigError::invalid(format!("projects.{name}.cwd"), m))?;
        }
    }
    Ok(out)
}

/// Expands `${VAR}`, `${VAR:-default}` and `$$` in one string.
pub fn expand_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in `{s}`"))?;
            let (name, default) = match body[..end].split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (&body[..end], None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{}}}` is not a variable name", &body[..end]));
            }
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(format!("environment variable {name} is not set")),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_with_their_line() {
        let err = parse("[settings]\nbind = \"127.0.0.1:1\"\nbindd = 3\n", "d.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("d.toml: "), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("bindd"), "{msg}");
    }

    #[test]
    fn stdio_server_without_command_is_named() {
        let err = parse("[servers.fs]\ntransport = \"stdio\"\n", "c.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "servers.fs.command: a stdio server needs a command"
        );
    }

    #[test]
    fn profile_referring_to_unknown_server_is_rejected() {
        let err = parse("[profiles.p]\nservers = [\"nope\"]\n", "c.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "profiles.p.servers: no server named `nope`"
        );
    }

    #[test]
    fn oauth_needs_a_way_to_sign_in_and_oidc_needs_allow_rules() {
        let err = parse("[settings.oauth]\nenabled = true\n", "c.toml").unwrap_err();
        assert!(
            err.to_string().contains("needs a way for users to sign in"),
            "{err}"
        );
        let open_idp = "[settings.oauth]\nenabled = true\n\
            [settings.oauth.oidc]\nissuer = \"https://idp.example\"\nclient_id = \"d\"\n";
        let err = parse(open_idp, "c.toml").unwrap_err();
        assert!(err.to_string().contains("say who may sign in"), "{err}");
        let ruled = format!("{open_idp}allowed_emails = [\"*@example.com\"]\n");
        assert!(parse(&ruled, "c.toml").is_ok());
        // Off for clients, the provider is the console's only (`settings.auth.oidc_*` say who).
        let console_only = open_idp.replace("enabled = true", "enabled = false");
        assert!(parse(&console_only, "c.toml").is_ok());
    }

    #[test]
    fn expansion_reads_variables_defaults_and_escapes() {
        let env = |n: &str| (n == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(
            expand_str("Bearer ${TOKEN}", &env).unwrap(),
            "Bearer s3cret"
        );
        assert_eq!(expand_str("${NOPE:-x}/$$HOME", &env).unwrap(), "x/$HOME");
        assert_eq!(
            expand_str("${NOPE}", &env).unwrap_err(),
            "environment variable NOPE is not set"
        );
        assert!(expand_str("${TOKEN", &env).is_err());
    }

    #[test]
    fn expansion_never_touches_the_raw_config() {
        let raw = parse(
            "[servers.s]\ntransport = \"streamable-http\"\nurl = \"http://h/mcp\"\n\
             headers = { Authorization = \"Bearer ${T}\" }\n",
            "c.toml",
        )
        .unwrap();
        let eff = expand_with(&raw, &|_| Some("abc".into())).unwrap();
        assert_eq!(eff.servers["s"].headers["Authorization"], "Bearer abc");
        assert!(to_toml(&raw).contains("${T}"));
        assert!(!to_toml(&raw).contains("abc"));
    }

    #[test]
    fn save_then_load_is_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let config = parse(
            "[servers.fs]\ncommand = \"npx\"\nargs = [\"-y\", \"x\"]\n[profiles.r]\nservers = [\"fs\"]\nallow = [\"fs/read_*\"]\n",
            "c.toml",
        )
        .unwrap();
        save(&path, &config).unwrap();
        assert_eq!(load(&path).unwrap(), config);
    }

    #[test]
    fn admin_edits_keep_the_users_comments_order_and_omissions() {
        let text = "# my gateway\n\n\
[servers.zeta]   # the z one\n\
command = \"z\"  # keep me\n\
\n\
# alpha comes second on purpose\n\
[servers.alpha]\n\
command = \"a\"\n\
args = [\"--x\"]\n";
        let mut config = parse(text, "t").unwrap();
        config.servers.get_mut("zeta").unwrap().args = vec!["--y".into()];
        let mut beta = config.servers["alpha"].clone();
        beta.command = Some("b".into());
        config.servers.insert("beta".into(), beta);
        config.servers.remove("alpha");
        let out = edited(text, &config);
        assert!(
            out.starts_with(
                "# my gateway\n\n[servers.zeta]   # the z one\ncommand = \"z\"  # keep me\n"
            ),
            "{out}"
        );
        assert!(out.contains("args = [\"--y\"]"), "{out}");
        // What belonged to the removed entry went with it.
        assert!(!out.contains("alpha"), "{out}");
        assert!(out.contains("[servers.beta]"), "{out}");
        // Defaults the file left out stay out.
        assert!(
            !out.contains("[settings]") && !out.contains("bind"),
            "{out}"
        );
        assert_eq!(parse(&out, "t").unwrap(), config);
    }
}
