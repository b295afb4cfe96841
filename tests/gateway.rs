//! The gateway with real clients and real servers: the official Python SDK over Streamable HTTP
//! and legacy SSE, `@modelcontextprotocol/server-everything` over Streamable HTTP, and our
//! fixture server over stdio.

mod common;

use common::{Director, McpHttp};
use serde_json::{Value, json};
use std::process::Command;

fn fixture(name: &str, extra: &str) -> String {
    format!(
        "[servers.{name}]\ncommand = \"{}\"\nenv = {{ FIXTURE_NAME = \"{name}\" }}\n{extra}\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    )
}

fn python_sdk(transport: &str, url: &str) -> Value {
    let python = common::peers().join("venv/bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_client.py");
    let out = Command::new(python)
        .arg(script)
        .arg(transport)
        .arg(url)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "python SDK client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_reaches_stdio_and_http_upstreams_over_both_transports() {
    let (_everything, everything_url) = common::everything_http();
    let everything_js = common::peers()
        .join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let config = format!(
        "{}[servers.web]\ntransport = \"streamable-http\"\nurl = \"{everything_url}\"\n\
         [servers.ev]\ncommand = \"node\"\nargs = [\"{}\", \"stdio\"]\n",
        fixture("a", ""),
        everything_js.display()
    );
    let d = Director::start(&config);
    d.wait_running(&["a", "web", "ev"]).await;

    for (transport, path) in [("streamable", "/mcp"), ("sse", "/sse")] {
        let report = python_sdk(transport, &format!("{}{path}", d.url));
        let tools: Vec<&str> = report["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(
            tools.contains(&"a/echo") && tools.contains(&"web/echo"),
            "{transport}: {tools:?}"
        );
        assert_eq!(report["echo"], json!(["a: hello"]), "{transport}");
        // Arguments arrive exactly as sent.
        assert_eq!(
            report["echo_structured"]["arguments"],
            json!({"text": "hello", "nested": {"k": [1, 2.5, null]}})
        );
        assert_eq!(report["web_echo"], json!(["Echo: hi"]), "{transport}");
        assert_eq!(
            report["ev_echo"],
            json!(["Echo: over stdio"]),
            "{transport}"
        );
        assert_eq!(
            report["progress"],
            json!([[1.0, 3.0], [2.0, 3.0], [3.0, 3.0]]),
            "{transport}"
        );
        assert_eq!(
            report["sample"],
            json!(["sampled: answer to 6x7"]),
            "{transport}"
        );
        assert_eq!(
            report["elicit"],
            json!(["elicited: accept Ada"]),
            "{transport}"
        );
        assert_eq!(
            report["roots"],
            json!(["roots: [{\"uri\":\"file:///work/project\",\"name\":\"project\"}]"])
        );
        assert_eq!(report["resource"], json!(["content of fixture://static"]));
        assert_eq!(report["templated"], json!(["content of fixture://items/7"]));
        assert_eq!(report["prompt"], json!(["Hello Ada from a"]));
        assert_eq!(
            report["unknown_tool"],
            json!([-32602, "Unknown tool: a/nope"])
        );
        assert_eq!(report["protocol"], "2025-11-25");
        let mut snapshot = report.clone();
        // server-everything's own tool list may grow with its versions; ours is pinned.
        snapshot["tools"] = json!(
            tools
                .iter()
                .filter(|t| t.starts_with("a/"))
                .collect::<Vec<_>>()
        );
        insta::assert_json_snapshot!(format!("python_sdk_{transport}"), snapshot);
    }
}

/// Two sessions use the same progress token and the same upstream at once: each sees only its
/// own progress and its own response; a relayed server request reaches only its requester.
#[tokio::test(flavor = "multi_thread")]
async fn two_clients_never_see_each_others_traffic() {
    let d = Director::start(&fixture("a", ""));
    d.wait_running(&["a"]).await;
    let mut alice = McpHttp::new(&d.url);
    let mut bob = McpHttp::new(&d.url);
    alice.initialize(json!({"sampling": {}})).await;
    bob.initialize(json!({"sampling": {}})).await;
    let mut bob_stream = bob.open_stream(None).await;

    let call = |id: i64, steps: i64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "a/progress", "arguments": {"steps": steps}, "_meta": {"progressToken": "same"}}})
    };
    let (a, b) = tokio::join!(alice.post(call(1, 4)), bob.post(call(1, 2)));
    let progress = |msgs: &[Value]| -> Vec<Value> {
        msgs.iter()
            .filter(|m| m["method"] == "notifications/progress")
            .map(|m| m["params"].clone())
            .collect()
    };
    assert_eq!(progress(&a).len(), 4, "{a:?}");
    assert_eq!(progress(&b).len(), 2, "{b:?}");
    assert!(
        progress(&a)
            .iter()
            .chain(progress(&b).iter())
            .all(|p| p["progressToken"] == "same")
    );
    assert!(progress(&a).iter().all(|p| p["total"] == 4));
    assert!(progress(&b).iter().all(|p| p["total"] == 2));
    assert_eq!(a.last().unwrap()["result"]["content"][0]["text"], "4 steps");
    assert_eq!(b.last().unwrap()["result"]["content"][0]["text"], "2 steps");

    // Alice's sampling request goes to Alice alone.
    let alice_task = {
        let msg = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "a/sample", "arguments": {"prompt": "p"}}});
        alice.request(&msg).send()
    };
    let response = alice_task.await.unwrap();
    use futures::StreamExt;
    let mut body = response.bytes_stream();
    let mut parser = mcp_director::sse::Parser::default();
    let sampling = loop {
        let chunk = body.next().await.expect("stream open").unwrap();
        // (The priming event carries no message.)
        if let Some(e) = parser.feed(&chunk).into_iter().find(|e| !e.data.is_empty()) {
            break serde_json::from_str::<Value>(&e.data).unwrap();
        }
    };
    assert_eq!(sampling["method"], "sampling/createMessage");
    let answer = json!({"jsonrpc": "2.0", "id": sampling["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "from alice"}, "model": "m"}});
    assert_eq!(
        alice
            .request(&answer)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        202
    );
    let mut rest = String::new();
    while let Some(Ok(chunk)) = body.next().await {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(rest.contains("sampled: from alice"), "{rest}");
    // Bob answering Alice's request id is not routed anywhere.
    let forged = json!({"jsonrpc": "2.0", "id": sampling["id"], "result": {"role": "assistant", "content": {"type": "text", "text": "x"}, "model": "m"}});
    assert_eq!(
        bob.request(&forged).send().await.unwrap().status().as_u16(),
        202
    );
    // Bob's stream saw none of it.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    while let Ok((_, m)) = bob_stream.try_recv() {
        assert!(
            m["method"] != "sampling/createMessage" && m["method"] != "notifications/progress",
            "bob saw {m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_upstream_fails_calls_at_once_and_comes_back() {
    let d = Director::start(&fixture("a", ""));
    d.wait_running(&["a"]).await;
    let mut client = McpHttp::new(&d.url);
    client.initialize(json!({})).await;
    let slow = client.post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "a/slow", "arguments": {"ms": 600000}}}));
    let crash = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        client
            .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "a/crash", "arguments": {}}}))
            .await
    };
    // The slow call would take ten minutes: it can only finish here by failing fast.
    let (slow, crash) = tokio::join!(slow, crash);
    for answer in [slow.last().unwrap(), crash.last().unwrap()] {
        assert_eq!(answer["error"]["code"], -32603, "{answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains("'a'"),
            "{answer}"
        );
    }
    // Restarted with backoff; the next call succeeds.
    let c = d.client(None);
    let status = common::wait_for(|| async {
        let s = c.get_server_status("a").await.ok()?.into_inner();
        (s.state == mcp_director_client::types::UpstreamState::Running && s.restarts >= 1)
            .then_some(s)
    })
    .await;
    assert_eq!(status.last_error, None);
    let again = client
        .post(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "a/echo", "arguments": {"text": "back"}}}))
        .await;
    assert_eq!(
        again.last().unwrap()["result"]["content"][0]["text"],
        "a: back"
    );
}

