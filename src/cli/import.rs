//! `mcp-director import FILE`: Claude Desktop's `mcpServers` block → `[servers.*]` entries.

use crate::config;
use anyhow::{Context, Result, bail};
use clap::Args;
use mcp_director_api::models::{Config, Server, Transport};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A Claude Desktop config (`claude_desktop_config.json`) or any JSON with `mcpServers`.
    file: PathBuf,
    /// Merge the servers into this configuration file (written atomically) instead of printing
    /// them as TOML.
    #[arg(long)]
    into: Option<PathBuf>,
}

#[derive(Deserialize)]
struct DesktopConfig {
    #[serde(rename = "mcpServers")]
    mcp_servers: BTreeMap<String, DesktopServer>,
}

/// One entry of `mcpServers`; unknown keys are ignored (clients add their own).
#[derive(Deserialize)]
struct DesktopServer {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    url: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// A name valid for the director: invalid characters become `-`.
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_start_matches(['_', '.', '-']).to_string();
    s.chars().take(64).collect()
}

/// The servers of a Claude Desktop config, by (sanitised) name.
pub fn convert(json: &str) -> Result<BTreeMap<String, Server>> {
    let desktop: DesktopConfig =
        serde_json::from_str(json).context("expected a JSON object with `mcpServers`")?;
    let mut out = BTreeMap::new();
    for (name, s) in desktop.mcp_servers {
        let key = sanitize(&name);
        if key.is_empty() || out.contains_key(&key) {
            bail!("server `{name}` has no usable name (after sanitising: `{key}`)");
        }
        let transport = match (s.url.is_some(), s.kind.as_deref()) {
            (false, _) => Transport::Stdio,
            (true, Some("sse")) => Transport::Sse,
            (true, _) => Transport::StreamableHttp,
        };
        let server = Server {
            transport,
            command: s.command,
            args: s.args,
            env: s.env,
            cwd: s.cwd,
            url: s.url,
            headers: s.headers,
            ..Server::default()
        };
        out.insert(key, server);
    }
    Ok(out)
}

pub fn run(args: ImportArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let servers = convert(&text).with_context(|| args.file.display().to_string())?;
    match args.into {
        None => {
            config::validate(&Config {
                servers: servers.clone(),
                ..Config::default()
            })?;
            // Just the [servers.*] tables: [settings] is not imported.
            #[derive(serde::Serialize)]
            struct Servers {
                servers: BTreeMap<String, Server>,
            }
            print!("{}", toml::to_string_pretty(&Servers { servers })?);
        }
        Some(path) => {
            let mut cfg = if path.exists() {
                config::load(&path)?
            } else {
                config::embedded_default()
            };
            let count = servers.len();
            for (name, server) in servers {
                if cfg.servers.contains_key(&name) {
                    bail!("{}: server `{name}` already exists", path.display());
                }
                cfg.servers.insert(name, server);
            }
            config::validate(&cfg)?;
            config::save(&path, &cfg)?;
            eprintln!("imported {count} servers into {}", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_desktop_servers_become_director_servers() {
        let json = r#"{"mcpServers": {
            "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
            "my search": {"url": "https://search.example/mcp", "headers": {"X-Key": "k"}},
            "legacy": {"type": "sse", "url": "http://127.0.0.1:9/sse"}
        }, "globalShortcut": ""}"#;
        let servers = convert(json).unwrap();
        assert_eq!(servers["filesystem"].transport, Transport::Stdio);
        assert_eq!(servers["filesystem"].args[2], "/tmp");
        assert_eq!(servers["my-search"].transport, Transport::StreamableHttp);
        assert_eq!(servers["my-search"].headers["X-Key"], "k");
        assert_eq!(servers["legacy"].transport, Transport::Sse);
        let cfg = Config {
            servers,
            ..Config::default()
        };
        config::validate(&cfg).unwrap();
        let reparsed = config::parse(&config::to_toml(&cfg), "import").unwrap();
        assert_eq!(reparsed, cfg);
    }
}
