//! The `mcp-director` command line: help text pinned by snapshots, admin commands against a
//! running director, and `import`.

mod common;

use common::Director;
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcp-director"))
        .args(args)
        .env_remove("MCP_DIRECTOR_URL")
        .env_remove("MCP_DIRECTOR_USER")
        .env_remove("MCP_DIRECTOR_PASSWORD")
        .output()
        .expect("run mcp-director")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn help_texts() {
    for (name, args) in [
        ("help", vec!["--help"]),
        ("serve_help", vec!["serve", "--help"]),
        ("stdio_help", vec!["stdio", "--help"]),
        ("servers_help", vec!["servers", "--help"]),
        ("servers_add_help", vec!["servers", "add", "--help"]),
        ("profiles_create_help", vec!["profiles", "create", "--help"]),
        ("import_help", vec!["import", "--help"]),
    ] {
        insta::assert_snapshot!(name, stdout(&cli(&args)));
    }
}

#[tokio::test]
async fn admin_commands_drive_a_running_director() {
    let d = Director::start("");
    let url = d.url.as_str();
    let out = stdout(&cli(&[
        "servers",
        "add",
        "fs",
        "--url",
        url,
        "--command",
        "/bin/echo",
        "--arg",
        "-y",
        "--arg",
        "@modelcontextprotocol/server-filesystem",
        "--env",
        "LOG=info",
    ]));
    assert_eq!(out, "added server fs\n");
    let out = stdout(&cli(&[
        "servers",
        "add",
        "search",
        "--url",
        url,
        "--transport",
        "streamable-http",
        "--endpoint",
        "http://127.0.0.1:9/mcp",
    ]));
    assert_eq!(out, "added server search\n");
    let list = stdout(&cli(&["servers", "list", "--url", url]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(
        lines[1].starts_with("fs ") && lines[1].contains("/bin/echo -y @modelcontextprotocol"),
        "{list}"
    );
    assert!(
        lines[2].starts_with("search ") && lines[2].contains("http://127.0.0.1:9/mcp"),
        "{list}"
    );

    // A duplicate is a clear error and a non-zero exit.
    let dup = cli(&["servers", "add", "fs", "--url", url, "--command", "x"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("409 conflict"));

    let created = stdout(&cli(&[
        "profiles",
        "create",
        "ro",
        "--url",
        url,
        "--server",
        "fs",
        "--allow",
        "fs/read_*",
        "--require-token",
    ]));
    assert!(created.contains("token (shown once): "), "{created}");

    // Enable auth; afterwards commands need credentials.
    let enable = Command::new(env!("CARGO_BIN_EXE_mcp-director"))
        .args(["auth", "enable", "--username", "admin", "--url", url])
        .env("MCP_DIRECTOR_NEW_PASSWORD", "correct-horse")
        .output()
        .unwrap();
    assert_eq!(stdout(&enable), "admin Basic auth enabled for admin\n");
    let denied = cli(&["servers", "list", "--url", url]);
    assert!(String::from_utf8_lossy(&denied.stderr).contains("401"));
    let ok = stdout(&cli(&[
        "servers",
        "remove",
        "search",
        "--url",
        url,
        "--user",
        "admin",
        "--password",
        "correct-horse",
    ]));
    assert_eq!(ok, "removed server search\n");
    let config = stdout(&cli(&[
        "config",
        "show",
        "--url",
        url,
        "--user",
        "admin",
        "--password",
        "correct-horse",
    ]));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert!(config["servers"]["fs"].is_object());
    assert!(config["servers"].get("search").is_none());
}

#[test]
fn import_turns_claude_desktop_servers_into_config_entries() {
    let dir = tempfile::tempdir().unwrap();
    let claude = dir.path().join("claude_desktop_config.json");
    std::fs::write(
        &claude,
        r#"{"mcpServers": {
            "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"], "env": {"A": "1"}},
            "remote": {"url": "http://127.0.0.1:9/mcp"}
        }}"#,
    )
    .unwrap();
    let toml = stdout(&cli(&["import", claude.to_str().unwrap()]));
    insta::assert_snapshot!("import_stdout", toml);

    let config = dir.path().join("director.toml");
    let out = cli(&[
        "import",
        claude.to_str().unwrap(),
        "--into",
        config.to_str().unwrap(),
    ]);
    stdout(&out);
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains("[servers.filesystem]") && written.contains("[servers.remote]"));
    // Importing again collides, and the file is unchanged.
    let again = cli(&[
        "import",
        claude.to_str().unwrap(),
        "--into",
        config.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), written);
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-director"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("MCP_DIRECTOR_LOG_FORMAT", "json")
        .env("MCP_DIRECTOR_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(stdout.next().unwrap().unwrap().starts_with("listening on "));
    child.kill().unwrap();
    child.wait().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("a JSON log line"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "mcp-director listening"),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hand_edits_of_the_config_file_are_applied() {
    if common::skip_unless_sqlite(
        "on a shared store the configuration is the store's, and the file is not followed",
    ) {
        return;
    }
    let exe = env!("CARGO_BIN_EXE_mcp-fixture-server");
    let d = common::Director::start(&format!("[servers.a]\ncommand = \"{exe}\"\n"));
    d.wait_running(&["a"]).await;
    let file = d.dir.join("mcp-director.toml");
    // An invalid edit changes nothing and says why in the log.
    std::fs::write(
        &file,
        format!("[servers.a]\ncommand = \"{exe}\"\nbogus = 1\n"),
    )
    .unwrap();
    common::wait_for(|| async {
        d.log()
            .contains("configuration file changed but is not valid")
            .then_some(())
    })
    .await;
    // A valid one is applied without a reload request: a new server starts.
    std::fs::write(
        &file,
        format!("[servers.a]\ncommand = \"{exe}\"\n[servers.b]\ncommand = \"{exe}\"\n"),
    )
    .unwrap();
    d.wait_running(&["a", "b"]).await;
    assert!(d.log().contains("configuration file changed: applied"));
}

#[test]
fn the_store_url_comes_from_flag_or_environment_and_its_password_is_never_shown() {
    // `.invalid` never resolves, so the start fails at once (a refused connection is retried).
    const URL: &str = "postgres://app:hunter2-pw@store.invalid/director";
    let dir = tempfile::tempdir().unwrap();
    let serve = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mcp-director"));
        c.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("MCP_DIRECTOR_LOG", "debug")
            .env_remove("MCP_DIRECTOR_STORE_URL");
        c
    };
    // The start fails, naming the store it tried.
    for mut cmd in [
        {
            let mut c = serve();
            c.args(["--store-url", URL]);
            c
        },
        {
            let mut c = serve();
            c.env("MCP_DIRECTOR_STORE_URL", URL);
            c
        },
    ] {
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("cannot open the store at postgres://app:***@store.invalid/director"),
            "{stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    assert!(!dir.path().join("state.db").exists());
}

#[test]
fn the_store_url_comes_from_the_configuration() {
    let elsewhere = tempfile::tempdir().unwrap();
    let db = elsewhere.path().join("not yet").join("store.db");
    let d = Director::start(&format!(
        "[settings.store]\nurl = \"sqlite://{}\"\n",
        db.display()
    ));
    assert!(db.exists(), "{}", d.log());
    assert!(!d.dir.join("data").join("state.db").exists());
}
