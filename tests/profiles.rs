//! Profiles with real clients: who sees what, token-protected profiles, and tokens kept out of
//! the logs.

mod common;

use common::{Director, McpHttp};
use serde_json::{Value, json};
use std::process::Command;

const TOKEN: &str = "pt_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

fn config() -> String {
    let exe = env!("CARGO_BIN_EXE_mcp-fixture-server");
    format!(
        "[servers.a]\ncommand = \"{exe}\"\nenv = {{ FIXTURE_NAME = \"a\" }}\n\
         [servers.b]\ncommand = \"{exe}\"\nenv = {{ FIXTURE_NAME = \"b\" }}\n\
         [profiles.ro]\nservers = [\"a\"]\nallow = [\"a/echo\", \"a/prog*\", \"fixture://static\"]\n\
         [profiles.locked]\nrequire_token = true\ntoken_sha256 = \"{}\"\ndeny = [\"*/crash\", \"*/slow\"]\n",
        mcp_director::secrets::sha256_hex(TOKEN)
    )
}

fn python_list(
    transport: &str,
    url: &str,
    token: Option<&str>,
    calls: &[&str],
) -> Result<Value, String> {
    let mut cmd = Command::new(common::peers().join("venv/bin/python"));
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/sdk_list.py"
    ))
    .arg(transport)
    .arg(url);
    if let Some(t) = token {
        cmd.arg(t);
    }
    cmd.arg("--").args(calls);
    let out = cmd.output().expect("python");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_with_different_profiles_see_different_tools() {
    let d = Director::start(&config());
    d.wait_running(&["a", "b"]).await;
    let mcp = format!("{}/mcp", d.url);

    let all = python_list("streamable", &mcp, None, &["b/echo"]).unwrap();
    let ro = python_list(
        "streamable",
        &format!("{mcp}?profile=ro"),
        None,
        &["a/echo", "a/env", "b/echo"],
    )
    .unwrap();
    let tools = |r: &Value| {
        r["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(tools(&ro), ["a/echo", "a/progress"]);
    assert!(
        tools(&all).len() == 22 && tools(&all).contains(&"b/env".to_string()),
        "{all}"
    );
    assert_eq!(all["calls"]["b/echo"], "b: x");
    assert_eq!(ro["calls"]["a/echo"], "a: x");
    // Hidden is indistinguishable from absent.
    assert_eq!(ro["calls"]["a/env"], json!([-32602, "Unknown tool: a/env"]));
    assert_eq!(
        ro["calls"]["b/echo"],
        json!([-32602, "Unknown tool: b/echo"])
    );
    // Over legacy SSE too.
    let ro_sse = python_list(
        "sse",
        &format!("{}/sse?profile=ro", d.url),
        None,
        &["a/env"],
    )
    .unwrap();
    assert_eq!(tools(&ro_sse), ["a/echo", "a/progress"]);

    // Resources and prompts follow the same rules.
    let mut raw = McpHttp::new(&d.url);
    raw.url = format!("{mcp}?profile=ro");
    raw.initialize(json!({})).await;
    let resources = raw
        .post(json!({"jsonrpc": "2.0", "id": 1, "method": "resources/list"}))
        .await;
    assert_eq!(
        resources[0]["result"]["resources"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{resources:?}"
    );
    let hidden = raw.post(json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "fixture://items/1"}})).await;
    assert_eq!(hidden[0]["error"]["code"], -32002);
    let prompts = raw.post(json!({"jsonrpc": "2.0", "id": 3, "method": "prompts/get", "params": {"name": "a/greet"}})).await;
    assert_eq!(prompts.last().unwrap()["error"]["code"], -32602);

    // An unknown profile or project: -32602 on initialize, 404 on /sse.
    let mut bad = McpHttp::new(&d.url);
    bad.url = format!("{mcp}?profile=nope");
    let answer = bad
        .post(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .await;
    assert_eq!(answer[0]["error"]["code"], -32602);
    let sse = reqwest::get(format!("{}/sse?project=nope", d.url))
        .await
        .unwrap();
    assert_eq!(sse.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_protected_profile_admits_only_its_token_and_never_logs_it() {
    let d = Director::start(&config());
    d.wait_running(&["a", "b"]).await;
    let mcp = format!("{}/mcp", d.url);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let http = reqwest::Client::new();
    let post = |url: String, bearer: Option<&str>| {
        let mut r = http
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(init.to_string());
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        r.send()
    };
    for (url, bearer) in [
        (format!("{mcp}?profile=locked"), None),
        (format!("{mcp}?profile=locked"), Some("wrong-token")),
        (format!("{mcp}?profile=locked&token=wrong-token"), None),
    ] {
        let r = post(url, bearer).await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    for url in [
        format!("{}/sse?profile=locked", d.url),
        format!("{}/sse?profile=locked&token=nope", d.url),
    ] {
        assert_eq!(reqwest::get(url).await.unwrap().status().as_u16(), 401);
    }
    // The right token, by header or query; and the token alone selects its profile.
    assert_eq!(
        post(format!("{mcp}?profile=locked"), Some(TOKEN))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        post(format!("{mcp}?profile=locked&token={TOKEN}"), None)
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let locked = python_list("streamable", &mcp, Some(TOKEN), &["a/slow", "a/echo"]).unwrap();
    assert_eq!(
        locked["calls"]["a/slow"],
        json!([-32602, "Unknown tool: a/slow"])
    );
    assert_eq!(locked["calls"]["a/echo"], "a: x");
    let sse = python_list(
        "sse",
        &format!("{}/sse?profile=locked&token={TOKEN}", d.url),
        None,
        &["b/crash"],
    )
    .unwrap();
    assert_eq!(
        sse["calls"]["b/crash"],
        json!([-32602, "Unknown tool: b/crash"])
    );
    // The Python SDK without the token is refused.
    let refused =
        python_list("streamable", &format!("{mcp}?profile=locked"), None, &[]).unwrap_err();
    assert!(refused.contains("401"), "{refused}");

    let log = d.log();
    assert!(
        log.contains("mcp-director listening"),
        "the log is captured"
    );
    assert!(!log.contains(TOKEN), "a token reached the log");
    assert!(!log.contains("wrong-token"), "a token reached the log");
}

#[test]
fn stdio_refuses_a_protected_profile_without_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config()).unwrap();
    let run = |token: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-director"));
        cmd.args(["stdio", "--profile", "locked", "--config"])
            .arg(&path)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("MCP_DIRECTOR_TOKEN")
            .stdin(std::process::Stdio::null());
        if let Some(t) = token {
            cmd.env("MCP_DIRECTOR_TOKEN", t);
        }
        cmd.output().unwrap()
    };
    let refused = run(None);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("profile `locked` requires its token"),
        "{stderr}"
    );
    assert!(
        refused.stdout.is_empty(),
        "nothing but JSON-RPC may reach stdout"
    );
    // With the token it serves (and ends when stdin does).
    let served = run(Some(TOKEN));
    assert!(
        served.status.success(),
        "{}",
        String::from_utf8_lossy(&served.stderr)
    );
    assert!(!String::from_utf8_lossy(&served.stderr).contains(TOKEN));
}

/// A session opened with a profile token belongs to that token, OAuth or not: its
/// `Mcp-Session-Id` alone (leaked, guessed from a log) is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_session_is_usable_only_with_its_token() {
    let d = Director::start(&config());
    d.wait_running(&["a", "b"]).await;
    let mut owner = McpHttp::new(&d.url);
    owner.url = format!("{}/mcp?profile=locked", d.url);
    owner.bearer = Some(TOKEN.to_string());
    owner.initialize(json!({})).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(owner.request(&list).send().await.unwrap().status(), 200);

    let mut thief = McpHttp::new(&d.url);
    thief.session = owner.session.clone();
    assert_eq!(thief.request(&list).send().await.unwrap().status(), 403);
    thief.bearer = Some("pt_someone-else".into());
    assert_eq!(thief.request(&list).send().await.unwrap().status(), 403);
}

/// `initialize` instructions describe only the servers the session can see.
#[tokio::test(flavor = "multi_thread")]
async fn instructions_name_only_the_servers_a_profile_sees() {
    let d = Director::start(&config());
    d.wait_running(&["a", "b"]).await;
    let mut all = McpHttp::new(&d.url);
    let text = all.initialize(json!({})).await["result"]["instructions"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("## a\n") && text.contains("## b\n"), "{text}");
    let mut ro = McpHttp::new(&d.url);
    ro.url = format!("{}/mcp?profile=ro", d.url);
    let text = ro.initialize(json!({})).await["result"]["instructions"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("## a\n") && !text.contains("## b\n"),
        "{text}"
    );
}
