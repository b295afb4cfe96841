//! MCP 2026-07-28 through the director, on the wire: discovery, stateless requests and the
//! header checks, multi round-trip calls bridged both ways (a 2026 client and a 2025 stdio
//! server; a 2025 client and a 2026-only server written with the Python SDK 2.3), and
//! `requestState` that is tampered with, expired or someone else's.

mod common;

use common::{Director, McpHttp, Peer};
use serde_json::{Value, json};
use std::process::{Command, Stdio};

const V: &str = "2026-07-28";

fn fixture(name: &str) -> String {
    format!(
        "[servers.{name}]\ncommand = \"{}\"\nenv = {{ FIXTURE_NAME = \"{name}\" }}\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    )
}

/// A 2026 request: version and capabilities in `_meta`, mirrored in the headers.
fn modern(
    c: &McpHttp,
    id: u64,
    method: &str,
    params: Value,
    capabilities: Value,
) -> reqwest::RequestBuilder {
    modern_with(c, id, method, params, capabilities, &[])
}

/// [`modern`], with some headers sent as given instead of as they should be.
fn modern_with(
    c: &McpHttp,
    id: u64,
    method: &str,
    mut params: Value,
    capabilities: Value,
    headers: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-2026", "version": "1"},
    });
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .or_else(|| params.get("taskId"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut sent = vec![
        ("mcp-protocol-version", V.to_string()),
        ("mcp-method", method.into()),
    ];
    sent.extend(name.map(|n| ("mcp-name", n)));
    let mut r = c.request(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
    for (header, value) in sent {
        let given = headers.iter().find(|(h, _)| *h == header).map(|(_, v)| *v);
        r = r.header(header, given.unwrap_or(&value));
    }
    r
}

async fn answer(r: reqwest::RequestBuilder) -> (u16, Value) {
    let response = r.send().await.expect("POST /mcp");
    let status = response.status().as_u16();
    let messages = common::messages(response).await;
    (status, messages.last().cloned().unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2026_client_is_served_without_a_session() {
    let d = Director::start(&fixture("a"));
    d.wait_running(&["a"]).await;
    let c = McpHttp::new(&d.url);

    let status = d
        .client(None)
        .get_server_status("a")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.protocol_era,
        Some(mcp_director_client::types::ProtocolEra::Legacy)
    );
    let (status, discover) = answer(modern(&c, 1, "server/discover", json!({}), json!({}))).await;
    assert_eq!(status, 200);
    let versions = &discover["result"]["supportedVersions"];
    for v in [V, "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] {
        assert!(
            versions.as_array().unwrap().contains(&json!(v)),
            "{discover}"
        );
    }
    assert_eq!(discover["result"]["resultType"], "complete");
    assert_eq!(
        discover["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-director"
    );

    let response = modern(&c, 2, "tools/list", json!({}), json!({}))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().get("mcp-session-id").is_none(),
        "no session for a 2026 request"
    );
    let list = common::messages(response).await.remove(0);
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let (_, again) = answer(modern(&c, 6, "tools/list", json!({}), json!({}))).await;
    assert_eq!(
        again["result"]["tools"], list["result"]["tools"],
        "deterministic order"
    );
    assert!(names.contains(&"a/echo"));
    assert_eq!(list["result"]["resultType"], "complete");
    assert!(list["result"]["ttlMs"].is_u64(), "{list}");
    assert!(list["result"]["cacheScope"].is_string(), "{list}");

    let (_, echo) = answer(modern(
        &c,
        3,
        "tools/call",
        json!({"name": "a/echo", "arguments": {"text": "hi"}}),
        json!({}),
    ))
    .await;
    assert_eq!(echo["result"]["content"][0]["text"], "a: hi");
    assert_eq!(echo["result"]["resultType"], "complete");

    // Resource not found: -32602 in 2026.
    let (_, missing) = answer(modern(
        &c,
        4,
        "resources/read",
        json!({"uri": "fixture://nope"}),
        json!({}),
    ))
    .await;
    assert_eq!(missing["error"]["code"], -32602, "{missing}");

    // No `initialize`-era methods without a session: ping is not a 2026 method.
    let (status, ping) = answer(modern(&c, 5, "ping", json!({}), json!({}))).await;
    assert_eq!((status, &ping["error"]["code"]), (404, &json!(-32601)));
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_and_versions_are_checked_in_the_specified_order() {
    let d = Director::start(&fixture("a"));
    d.wait_running(&["a"]).await;
    let c = McpHttp::new(&d.url);
    let call = json!({"name": "a/echo", "arguments": {"text": "x"}});

    // Mcp-Method that is not the body's method.
    let r = modern_with(
        &c,
        1,
        "tools/call",
        call.clone(),
        json!({}),
        &[("mcp-method", "tools/list")],
    );
    let (status, e) = answer(r).await;
    assert_eq!((status, &e["error"]["code"]), (400, &json!(-32020)), "{e}");

    // Mcp-Name that is not the tool called.
    let r = modern_with(
        &c,
        2,
        "tools/call",
        call.clone(),
        json!({}),
        &[("mcp-name", "a/env")],
    );
    let (status, e) = answer(r).await;
    assert_eq!((status, &e["error"]["code"]), (400, &json!(-32020)), "{e}");

    // The same name, base64-encoded, is the same name.
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode("a/echo");
    let encoded = format!("=?base64?{encoded}?=");
    let r = modern_with(
        &c,
        3,
        "tools/call",
        call,
        json!({}),
        &[("mcp-name", &encoded)],
    );
    let (status, ok) = answer(r).await;
    assert_eq!(
        (status, &ok["result"]["content"][0]["text"]),
        (200, &json!("a: x"))
    );

    // A version the director does not serve: -32022 naming those it does.
    let body = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2099-01-01",
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    let r = c
        .request(&body)
        .header("mcp-protocol-version", "2099-01-01")
        .header("mcp-method", "tools/list");
    let (status, e) = answer(r).await;
    assert_eq!((status, &e["error"]["code"]), (400, &json!(-32022)), "{e}");
    assert!(
        e["error"]["data"]["supported"].to_string().contains(V),
        "{e}"
    );

    // The header and `_meta` disagree.
    let r = modern_with(
        &c,
        5,
        "tools/list",
        json!({}),
        json!({}),
        &[("mcp-protocol-version", "2025-11-25")],
    );
    let (status, _) = answer(r).await;
    assert_eq!(status, 400);
}

/// A 2026 client calls a tool of a 2025 stdio server that asks for sampling: the client gets
/// an `InputRequiredResult`, and its retry resumes the very same upstream call. A state that
/// is tampered with, replayed, or presented for another call is refused.
#[tokio::test(flavor = "multi_thread")]
async fn input_requests_of_a_2025_server_reach_a_2026_client_as_multi_round_trips() {
    let d = Director::start(&fixture("a"));
    d.wait_running(&["a"]).await;
    let c = McpHttp::new(&d.url);
    let caps = json!({"sampling": {}});
    let call = json!({"name": "a/sample", "arguments": {"prompt": "hello"}});

    let (_, first) = answer(modern(&c, 1, "tools/call", call.clone(), caps.clone())).await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let (key, request) = result["inputRequests"]
        .as_object()
        .and_then(|m| m.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("one input request");
    assert_eq!(request["method"], "sampling/createMessage");
    let state = result["requestState"].as_str().unwrap().to_string();

    // Tampered: refused, and the parked call is still there for the honest retry.
    let mut tampered = state.clone();
    tampered.insert(
        3,
        if tampered.as_bytes()[3] == b'A' {
            'B'
        } else {
            'A'
        },
    );
    let sampled = json!({"role": "assistant", "model": "m",
        "content": {"type": "text", "text": "a poem"}});
    let retry = |state: &str, id: u64, call: &Value| {
        let mut params = call.clone();
        params["requestState"] = json!(state);
        params["inputResponses"] = json!({ key.clone(): sampled.clone() });
        modern(&c, id, "tools/call", params, caps.clone())
    };
    let (_, refused) = answer(retry(&tampered, 2, &call)).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");

    // For another tool: refused.
    let other = json!({"name": "a/echo", "arguments": {"text": "x"}});
    let (_, refused) = answer(retry(&state, 3, &other)).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");

    let (_, done) = answer(retry(&state, 4, &call)).await;
    assert_eq!(done["id"], 4);
    assert_eq!(
        done["result"]["content"][0]["text"], "sampled: a poem",
        "{done}"
    );

    // Replayed after the call is over: refused, never another call's answer.
    let (_, replayed) = answer(retry(&state, 5, &call)).await;
    assert_eq!(replayed["error"]["code"], -32602, "{replayed}");
}

/// The Python SDK 2.3 as a 2026-only upstream (stateless; its `ask` tool asks through an
/// `InputRequiredResult` with its own state), reached by the SDK's client in both eras.
#[tokio::test(flavor = "multi_thread")]
async fn a_2026_only_server_serves_clients_of_both_eras() {
    let port = common::free_port();
    let python = common::peers().join("venv2/bin/python");
    let _server = Peer::spawn(
        Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/sdk2_server.py"
            ))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "sdk2_server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let d = Director::start(&format!(
        "[servers.py]\ntransport = \"streamable-http\"\nurl = \"http://127.0.0.1:{port}/mcp\"\n"
    ));
    d.wait_running(&["py"]).await;
    let status = d
        .client(None)
        .get_server_status("py")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.protocol_version.as_deref(), Some(V));
    assert_eq!(
        status.protocol_era,
        Some(mcp_director_client::types::ProtocolEra::Modern)
    );
    let health: Value = reqwest::get(format!("{}/health", d.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["upstreams"][0]["protocol_era"], "modern", "{health}");
    // It announces a new tool on the director's subscriptions/listen stream: the director's
    // catalog follows (and tells its own listeners).
    let c = McpHttp::new(&d.url);
    let listen_request = modern(
        &c,
        7,
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
        json!({}),
    );
    let listener = tokio::spawn(async move {
        use futures::StreamExt;
        let response = listen_request.send().await.unwrap();
        let mut body = response.bytes_stream();
        let mut parser = mcp_director::sse::Parser::default();
        let mut seen = Vec::new();
        while let Ok(Some(Ok(chunk))) =
            tokio::time::timeout(std::time::Duration::from_secs(20), body.next()).await
        {
            for e in parser.feed(&chunk) {
                if let Ok(m) = serde_json::from_str::<Value>(&e.data) {
                    let done = m["method"] == "notifications/tools/list_changed";
                    seen.push(m);
                    if done {
                        return seen;
                    }
                }
            }
        }
        seen
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, grown) = answer(modern(
        &c,
        8,
        "tools/call",
        json!({"name": "py/grow", "arguments": {"name": "sprout"}}),
        json!({}),
    ))
    .await;
    assert_eq!(
        grown["result"]["content"][0]["text"], "added sprout",
        "{grown}"
    );
    common::wait_for(|| async {
        let (_, list) = answer(modern(&c, 9, "tools/list", json!({}), json!({}))).await;
        list["result"]["tools"]
            .as_array()?
            .iter()
            .any(|t| t["name"] == "py/sprout")
            .then_some(())
    })
    .await;
    let seen = listener.await.unwrap();
    assert_eq!(
        seen[0]["method"], "notifications/subscriptions/acknowledged",
        "{seen:?}"
    );
    assert_eq!(
        seen[0]["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    let changed = seen.last().unwrap();
    assert_eq!(changed["method"], "notifications/tools/list_changed");
    assert_eq!(
        changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        7
    );

    // A 2025 client subscribes to a resource of the 2026 server (which has no
    // resources/subscribe): the director listens for it, and the update reaches the client.
    let mut legacy = McpHttp::new(&d.url);
    legacy.initialize(json!({})).await;
    let mut stream = legacy.open_stream(None).await;
    let subscribed = legacy
        .post(
            json!({"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe",
            "params": {"uri": "note://today"}}),
        )
        .await;
    assert_eq!(subscribed[0]["result"], json!({}), "{subscribed:?}");
    // The listen stream is re-opened with the resource as the subscription is answered; until
    // the server has it, a touch goes unheard: touched until heard (10 s at most).
    let mut updated = Value::Null;
    for attempt in 0..20 {
        let touched = legacy
            .post(
                json!({"jsonrpc": "2.0", "id": 2 + attempt, "method": "tools/call",
                "params": {"name": "py/touch", "arguments": {"uri": "note://today"}}}),
            )
            .await;
        assert_eq!(common::result_text(&touched), "touched note://today");
        let heard = tokio::time::timeout(std::time::Duration::from_millis(500), async {
            while let Some((_, m)) = stream.recv().await {
                if m["method"] == "notifications/resources/updated" {
                    return Some(m);
                }
            }
            None
        })
        .await;
        if let Ok(Some(m)) = heard {
            updated = m;
            break;
        }
    }
    assert_eq!(updated["params"]["uri"], "note://today", "{updated}");

    for (mode, protocol) in [(None, V), (Some("legacy"), "2025-11-25")] {
        let mut cmd = Command::new(&python);
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/sdk2_ask.py"
        ))
        .arg(format!("{}/mcp", d.url))
        .args(mode);
        let out = cmd.output().expect("python");
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["protocol"], protocol);
        assert_eq!(report["echo"], "sdk2: hi");
        assert_eq!(report["answer"], "hello Ada, about tea", "{mode:?}");
        assert_eq!(report["asked"], json!(["your name, for tea?"]));
    }
}

/// The 2026 exchange on the wire, pinned: discovery, lists with caching, a call, a resource,
/// a prompt, a completion, a multi round-trip call and its retry, the task extension's errors.
#[tokio::test(flavor = "multi_thread")]
async fn modern_exchange_snapshot() {
    let d = Director::start(&fixture("a"));
    d.wait_running(&["a"]).await;
    let c = McpHttp::new(&d.url);
    let caps = json!({"sampling": {}});
    let mut log = Vec::new();
    let steps = [
        ("server/discover", json!({})),
        ("tools/list", json!({})),
        (
            "tools/call",
            json!({"name": "a/echo", "arguments": {"text": "x"}}),
        ),
        ("resources/read", json!({"uri": "fixture://static"})),
        (
            "prompts/get",
            json!({"name": "a/greet", "arguments": {"name": "Ada"}}),
        ),
        (
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "a/greet"},
                "argument": {"name": "name", "value": "A"}}),
        ),
        ("tasks/get", json!({"taskId": "nope"})),
        ("tasks/result", json!({"taskId": "nope"})),
        (
            "tools/call",
            json!({"name": "a/sample", "arguments": {"prompt": "hi"}}),
        ),
    ];
    for (i, (method, params)) in steps.into_iter().enumerate() {
        let (status, received) =
            answer(modern(&c, i as u64, method, params.clone(), caps.clone())).await;
        log.push(
            json!({"method": method, "params": params, "status": status, "received": received}),
        );
    }
    let asked = &log.last().unwrap()["received"]["result"];
    let key = asked["inputRequests"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .unwrap();
    let retry = json!({"name": "a/sample", "arguments": {"prompt": "hi"},
        "requestState": asked["requestState"],
        "inputResponses": {key: {"role": "assistant", "model": "m",
            "content": {"type": "text", "text": "hello"}}}});
    let (status, received) = answer(modern(&c, 99, "tools/call", retry.clone(), caps)).await;
    log.push(
        json!({"method": "tools/call", "params": retry, "status": status, "received": received}),
    );
    insta::assert_json_snapshot!("modern_exchange", log, {
        "[].received.result.requestState" => "[mac-protected state]",
        "[].params.requestState" => "[mac-protected state]",
        "[].received.result._meta[\"io.modelcontextprotocol/serverInfo\"].version" => "[version]",
    });
}