/// `isolation = "session"`: each client gets its own upstream process, gone with its session;
/// after 200 sessions no child is left but the shared catalog instance.
#[tokio::test(flavor = "multi_thread")]
async fn isolated_sessions_own_their_processes_and_leave_none_behind() {
    let fixture_exe = env!("CARGO_BIN_EXE_mcp-fixture-server");
    let d = Director::start(&fixture("iso", "isolation = \"session\""));
    d.wait_running(&["iso"]).await;
    let shared_pid = d
        .client(None)
        .get_server_status("iso")
        .await
        .unwrap()
        .into_inner()
        .pid
        .unwrap();
    let env_call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "iso/env", "arguments": {"name": "FIXTURE_NAME"}}});

    let mut a = McpHttp::new(&d.url);
    let mut b = McpHttp::new(&d.url);
    a.initialize(json!({"roots": {}})).await;
    b.initialize(json!({"roots": {}})).await;
    let pid_a = common::result_text(&a.post(env_call.clone()).await)
        .rsplit('|')
        .next()
        .unwrap()
        .to_string();
    let pid_b = common::result_text(&b.post(env_call.clone()).await)
        .rsplit('|')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(pid_a, pid_b);
    assert_ne!(pid_a, shared_pid.to_string());
    // Same session, same process.
    let again = common::result_text(&a.post(env_call.clone()).await);
    assert!(again.ends_with(&format!("|{pid_a}")), "{again}");
    assert_eq!(common::children_running(d.pid(), fixture_exe).len(), 3);

    for s in [&a, &b] {
        let r = s
            .http
            .delete(&s.url)
            .header("mcp-session-id", s.session.as_deref().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        // An ended session is gone.
        assert_eq!(
            s.request(&env_call).send().await.unwrap().status().as_u16(),
            404
        );
    }

    let sessions = futures::stream::iter(0..200)
        .map(|i| {
            let url = d.url.clone();
            let call = env_call.clone();
            async move {
                let mut c = McpHttp::new(&url);
                c.initialize(json!({})).await;
                let text = common::result_text(&c.post(call).await);
                assert!(text.starts_with("iso|"), "session {i}: {text}");
                let r = c
                    .http
                    .delete(&c.url)
                    .header("mcp-session-id", c.session.as_deref().unwrap())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 204);
            }
        })
        .buffer_unordered(8);
    use futures::StreamExt;
    sessions.collect::<Vec<()>>().await;
    let left = common::wait_for(|| async {
        let children = common::children_running(d.pid(), fixture_exe);
        (children.len() == 1).then_some(children)
    })
    .await;
    assert_eq!(
        left,
        vec![shared_pid],
        "only the shared catalog instance remains"
    );
}

