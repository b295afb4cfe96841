//! The `mcp-director` command line: `serve` (the default), `stdio`, the admin commands (built on
//! the generated client crate) and `import`.

mod admin;
mod import;

use crate::live_config::LiveConfig;
use crate::server;
use crate::state::AppState;
use crate::store::Store;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "mcp-director",
    version,
    about = "One MCP endpoint in front of many MCP servers"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve MCP (/mcp, /sse), the admin API, OAuth and observability over HTTP (the default).
    Serve(ServeArgs),
    /// Serve one MCP client over stdin/stdout (for clients that launch their servers).
    Stdio(StdioArgs),
    /// Manage upstream servers.
    Servers(admin::Remote<admin::ServersCmd>),
    /// List the tools the director exposes.
    Tools(admin::Remote<admin::ToolsCmd>),
    /// Manage profiles (who sees what).
    Profiles(admin::Remote<admin::ProfilesCmd>),
    /// Manage projects (where servers run).
    Projects(admin::Remote<admin::ProjectsCmd>),
    /// Show or reload the configuration.
    Config(admin::Remote<admin::ConfigCmd>),
    /// Admin API authentication.
    Auth(admin::Remote<admin::AuthCmd>),
    /// Usage analytics: calls, error rate and latency per server, tool and profile.
    Analytics(admin::Remote<admin::AnalyticsCmd>),
    /// Turn a Claude Desktop `mcpServers` JSON file into `[servers.*]` entries.
    Import(import::ImportArgs),
}

#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Configuration file (TOML). Default: <data-dir>/mcp-director.toml, created on the first
    /// change; the embedded default is used until then.
    #[arg(long, short, env = "MCP_DIRECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address, overriding settings.bind.
    #[arg(long, env = "MCP_DIRECTOR_BIND")]
    bind: Option<String>,
    /// Directory for runtime state (the SQLite store). Default: the platform data directory.
    #[arg(long, env = "MCP_DIRECTOR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The store (`sqlite://…` or `postgres://…`), overriding settings.store.url. Default:
    /// state.db in the data directory.
    #[arg(long, env = "MCP_DIRECTOR_STORE_URL", hide_env_values = true)]
    store_url: Option<String>,
    /// How the other replicas reach this one (e.g. http://10.1.2.3:3000), overriding
    /// settings.cluster.node_url. Default: the listening address, when it is a specific one.
    #[arg(long, env = "MCP_DIRECTOR_NODE_URL")]
    node_url: Option<String>,
}

#[derive(Args, Debug)]
struct StdioArgs {
    /// Configuration file (TOML). Default: <data-dir>/mcp-director.toml, or the embedded default.
    #[arg(long, short, env = "MCP_DIRECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for runtime state. Default: the platform data directory.
    #[arg(long, env = "MCP_DIRECTOR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Profile to apply to this client.
    #[arg(long)]
    profile: Option<String>,
    /// Project to run the servers in.
    #[arg(long)]
    project: Option<String>,
    /// The profile's token (for profiles that require one). Prefer the environment variable.
    #[arg(long, env = "MCP_DIRECTOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

pub fn main() -> ExitCode {
    // One malloc arena: glibc otherwise grows one per worker thread, and under load the extra
    // arenas hold more memory (7.6 MiB anonymous at 16 connections, 5.9 with one) for no
    // throughput (per-thread caches already serve small allocations without the lock).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let cli = Cli::parse();
    let runtime = if std::env::var("MCP_DIRECTOR_RUNTIME").as_deref() == Ok("current") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-director: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            None => serve(cli.serve).await,
            Some(Command::Serve(args)) => serve(args).await,
            Some(Command::Stdio(args)) => stdio(args).await,
            Some(Command::Servers(c)) => c.run().await,
            Some(Command::Tools(c)) => c.run().await,
            Some(Command::Profiles(c)) => c.run().await,
            Some(Command::Projects(c)) => c.run().await,
            Some(Command::Config(c)) => c.run().await,
            Some(Command::Auth(c)) => c.run().await,
            Some(Command::Analytics(c)) => c.run().await,
            Some(Command::Import(args)) => import::run(args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-director: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("mcp-director")
}

/// The configuration (`--config`, else `<data-dir>/mcp-director.toml`, which starts as the
/// embedded default and is written on the first change) and the data directory.
fn open_config(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<(LiveConfig, PathBuf)> {
    let data_dir = data_dir.unwrap_or_else(default_data_dir);
    let live = match config {
        Some(path) => LiveConfig::open(&path, false)?,
        None => LiveConfig::open(&data_dir.join("mcp-director.toml"), true)?,
    };
    Ok((live, data_dir))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (config, data_dir) = open_config(args.config, args.data_dir)?;
    let observability = config.effective().settings.observability.clone();
    let telemetry = crate::telemetry::init(
        observability
            .otlp_endpoint
            .as_deref()
            .map(|endpoint| (endpoint, observability.service_name.as_str())),
    );
    let path = config.path().to_path_buf();
    let bind = args
        .bind
        .unwrap_or_else(|| config.effective().settings.bind.clone());
    let store_url = match args
        .store_url
        .or_else(|| config.effective().settings.store.url.clone())
    {
        Some(url) => url,
        None => Store::default_url(&data_dir)?,
    };
    // This replica's own, read before a shared configuration replaces the file's.
    let node_url = args
        .node_url
        .or_else(|| config.effective().settings.cluster.node_url.clone());
    let store = Store::open(&store_url).await?;
    config.share_through(&store).await?;
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, config = %path.display(), data_dir = %data_dir.display(), "mcp-director listening");
    // A line on stdout for scripts and tests that start the director on port 0.
    println!("listening on http://{addr}");
    let state = AppState::new(config, store, addr, node_url);
    let signalled = state.clone();
    tokio::spawn(crate::cluster::signals::listen(
        signalled.store.clone(),
        move |signal| match signal {
            crate::cluster::signals::Signal::Config => signalled.config.nudge(),
            crate::cluster::signals::Signal::Cancelled(task) => {
                tokio::spawn(signalled.gateway.clone().halt_if_cancelled(task));
            }
        },
    ));
    let follower = state.clone();
    tokio::spawn(async move {
        match follower.config.shared() {
            true => follower.config.follow_store().await,
            false => {
                follower
                    .config
                    .follow_file(std::time::Duration::from_secs(2))
                    .await
            }
        }
    });
    server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("mcp-director stopped");
    telemetry.shutdown().await;
    Ok(())
}

/// One client over stdin/stdout; everything else (logs) goes to stderr.
async fn stdio(args: StdioArgs) -> anyhow::Result<()> {
    let _telemetry = crate::telemetry::init(None);
    let (config, _) = open_config(args.config, args.data_dir)?;
    let chosen = crate::profile::scope(
        &config.effective(),
        args.profile.as_deref(),
        args.project.as_deref(),
        &match args.token.clone() {
            Some(t) => crate::profile::Credential::Token(t),
            None => crate::profile::Credential::None,
        },
    )
    .map_err(|refusal| anyhow::anyhow!("{refusal}"))?;
    let gateway =
        crate::gateway::Gateway::start(config.subscribe(), Default::default(), None, None);
    let served = crate::transport::stdio::serve(
        gateway.clone(),
        tokio::io::stdin(),
        tokio::io::stdout(),
        chosen,
    )
    .await;
    gateway.pool.stop_all();
    crate::upstream::stdio::stop_every_group();
    drop(config);
    served?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