/// The Python SDK 2.3 client as users run it (it discovers 2026-07-28) through the director in
/// front of `server-everything` over stdio, a 2025-era server: its sampling and elicitation
/// reach the client as multi round-trip requests, progress arrives, a resource reads, and a
/// task-only tool runs as a task of the tasks extension — the upstream's own task, whose
/// question (`input_required`) the client answers through `tasks/update`.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_2_reaches_a_2025_server_everything_through_2026() {
    let everything = common::peers()
        .join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let d = Director::start(&format!(
        "[servers.ev]\ncommand = \"node\"\nargs = [{:?}, \"stdio\"]\n",
        everything.display().to_string()
    ));
    d.wait_running(&["ev"]).await;
    let out = Command::new(common::peers().join("venv2/bin/python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/sdk2_everything.py"
        ))
        .arg(format!("{}/mcp", d.url))
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["protocol"], V);
    assert!(report["tools"].as_u64().unwrap() >= 10, "{report}");
    assert_eq!(report["echo"], "Echo: hi");
    assert!(
        report["sampled"]
            .as_str()
            .unwrap()
            .contains("a sampled answer"),
        "{report}"
    );
    assert!(
        report["elicited"][0]
            .as_str()
            .unwrap()
            .contains("User provided"),
        "{report}"
    );
    assert_eq!(report["progress"], json!([1.0, 2.0, 3.0]));
    assert!(
        report["resource"]
            .as_str()
            .unwrap()
            .starts_with("# Everything Server"),
        "{report}"
    );
    assert!(
        report["research"].as_str().unwrap().contains("technical"),
        "{report}"
    );
    let statuses = report["task_statuses"].as_array().unwrap();
    assert!(statuses.contains(&json!("input_required")), "{report}");
    assert_eq!(statuses.last().unwrap(), "completed");
    assert_eq!(
        report["asked"],
        json!([
            "sampling/createMessage",
            "elicitation/create",
            "elicitation/create"
        ])
    );
}