/// A Streamable HTTP upstream that restarts forgets our session (404) or refuses connections
/// while down: either way the director reconnects and calls work again.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_http_upstream_is_reconnected() {
    let port = common::free_port();
    let (everything, url) = common::everything_http_on(port);
    let d = Director::start(&format!(
        "[servers.web]\ntransport = \"streamable-http\"\nurl = \"{url}\"\n"
    ));
    d.wait_running(&["web"]).await;
    let mut client = McpHttp::new(&d.url);
    client.initialize(json!({})).await;
    let echo = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "web/echo", "arguments": {"message": "one"}}});
    assert_eq!(
        common::result_text(&client.post(echo.clone()).await),
        "Echo: one"
    );

    drop(everything);
    let (_again, _) = common::everything_http_on(port);
    // The first call after the restart may fail (the old session is unknown there); the
    // director notices, reconnects, and the tools come back.
    let c = d.client(None);
    common::wait_for(|| async {
        let r = client.post(echo.clone()).await;
        let ok = r.last()?.get("result").is_some();
        let s = c.get_server_status("web").await.ok()?.into_inner();
        (ok && s.restarts >= 1).then_some(())
    })
    .await;
}

/// The newest Python SDK as users run it, over Streamable HTTP and launching the director over
/// stdio: by default it discovers the director's 2026-07-28 and talks it statelessly (sampling
/// and elicitation of the stdio fixture reach it as multi round-trip input requests); pinned to
/// `legacy` it initializes a 2025-11-25 session, where the same calls are server→client
/// requests. All four see the same tools and answers.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_2_talks_both_eras_through_the_director() {
    let d = Director::start(&fixture("a", ""));
    d.wait_running(&["a"]).await;
    let python = common::peers().join("venv2/bin/python");
    // The same client launching the director over stdio, as desktop clients do.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, fixture("a", "")).unwrap();
    let stdio = json!([
        env!("CARGO_BIN_EXE_mcp-director"),
        "stdio",
        "--config",
        config,
        "--data-dir",
        dir.path()
    ]);
    let url = format!("{}/mcp", d.url);
    for (target, mode, protocol) in [
        (url.as_str(), None, "2026-07-28"),
        (url.as_str(), Some("legacy"), "2025-11-25"),
        ("stdio", None, "2026-07-28"),
        ("stdio", Some("legacy"), "2025-11-25"),
    ] {
        let mut cmd = Command::new(&python);
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/sdk2_client.py"
        ))
        .arg(target)
        .env("SDK2_STDIO_COMMAND", stdio.to_string());
        cmd.args(mode);
        let out = cmd.output().expect("python");
        assert!(
            out.status.success(),
            "{target} {mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        common::assert_sdk2_report(&report, protocol, &format!("{target} {mode:?}"));
        assert_eq!(report["stepped"], "3 steps");
    }
}
