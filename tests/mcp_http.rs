//! The MCP endpoints at the HTTP and JSON-RPC level: errors, versions, sessions, streams,
//! shutdown, and the stdio transport. Exchanges are pinned by insta snapshots with volatile
//! fields (session ids) redacted: these are the "snapshot conformance tests".

mod common;

use common::{Director, McpHttp};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    format!(
        "[servers.{name}]\ncommand = \"{}\"\nenv = {{ FIXTURE_NAME = \"{name}\" }}\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    )
}

/// One exchange for a snapshot: what was sent, the status, and the answer.
async fn exchange(label: &str, request: reqwest::RequestBuilder, sent: Value) -> Value {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let json = response.headers().get("content-type").is_some_and(|v| {
        v.to_str().unwrap().starts_with("application/json")
            || v.to_str().unwrap().starts_with("text/event-stream")
    });
    let body = if json {
        common::messages(response)
            .await
            .pop()
            .unwrap_or(Value::Null)
    } else {
        Value::String(response.text().await.unwrap())
    };
    json!({"case": label, "sent": sent, "status": status, "answer": body})
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_the_right_status_and_json_rpc_error() {
    let d = Director::start(&fixture("a"));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    let raw = |body: &str| {
        c.http
            .post(&c.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let mut log = Vec::new();
    log.push(exchange("malformed JSON", raw("{not json"), json!("{not json")).await);
    log.push(
        exchange(
            "jsonrpc 1.0",
            raw(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#),
            json!("jsonrpc 1.0"),
        )
        .await,
    );
    log.push(exchange("batch", raw("[]"), json!("[]")).await);
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    log.push(exchange("no session", raw(&list.to_string()), list.clone()).await);
    log.push(
        exchange(
            "unknown session",
            raw(&list.to_string()).header("mcp-session-id", "nope"),
            list.clone(),
        )
        .await,
    );
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    log.push(
        exchange(
            "unsupported MCP-Protocol-Version",
            raw(&init.to_string()).header("mcp-protocol-version", "1999-01-01"),
            init.clone(),
        )
        .await,
    );
    log.push(
        exchange(
            "foreign Origin",
            raw(&init.to_string()).header("origin", "http://evil.example.com"),
            init.clone(),
        )
        .await,
    );
    let text_only = c
        .http
        .post(&c.url)
        .header("accept", "text/plain")
        .header("content-type", "application/json");
    log.push(
        exchange(
            "Accept text/plain",
            text_only.body(init.to_string()),
            init.clone(),
        )
        .await,
    );

    c.initialize(json!({})).await;
    let with_session = |body: &Value| c.request(body);
    for (label, body) in [
        (
            "unknown method",
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/frobnicate"}),
        ),
        (
            "tools/call without a name",
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {}}),
        ),
        (
            "unknown tool",
            json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "a/nope"}}),
        ),
        (
            "bad cursor",
            json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": {"cursor": "zzz"}}),
        ),
        (
            "server/discover",
            json!({"jsonrpc": "2.0", "id": 7, "method": "server/discover"}),
        ),
        (
            "unknown resource",
            json!({"jsonrpc": "2.0", "id": 8, "method": "resources/read", "params": {"uri": "nope://x"}}),
        ),
        ("ping", json!({"jsonrpc": "2.0", "id": 9, "method": "ping"})),
        (
            "notification",
            json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}),
        ),
    ] {
        log.push(exchange(label, with_session(&body), body.clone()).await);
    }
    let delete = c
        .http
        .delete(&c.url)
        .header("mcp-session-id", c.session.as_deref().unwrap());
    log.push(exchange("DELETE", delete, json!("DELETE /mcp")).await);
    log.push(exchange("after DELETE", with_session(&list), list.clone()).await);

    let statuses: Vec<(String, u64)> = log
        .iter()
        .map(|e| {
            (
                e["case"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let expect = [
        ("malformed JSON", 400),
        ("jsonrpc 1.0", 400),
        ("batch", 400),
        ("no session", 400),
        ("unknown session", 404),
        ("unsupported MCP-Protocol-Version", 400),
        ("foreign Origin", 403),
        ("Accept text/plain", 406),
        ("unknown method", 200),
        ("tools/call without a name", 200),
        ("unknown tool", 200),
        ("bad cursor", 200),
        ("server/discover", 200),
        ("unknown resource", 200),
        ("ping", 200),
        ("notification", 202),
        ("DELETE", 204),
        ("after DELETE", 404),
    ];
    assert_eq!(statuses, expect.map(|(l, s)| (l.to_string(), s)).to_vec());
    let code = |case: &str| {
        log.iter().find(|e| e["case"] == case).unwrap()["answer"]["error"]["code"].clone()
    };
    assert_eq!(code("malformed JSON"), -32700);
    assert_eq!(code("jsonrpc 1.0"), -32600);
    assert_eq!(code("unknown method"), -32601);
    assert_eq!(code("tools/call without a name"), -32602);
    assert_eq!(code("unknown tool"), -32602);
    assert_eq!(code("bad cursor"), -32602);
    insta::assert_json_snapshot!("bad_input", log);
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_are_negotiated() {
    let d = Director::start("");
    for (asked, got) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        ("2024-11-05", "2024-11-05"),
        ("2099-01-01", "2025-11-25"),
    ] {
        let c = McpHttp::new(&d.url);
        let answer = c
            .post(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
            .await;
        assert_eq!(answer[0]["result"]["protocolVersion"], got, "{asked}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn full_exchange_snapshot() {
    let d = Director::start(&fixture("a"));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    let init = c.initialize(json!({"sampling": {}})).await;
    let mut log = vec![json!({"initialize": init})];
    for body in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "a/echo",
            "arguments": {"text": "x", "n": 1.50, "deep": {"k": [true, null]}}, "_meta": {"vendor/x": {"y": 1}}}}),
        json!({"jsonrpc": "2.0", "id": "s", "method": "prompts/list"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "prompts/get", "params": {"name": "a/greet", "arguments": {"name": "Ada"}}}),
        json!({"jsonrpc": "2.0", "id": 4, "method": "resources/list"}),
        json!({"jsonrpc": "2.0", "id": 5, "method": "resources/templates/list"}),
        json!({"jsonrpc": "2.0", "id": 6, "method": "completion/complete", "params": {
            "ref": {"type": "ref/prompt", "name": "a/greet"}, "argument": {"name": "name", "value": "A"}}}),
        json!({"jsonrpc": "2.0", "id": 7, "method": "logging/setLevel", "params": {"level": "info"}}),
    ] {
        let answer = c.post(body.clone()).await;
        log.push(json!({"sent": body, "received": answer}));
    }
    // `_meta` and unusual number spellings survive to the upstream and back.
    let echoed = &log[2]["received"][0]["result"]["structuredContent"];
    assert_eq!(
        echoed["arguments"],
        json!({"text": "x", "n": 1.5, "deep": {"k": [true, null]}})
    );
    assert_eq!(echoed["meta"], json!({"vendor/x": {"y": 1}}));
    insta::assert_json_snapshot!("full_exchange", log);
}

#[tokio::test(flavor = "multi_thread")]
async fn list_changed_reaches_the_stream_which_can_resume() {
    let d = Director::start(&fixture("a"));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    let mut stream = c.open_stream(None).await;
    let added = c
        .post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a/add_tool", "arguments": {"name": "fresh"}}}))
        .await;
    assert_eq!(
        added.last().unwrap()["result"]["content"][0]["text"],
        "added fresh"
    );
    let (id, note) = tokio::time::timeout(std::time::Duration::from_secs(20), stream.recv())
        .await
        .expect("a notification")
        .unwrap();
    assert_eq!(note["method"], "notifications/tools/list_changed");
    let id = id.expect("events carry ids");
    let names = c.tool_names().await;
    assert!(names.iter().any(|n| n == "a/fresh"), "{names:?}");
    let ran = c.post(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "a/fresh"}})).await;
    assert_eq!(
        ran.last().unwrap()["result"]["content"][0]["text"],
        "fresh ran"
    );

    // Reconnect after an earlier id: the missed event is replayed, on this stream only.
    let before: u64 = id.parse::<u64>().unwrap() - 1;
    let mut resumed = c.open_stream(Some(&before.to_string())).await;
    let (again, note) = tokio::time::timeout(std::time::Duration::from_secs(20), resumed.recv())
        .await
        .expect("replayed")
        .unwrap();
    assert_eq!(again.as_deref(), Some(id.as_str()));
    assert_eq!(note["method"], "notifications/tools/list_changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_announces_itself_and_stops_children() {
    let d = Director::start(&fixture("a"));
    d.wait_running(&["a"]).await;
    let pid = d
        .client(None)
        .get_server_status("a")
        .await
        .unwrap()
        .into_inner()
        .pid
        .unwrap();
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    let mut stream = c.open_stream(None).await;
    // SAFETY: signalling the director process this test started.
    unsafe {
        libc::kill(d.pid() as i32, libc::SIGTERM);
    }
    let (_, note) = tokio::time::timeout(std::time::Duration::from_secs(20), stream.recv())
        .await
        .expect("a shutdown notification")
        .unwrap();
    assert_eq!(note["method"], "notifications/shutdown");
    common::wait_for(|| async { (!common::process_alive(pid)).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stdio_transport_serves_one_client() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, fixture("a")).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-director"))
        .args(["stdio", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = async |v: &str| {
        stdin.write_all(format!("{v}\n").as_bytes()).await.unwrap();
    };
    send(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#).await;
    send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
    send("{oops").await;
    let mut by_id = std::collections::HashMap::new();
    let mut read_until =
        async |want: &str, by_id: &mut std::collections::HashMap<String, Value>| loop {
            if by_id.contains_key(want) {
                return;
            }
            let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
                .await
                .expect("a line")
                .unwrap()
                .expect("stdout open");
            let v: Value = serde_json::from_str(&line).expect("only JSON-RPC on stdout");
            let Some(id) = v.get("id") else { continue }; // a notification
            let key = id.to_string();
            by_id.insert(key, v);
        };
    read_until("1", &mut by_id).await;
    assert_eq!(by_id["1"]["result"]["protocolVersion"], "2025-06-18");
    read_until("null", &mut by_id).await;
    assert_eq!(by_id["null"]["error"]["code"], -32700);
    // Tools appear once the upstream is up.
    let mut attempt = 10;
    loop {
        send(&format!(r#"{{"jsonrpc":"2.0","id":{attempt},"method":"tools/call","params":{{"name":"a/echo","arguments":{{"text":"over stdio"}}}}}}"#)).await;
        read_until(&attempt.to_string(), &mut by_id).await;
        let answer = &by_id[&attempt.to_string()];
        if answer.get("result").is_some() {
            assert_eq!(answer["result"]["content"][0]["text"], "a: over stdio");
            break;
        }
        assert!(attempt < 200, "{answer}");
        attempt += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(stdin);
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_sessions_expire_and_stream_holders_do_not() {
    let d = Director::start("[settings]\nsession_idle_timeout_secs = 1\n");
    let mut idle = McpHttp::new(&d.url);
    idle.initialize(json!({})).await;
    let mut watching = McpHttp::new(&d.url);
    watching.initialize(json!({})).await;
    let _stream = watching.open_stream(None).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    // Any request would keep it alive: wait well past the 1 s limit without one.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let status = idle.request(&ping).send().await.unwrap().status().as_u16();
    assert_eq!(status, 404, "the idle session was ended");
    // A session with its stream open is in use, however quiet.
    let status = watching
        .request(&ping)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_past_the_rate_limit_gets_429_and_recovers() {
    let d = Director::start(&format!(
        "[settings.rate_limit]\nper_minute = 60\nburst = 5\n[profiles.p]\ntoken_sha256 = \"{}\"\n",
        mcp_director::secrets::sha256_hex("a-real-profile-token")
    ));
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await; // 2 requests
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    for _ in 0..3 {
        assert_eq!(
            c.request(&ping).send().await.unwrap().status().as_u16(),
            200
        );
    }
    let limited = c.request(&ping).send().await.unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error_description"], "Rate limit exceeded");

    // A made-up token is no way around the limit: it is not a principal.
    let mut forged = McpHttp::new(&d.url);
    forged.url = format!("{}/mcp?token=made-up-{}", d.url, std::process::id());
    assert_eq!(
        forged
            .request(&ping)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        429
    );
    // Another principal (a profile's token) has its own bucket.
    let mut other = McpHttp::new(&d.url);
    other.url = format!("{}/mcp?token=a-real-profile-token", d.url);
    other.initialize(json!({})).await;

    // The bucket refills at one request a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        c.request(&ping).send().await.unwrap().status().as_u16(),
        200
    );
    let metrics = reqwest::get(format!("{}/metrics", d.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "mcp_director_rate_limited_requests_total 2"),
        "{metrics}"
    );
}

/// No limit unless the operator sets one: everyone behind one NAT or load balancer shares an
/// address, and the director must not throttle them by default.
#[tokio::test(flavor = "multi_thread")]
async fn the_default_configuration_never_rate_limits() {
    let d = Director::start("");
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let statuses = futures::future::join_all(
        (0..1500).map(|_| async { c.request(&ping).send().await.unwrap().status().as_u16() }),
    )
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

/// `per_minute = 5` alone means five a minute: the burst defaults to the rate, not to 1000.
#[tokio::test(flavor = "multi_thread")]
async fn five_a_minute_lets_five_through() {
    let d = Director::start("[settings.rate_limit]\nper_minute = 5\n");
    let c = McpHttp::new(&d.url);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(c.request(&init).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
}

/// Behind a load balancer every request comes from the balancer: with it in
/// `trusted_proxies`, each client behind it has its own bucket (by `X-Forwarded-For`), and the
/// admin API's "local clients only" rule sees the real client; without it, the header is
/// anyone's to write and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn clients_behind_a_trusted_proxy_are_told_apart() {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let statuses = async |d: &Director, client: &str, n: usize| {
        let c = McpHttp::new(&d.url);
        let mut out = Vec::new();
        for _ in 0..n {
            let r = c.request(&init).header("x-forwarded-for", client);
            out.push(r.send().await.unwrap().status().as_u16());
        }
        out
    };
    let limits = "[settings.rate_limit]\nper_minute = 2\n";
    let behind = Director::start(&format!(
        "[settings]\ntrusted_proxies = [\"127.0.0.0/8\"]\n{limits}"
    ));
    assert_eq!(statuses(&behind, "198.51.100.1", 3).await, [200, 200, 429]);
    assert_eq!(statuses(&behind, "198.51.100.2", 2).await, [200, 200]);
    // The admin API answers local clients only (no [settings.auth]): a client the proxy names
    // is not local, though the proxy is.
    let admin = reqwest::Client::new()
        .get(format!("{}/api/servers", behind.url))
        .header("x-forwarded-for", "198.51.100.3");
    assert_eq!(admin.send().await.unwrap().status().as_u16(), 403);
    let local = reqwest::get(format!("{}/api/servers", behind.url))
        .await
        .unwrap();
    assert_eq!(local.status().as_u16(), 200);

    let direct = Director::start(limits);
    assert_eq!(statuses(&direct, "198.51.100.1", 2).await, [200, 200]);
    assert_eq!(
        statuses(&direct, "198.51.100.2", 1).await,
        [429],
        "one bucket"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_initialize_leaves_no_session() {
    let d = Director::start("");
    let c = McpHttp::new(&d.url);
    let bad =
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}});
    let response = c.request(&bad).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().get("mcp-session-id").is_none());
    let answer = common::messages(response).await;
    assert_eq!(answer[0]["error"]["code"], -32602);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_has_its_own_rate_limit() {
    let d = Director::start(
        "[settings.rate_limit]\nper_minute = 6000\nburst = 1000\n\
         [profiles.slow]\nrate_limit = { per_minute = 60, burst = 3 }\n[profiles.fast]\n",
    );
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let mut slow = McpHttp::new(&d.url);
    slow.url = format!("{}/mcp?profile=slow", d.url);
    slow.initialize(json!({})).await; // 2 of its 3
    assert_eq!(slow.request(&ping).send().await.unwrap().status(), 200);
    let limited = slow.request(&ping).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // The same client (same IP) in a profile without its own limit has the global one.
    let mut fast = McpHttp::new(&d.url);
    fast.url = format!("{}/mcp?profile=fast", d.url);
    fast.initialize(json!({})).await;
    for _ in 0..10 {
        assert_eq!(fast.request(&ping).send().await.unwrap().status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stdio_over_the_rate_limit_gets_a_json_rpc_error() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[settings.rate_limit]\nper_minute = 60\nburst = 3\n",
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-director"))
        .args(["stdio", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for id in 1..=4 {
        stdin
            .write_all(
                format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"ping\"}}\n").as_bytes(),
            )
            .await
            .unwrap();
    }
    let mut answers = std::collections::BTreeMap::new();
    while answers.len() < 4 {
        let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .expect("an answer")
            .unwrap()
            .expect("stdout open");
        let v: Value = serde_json::from_str(&line).unwrap();
        answers.insert(v["id"].as_i64().unwrap(), v);
    }
    for id in 1..=3 {
        assert!(answers[&id].get("result").is_some(), "{:?}", answers[&id]);
    }
    let error = &answers[&4]["error"];
    assert_eq!(error["code"], -32029);
    assert_eq!(error["message"], "Rate limit exceeded");
    assert!(error["data"]["retryAfterSecs"].as_u64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_gets_413_with_a_json_rpc_error() {
    let d = Director::start("[settings.limits]\nmax_request_bytes = 1024\n");
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    let big = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "x", "arguments": {"text": "x".repeat(2000)}}});
    let r = c.request(&big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("1024"),
        "{body}"
    );
    // The session is unharmed.
    let ping = json!({"jsonrpc": "2.0", "id": 8, "method": "ping"});
    assert_eq!(c.request(&ping).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_holds_at_most_its_streams() {
    let d = Director::start(&format!(
        "{}[settings.limits]\nmax_streams_per_session = 3\n",
        fixture("a")
    ));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    // The GET stream and two answers still streaming (slow calls) fill the session's three.
    let _get = c.open_stream(None).await;
    let slow = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "a/slow", "arguments": {"ms": 3000}}})
    };
    let first = c.request(&slow(1)).send().await.unwrap();
    let second = c.request(&slow(2)).send().await.unwrap();
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = c.request(&slow(3)).send().await.unwrap();
    assert_eq!(third.status().as_u16(), 429);
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["error"], "too_many_streams");
    // A finished answer frees its slot.
    let answer = common::messages(first).await;
    assert!(answer.last().unwrap().get("result").is_some(), "{answer:?}");
    let ping = json!({"jsonrpc": "2.0", "id": 4, "method": "ping"});
    common::wait_for(|| async {
        (c.request(&ping).send().await.ok()?.status() == 200).then_some(())
    })
    .await;
}

/// A log message an upstream sends while serving a call goes with that call (on its stream),
/// at the levels its session asked for; other sessions hear nothing of it.
#[tokio::test(flavor = "multi_thread")]
async fn each_session_gets_the_log_levels_it_asked_for() {
    let d = Director::start(&fixture("a"));
    d.wait_running(&["a"]).await;
    let mut verbose = McpHttp::new(&d.url);
    verbose.initialize(json!({})).await;
    let mut quiet = McpHttp::new(&d.url);
    quiet.initialize(json!({})).await;
    let mut verbose_stream = verbose.open_stream(None).await;
    let mut quiet_stream = quiet.open_stream(None).await;
    let set = |level: &str| json!({"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": level}});
    verbose.post(set("debug")).await;
    // Set after the verbose one: a shared upstream must not turn the verbose session quiet.
    quiet.post(set("error")).await;
    let log = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "a/log", "arguments": {}}});
    let levels = |answer: &[Value]| -> Vec<String> {
        answer
            .iter()
            .filter(|m| m["method"] == "notifications/message")
            .map(|m| m["params"]["level"].as_str().unwrap().to_string())
            .collect()
    };
    let answer = verbose.post(log.clone()).await;
    assert_eq!(common::result_text(&answer), "logged from debug");
    assert_eq!(levels(&answer), ["debug", "info", "warning", "error"]);
    let answer = quiet.post(log).await;
    assert_eq!(common::result_text(&answer), "logged from debug");
    assert_eq!(levels(&answer), ["error"]);
    // Neither session's stream heard the other's (or its own) call.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(verbose_stream.try_recv().is_err());
    assert!(quiet_stream.try_recv().is_err());
}

/// Reads SSE events from a response until `stop` says so; returns (id, data) pairs.
async fn read_events(
    response: reqwest::Response,
    mut stop: impl FnMut(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    use futures::StreamExt;
    let mut body = response.bytes_stream();
    let mut parser = mcp_director::sse::Parser::default();
    let mut events = Vec::new();
    while let Some(chunk) = tokio::time::timeout(std::time::Duration::from_secs(20), body.next())
        .await
        .expect("an event in time")
    {
        for e in parser.feed(&chunk.unwrap()) {
            events.push((e.id.unwrap_or_default(), e.data));
        }
        if stop(&events) {
            break;
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_request_stream_is_resumed_with_last_event_id() {
    let d = Director::start(&fixture("a"));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "a/progress", "arguments": {"steps": 12}, "_meta": {"progressToken": "p"}}});
    let response = c.request(&call).send().await.unwrap();
    // Priming event (an id, no data) first, then a few progress notifications; then the
    // connection is lost.
    let first = read_events(response, |events| events.len() >= 4).await;
    assert_eq!(first[0].1, "", "priming event");
    assert!(first[0].0.ends_with("-0"), "{first:?}");
    let last_id = first.last().unwrap().0.clone();
    let seen: Vec<Value> = first[1..]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert!(seen.iter().all(|m| m["method"] == "notifications/progress"));

    let resumed = c
        .http
        .get(&c.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .header("last-event-id", &last_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let rest = read_events(resumed, |events| {
        events.last().is_some_and(|(_, d)| d.contains("\"result\""))
    })
    .await;
    let rest: Vec<Value> = rest
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    // Nothing lost, nothing twice: progress 1..=12 across both connections, then the answer.
    let progress: Vec<i64> = seen
        .iter()
        .chain(&rest)
        .filter(|m| m["method"] == "notifications/progress")
        .map(|m| m["params"]["progress"].as_i64().unwrap())
        .collect();
    assert_eq!(progress, (1..=12).collect::<Vec<_>>());
    let answer = rest.last().unwrap();
    assert_eq!(answer["id"], 5);
    // Resuming after the response: the stream is over at once, nothing is sent twice.
    let final_id = format!("{}-13", last_id.split('-').next().unwrap());
    let over = c
        .http
        .get(&c.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .header("last-event-id", &final_id)
        .send()
        .await
        .unwrap();
    assert_eq!(over.status(), 200);
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), over.text())
        .await
        .expect("the stream ends")
        .unwrap();
    assert!(!body.contains("data:"), "{body}");
    assert_eq!(answer["result"]["content"][0]["text"], "12 steps");
    // An unknown stream is not silently replaced by another.
    let unknown = c
        .http
        .get(&c.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", c.session.clone().unwrap())
        .header("last-event-id", "r999-3")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_isolated_upstreams_log_reaches_its_own_session_only() {
    let d = Director::start(&format!("{}isolation = \"session\"\n", fixture("a")));
    let mut mine = McpHttp::new(&d.url);
    mine.initialize(json!({})).await;
    let mut other = McpHttp::new(&d.url);
    other.initialize(json!({})).await;
    let mut other_stream = other.open_stream(None).await;
    // Each session's first call starts its own instance of `a`.
    let log = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "a/log", "arguments": {}}});
    let answer = common::wait_for(|| async {
        let a = mine.post(log.clone()).await;
        a.last()?.get("result").is_some().then_some(a)
    })
    .await;
    assert_eq!(common::result_text(&answer), "logged from debug");
    assert!(
        answer
            .iter()
            .any(|m| m["method"] == "notifications/message"),
        "{answer:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        other_stream.try_recv().is_err(),
        "another session heard an isolated upstream"
    );
}