/// Our fixture as a 2026-only stdio server (it refuses `initialize`): the director discovers
/// it, speaks 2026 to it over stdio, listens for its tool changes, and carries its
/// `input_required` questions to clients of both eras — a 2025 client is asked on its session
/// (the director retries for it), a 2026 client gets the question with the server's state
/// wrapped in the director's (so a forged one is refused before it reaches the server).
#[tokio::test(flavor = "multi_thread")]
async fn a_2026_only_stdio_server_is_reached_by_both_eras() {
    let d = Director::start(&format!(
        "[servers.m]\ncommand = \"{}\"\nenv = {{ FIXTURE_NAME = \"m\", FIXTURE_MODERN_ONLY = \"1\" }}\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    ));
    d.wait_running(&["m"]).await;
    let status = d
        .client(None)
        .get_server_status("m")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.protocol_era,
        Some(mcp_director_client::types::ProtocolEra::Modern)
    );

    // A 2025 client: asked with sampling/createMessage on its own session.
    let mut legacy = McpHttp::new(&d.url);
    legacy.initialize(json!({"sampling": {}})).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "m/sample", "arguments": {"prompt": "p"}}});
    let sampled = legacy
        .call_answering(call, |request| {
            assert_eq!(request["method"], "sampling/createMessage");
            json!({"role": "assistant", "model": "m",
                "content": {"type": "text", "text": "from 2025"}})
        })
        .await;
    assert_eq!(common::result_text(&sampled), "sampled: from 2025");

    // A 2026 client: the question, then its retry.
    let c = McpHttp::new(&d.url);
    let caps = json!({"sampling": {}});
    let call = json!({"name": "m/sample", "arguments": {"prompt": "p"}});
    let (_, first) = answer(modern(&c, 1, "tools/call", call.clone(), caps.clone())).await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    assert_eq!(
        result["inputRequests"]["q"]["method"],
        "sampling/createMessage"
    );
    let state = result["requestState"].as_str().unwrap();
    assert_ne!(
        state, "fixture-state",
        "the server's own state is never handed out bare"
    );
    let retry = |state: &str| {
        let mut p = call.clone();
        p["requestState"] = json!(state);
        p["inputResponses"] = json!({"q": {"role": "assistant", "model": "m",
            "content": {"type": "text", "text": "from 2026"}}});
        p
    };
    let (_, forged) = answer(modern(
        &c,
        2,
        "tools/call",
        retry("fixture-state"),
        caps.clone(),
    ))
    .await;
    assert_eq!(forged["error"]["code"], -32602, "{forged}");
    let (_, done) = answer(modern(&c, 3, "tools/call", retry(state), caps.clone())).await;
    assert_eq!(
        done["result"]["content"][0]["text"], "sampled: from 2026",
        "{done}"
    );

    // Its tool changes arrive on the director's listen stream (over stdio).
    let (_, added) = answer(modern(
        &c,
        4,
        "tools/call",
        json!({"name": "m/add_tool", "arguments": {"name": "sprout"}}),
        json!({}),
    ))
    .await;
    assert_eq!(added["result"]["content"][0]["text"], "added sprout");
    common::wait_for(|| async {
        let (_, list) = answer(modern(&c, 5, "tools/list", json!({}), json!({}))).await;
        list["result"]["tools"]
            .as_array()?
            .iter()
            .any(|t| t["name"] == "m/sprout")
            .then_some(())
    })
    .await;

    // A resource subscription changes what the director listens for: the stream is opened
    // again with it, and the old one cancelled (over stdio it would otherwise go on).
    let cancels = |log: &str| {
        log.lines()
            .filter(|l| l.contains("fixture: request") && l.contains("cancelled"))
            .count()
    };
    let before = cancels(&d.log());
    let mut subscriber = McpHttp::new(&d.url);
    subscriber.initialize(json!({})).await;
    let subscribed = subscriber
        .post(
            json!({"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe",
            "params": {"uri": "fixture://static"}}),
        )
        .await;
    assert_eq!(subscribed[0]["result"], json!({}), "{subscribed:?}");
    common::wait_for(|| async { (cancels(&d.log()) > before).then_some(()) }).await;
}
