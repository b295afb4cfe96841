//! Several directors on one PostgreSQL store, as one service: behind HAProxy with plain round
//! robin (the conformance suite and the official Python SDK through it), tasks leased to the
//! replica running them and reachable through any, sessions forwarded to the replica holding
//! them, configuration changes applied by all, rate limits held across them, and a replica
//! killed without the others noticing more than its sessions ending.

mod common;

use common::cluster;
use common::{Director, McpHttp, Peer, PgSchema};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "replica-owner-token-0123456789abcdefghijklmnop";

fn config(store: &str) -> String {
    format!(
        "[settings.store]\nurl = \"{store}\"\n[servers.a]\ncommand = \"{}\"\n[profiles.owner]\nrequire_token = true\ntoken_sha256 = \"{}\"\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server"),
        mcp_director::secrets::sha256_hex(TOKEN)
    )
}

async fn owner(d: &Director) -> McpHttp {
    let mut c = McpHttp::new(&d.url);
    c.url = format!("{}/mcp?token={TOKEN}", d.url);
    c.initialize(json!({})).await;
    c
}

async fn call(c: &McpHttp, id: i64, method: &str, params: Value) -> Value {
    c.post(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
        .await
        .pop()
        .expect("an answer")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_created_through_a_is_read_through_b_and_cancelled_through_c() {
    let Some(schema) = PgSchema::new().await else {
        return;
    };
    let a = Director::start(&config(&schema.url));
    a.wait_running(&["a"]).await;
    let on_a = owner(&a).await;
    let created = call(
        &on_a,
        1,
        "tools/call",
        json!({"name": "a/slow", "arguments": {"ms": 600000}, "task": {}}),
    )
    .await;
    let id = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();

    // Two more replicas start on the same store (a rolling deploy): the task goes on.
    let b = Director::start(&config(&schema.url));
    let c = Director::start(&config(&schema.url));
    b.wait_running(&["a"]).await;
    c.wait_running(&["a"]).await;
    let on_b = owner(&b).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = call(&on_b, 2, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(seen["result"]["status"], "working", "{seen}");

    // Cancelled through C: cancelled for everyone, and A stops the work: the fixture behind A
    // receives the cancellation of its call.
    let on_c = owner(&c).await;
    let cancelled = call(&on_c, 3, "tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    let on_a_now = call(&on_a, 4, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(on_a_now["result"]["status"], "cancelled");
    common::wait_for(|| async {
        let log = a.log();
        let upstream_told = log
            .lines()
            .any(|l| l.contains("fixture: request") && l.contains("cancelled"));
        (log.contains("task cancelled through another replica: stopped") && upstream_told)
            .then_some(())
    })
    .await;
}

/// Without a shared counter, each of N live replicas enforces 1/N of a rate limit (a load
/// balancer spreads a client's requests over them): two replicas, 4 a minute → 2 each.
#[tokio::test(flavor = "multi_thread")]
async fn live_replicas_share_a_rate_limit() {
    let Some(schema) = PgSchema::new().await else {
        return;
    };
    let limited = format!(
        "[settings.store]\nurl = \"{}\"\n[settings.rate_limit]\nper_minute = 4\n",
        schema.url
    );
    let a = Director::start(&limited);
    let b = Director::start(&limited);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    // Each has seen the other's heartbeat within a couple of periods.
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    for d in [&a, &b] {
        let c = McpHttp::new(&d.url);
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(c.request(&init).send().await.unwrap().status().as_u16());
        }
        assert_eq!(statuses, [200, 200, 429], "{}", d.url);
    }
}

/// The configuration lives in the store: a server added through one replica runs on the other
/// within seconds; `config export` from one and `config import` into the other move it as TOML.
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_change_through_one_replica_is_applied_by_all() {
    let Some(schema) = PgSchema::new().await else {
        return;
    };
    let a = Director::start(&config(&schema.url));
    let b = Director::start(&config(&schema.url));
    a.wait_running(&["a"]).await;
    b.wait_running(&["a"]).await;
    let fixture = env!("CARGO_BIN_EXE_mcp-fixture-server");
    let late: mcp_director_client::types::Server =
        serde_json::from_value(json!({"name": "late", "command": fixture})).unwrap();
    let added = a.client(None).add_server(&late).await.unwrap();
    assert_eq!(added.status().as_u16(), 201);
    b.wait_running(&["late"]).await;

    // Out as TOML from B, changed, in through B: A follows.
    let cli = |d: &Director, args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mcp-director"))
            .args(args)
            .args(["--url", &d.url])
            .env_remove("MCP_DIRECTOR_USER")
            .env_remove("MCP_DIRECTOR_PASSWORD")
            .output()
            .expect("run mcp-director")
    };
    let exported = cli(&b, &["config", "export"]);
    assert!(exported.status.success(), "{exported:?}");
    let toml = String::from_utf8(exported.stdout).unwrap();
    assert!(toml.contains("[servers.late]"), "{toml}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("moved.toml");
    std::fs::write(&file, toml.replace("[servers.late]", "[servers.moved]")).unwrap();
    let imported = cli(&b, &["config", "import", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{imported:?}");
    a.wait_running(&["moved"]).await;
    let servers = a.client(None).list_servers().await.unwrap().into_inner();
    let names: Vec<String> = servers
        .iter()
        .filter_map(|s| s.name.as_ref().map(|n| n.to_string()))
        .collect();
    assert!(names.contains(&"moved".to_string()), "{names:?}");
    assert!(!names.contains(&"late".to_string()), "{names:?}");
}

/// A 2025-era session lives in one replica; a load balancer may send its next request, its
/// GET stream or its DELETE to another, which forwards them to the replica holding it (the
/// replicas share MCP_DIRECTOR_CLUSTER_SECRET). Without the secret nothing is forwarded: 404,
/// and the client starts over.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_is_served_through_any_replica() {
    let Some(schema) = PgSchema::new().await else {
        return;
    };
    let secret = [("MCP_DIRECTOR_CLUSTER_SECRET", "replica-secret-0123456789")];
    let a = Director::start_with_env(&config(&schema.url), &secret);
    let b = Director::start_with_env(&config(&schema.url), &secret);
    a.wait_running(&["a"]).await;
    b.wait_running(&["a"]).await;
    // B knows where A is once A's heartbeat carries its URL.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;

    let mut on_a = McpHttp::new(&a.url);
    on_a.initialize(json!({})).await;
    let mut via_b = McpHttp::new(&b.url);
    via_b.session = on_a.session.clone();
    let echoed = call(
        &via_b,
        1,
        "tools/call",
        json!({"name": "a/echo", "arguments": {"text": "through b"}}),
    )
    .await;
    assert_eq!(
        echoed["result"]["content"][0]["text"], "fixture: through b",
        "{echoed}"
    );
    // The session's stream, opened through B, carries what A sends it.
    let mut stream = via_b.open_stream(None).await;
    let added = call(
        &on_a,
        2,
        "tools/call",
        json!({"name": "a/add_tool", "arguments": {"name": "sprout"}}),
    )
    .await;
    assert_eq!(added["result"]["content"][0]["text"], "added sprout");
    let changed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some((_, m)) = stream.recv().await {
            if m["method"] == "notifications/tools/list_changed" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(changed, Ok(true));
    // Ended through B: gone on A.
    let ended = via_b
        .http
        .delete(&via_b.url)
        .header("mcp-session-id", via_b.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status().as_u16(), 204);
    let after = on_a
        .request(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 404);

    // Without the shared secret, B does not forward.
    let c = Director::start(&config(&schema.url));
    c.wait_running(&["a"]).await;
    let mut fresh = McpHttp::new(&a.url);
    fresh.initialize(json!({})).await;
    let mut via_c = McpHttp::new(&c.url);
    via_c.session = fresh.session.clone();
    let refused = via_c
        .request(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 404);
}

/// The fixture behind every replica, a profile whose token tasks are bound to.
fn fixture_config() -> String {
    format!(
        "[servers.a]\ncommand = \"{}\"\nenv = {{ FIXTURE_NAME = \"a\" }}\n[profiles.owner]\nrequire_token = true\ntoken_sha256 = \"{}\"\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server"),
        mcp_director::secrets::sha256_hex(TOKEN)
    )
}

/// Three replicas behind HAProxy, round robin without stickiness: the conformance suite
/// passes through it as through one director (its 2025-era sessions forwarded to the replica
/// holding each).
#[tokio::test(flavor = "multi_thread")]
async fn the_conformance_suite_passes_through_three_replicas_behind_haproxy() {
    let catalogue = format!(
        "[servers.conformance]\ncommand = \"{}\"\nenv = {{ FIXTURE_CONFORMANCE = \"1\" }}\nprefix = \"\"\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    );
    let Some((_schema, _replicas, lb)) =
        cluster::replicas(3, &catalogue, &["conformance"], &[]).await
    else {
        return;
    };
    let url = format!("{}/mcp", lb.url);
    let (passed, failed) = tokio::task::spawn_blocking(move || common::conformance::run(&url))
        .await
        .unwrap();
    assert!(failed.is_empty(), "failed twice: {failed:?}");
    assert_eq!(passed, 40, "every active check passes");
}

/// The newest official Python SDK through the same three replicas, in both eras: a
/// 2025-11-25 session (its requests, its stream and its answers to elicitation and sampling
/// forwarded to the replica holding it) and 2026-07-28 (stateless; a retry carrying answers
/// forwarded to the replica where the call waits).
#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_works_through_three_replicas_behind_haproxy() {
    let Some((_schema, _replicas, lb)) = cluster::replicas(3, &fixture_config(), &["a"], &[]).await
    else {
        return;
    };
    let python = common::peers().join("venv2/bin/python");
    let url = format!("{}/mcp", lb.url);
    for (mode, protocol) in [(Some("legacy"), "2025-11-25"), (None, "2026-07-28")] {
        // Several times: round robin puts each request somewhere else each time.
        for round in 0..3 {
            let out = Command::new(&python)
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/python/sdk2_client.py"
                ))
                .arg(&url)
                .args(mode)
                .output()
                .expect("python");
            assert!(
                out.status.success(),
                "{mode:?} round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            common::assert_sdk2_report(&report, protocol, &format!("{mode:?} round {round}"));
        }
    }
}

/// How many 2025-era sessions a replica holds (its metrics).
async fn sessions_held(d: &Director) -> u64 {
    let text = reqwest::get(format!("{}/metrics", d.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("mcp_director_sessions{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// One replica killed (SIGKILL) while SDK clients call through HAProxy: the sessions it held
/// answer 404 and their clients start new ones; every client goes on being served; a task on
/// another replica goes on; the dead replica's own task is failed by a survivor once its lease
/// lapses.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_under_load_costs_only_its_own_sessions_and_tasks() {
    let Some((_schema, mut replicas, lb)) =
        cluster::replicas(3, &fixture_config(), &["a"], &[]).await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (killed, stop) = (dir.path().join("killed"), dir.path().join("stop"));
    let workers = 6;
    let mut script = Peer::spawn(
        Command::new(common::peers().join("venv2/bin/python"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/sdk2_failover.py"
            ))
            .arg(format!("{}/mcp", lb.url))
            .arg(workers.to_string())
            .arg(&killed)
            .arg(&stop)
            .stdout(Stdio::piped()),
    );
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let stdout = script.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let ready = tokio::time::timeout(Duration::from_secs(60), lines.recv()).await;
    assert_eq!(ready, Ok(Some("ready".to_string())));

    // A task on each replica.
    let mut tasks = Vec::new();
    for (i, d) in replicas.iter().enumerate() {
        let c = owner(d).await;
        let created = call(
            &c,
            i as i64,
            "tools/call",
            json!({"name": "a/slow", "arguments": {"ms": 600000}, "task": {}}),
        )
        .await;
        let id = created["result"]["task"]["taskId"]
            .as_str()
            .unwrap()
            .to_string();
        tasks.push(id);
    }

    // The replica holding the most sessions is killed.
    let mut held = Vec::new();
    for d in &replicas {
        held.push(sessions_held(d).await);
    }
    let victim = (0..replicas.len()).max_by_key(|&i| held[i]).unwrap();
    assert!(held[victim] > 0, "sessions held: {held:?}");
    let dead = replicas.remove(victim);
    let dead_task = tasks.remove(victim);
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(dead.pid() as i32, libc::SIGKILL) };
    std::fs::write(&killed, "").unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    std::fs::write(&stop, "").unwrap();
    let report = tokio::time::timeout(Duration::from_secs(60), lines.recv())
        .await
        .expect("the clients stop")
        .expect("a report");
    let report: Value = serde_json::from_str(&report).unwrap();
    eprintln!("under load, one replica killed: {report} (sessions held {held:?})");
    assert!(
        report["reinitialized"].as_u64().unwrap() >= 1,
        "the dead replica's sessions start over: {report}"
    );
    for (i, after) in report["after_kill"].as_array().unwrap().iter().enumerate() {
        assert!(
            after.as_u64().unwrap() > 0,
            "client {i} served again: {report}"
        );
    }
    // An in-flight call at the moment of the kill may fail otherwise; nothing else does.
    assert!(
        report["errors"].as_array().unwrap().len() <= workers,
        "{report}"
    );

    // The survivors' tasks go on; the dead one's task fails once its lease lapses.
    let c = owner(&replicas[0]).await;
    for id in &tasks {
        let seen = call(&c, 10, "tasks/get", json!({"taskId": id})).await;
        assert_eq!(seen["result"]["status"], "working", "{seen}");
    }
    let failed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let seen = call(&c, 11, "tasks/get", json!({"taskId": dead_task})).await;
            if seen["result"]["status"] != "working" {
                return seen;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await
    .expect("the dead replica's task is failed once its lease lapses");
    assert_eq!(failed["result"]["status"], "failed", "{failed}");
    for id in &tasks {
        let seen = call(&c, 12, "tasks/get", json!({"taskId": id})).await;
        assert_eq!(seen["result"]["status"], "working", "{seen}");
    }
    drop(dead);
}

/// A server and a profile added through one replica are in another's tools/list within 2 s
/// (the change is signalled, not waited for).
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_change_reaches_another_replicas_tools_list_within_two_seconds() {
    let Some((_schema, replicas, _lb)) = cluster::replicas(2, &fixture_config(), &["a"], &[]).await
    else {
        return;
    };
    let (a, b) = (&replicas[0], &replicas[1]);
    let running_on_b = b.wait_running(&["a"]).await;
    let tools = |d: &Director, token: Option<&str>| {
        let mut c = McpHttp::new(&d.url);
        if let Some(t) = token {
            c.url = format!("{}/mcp?token={t}", d.url);
        }
        async move {
            c.initialize(json!({})).await;
            let listed = call(&c, 1, "tools/list", json!({})).await;
            listed["result"]["tools"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .map(|t| t["name"].as_str().unwrap_or("").to_string())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        }
    };
    let fixture = env!("CARGO_BIN_EXE_mcp-fixture-server");
    let late: mcp_director_client::types::Server =
        serde_json::from_value(json!({"name": "late", "command": fixture})).unwrap();
    let started = Instant::now();
    assert_eq!(
        a.client(None)
            .add_server(&late)
            .await
            .unwrap()
            .status()
            .as_u16(),
        201
    );
    common::wait_for_within(Duration::from_secs(2), || async {
        tools(b, None)
            .await
            .contains(&"late/echo".to_string())
            .then_some(())
    })
    .await;
    eprintln!(
        "a server added through A was listed by B after {:?}",
        started.elapsed()
    );

    let narrow_token = "narrow-profile-token-0123456789abcdefghij";
    let narrow: mcp_director_client::types::Profile = serde_json::from_value(json!({
        "name": "narrow", "servers": ["a"], "deny": ["a/echo"],
        "require_token": true, "token_sha256": mcp_director::secrets::sha256_hex(narrow_token)
    }))
    .unwrap();
    let started = Instant::now();
    assert_eq!(
        a.client(None)
            .create_profile(&narrow)
            .await
            .unwrap()
            .status()
            .as_u16(),
        201
    );
    let seen = common::wait_for_within(Duration::from_secs(2), || async {
        Some(tools(b, Some(narrow_token)).await).filter(|seen| !seen.is_empty())
    })
    .await;
    assert!(!seen.contains(&"a/echo".to_string()), "{seen:?}");
    assert!(!seen.iter().any(|t| t.starts_with("late/")), "{seen:?}");
    eprintln!(
        "a profile created through A applied by B after {:?}",
        started.elapsed()
    );
    // What did not change goes on undisturbed: B's server `a` is the same process.
    assert_eq!(b.wait_running(&["a"]).await, running_on_b);
}

/// With Redis, a rate limit is exact across replicas: a profile of 10 calls a minute gets its
/// 11th refused whichever replica HAProxy sends it to.
#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_holds_across_replicas_through_redis() {
    let Some(redis) = cluster::redis() else {
        return;
    };
    // A token of its own: a bucket no earlier run has touched.
    let token = format!("limited-{}", mcp_director::secrets::random_token());
    let config = format!(
        "[settings.cluster]\nredis_url = \"{redis}\"\n[servers.a]\ncommand = \"{}\"\n\
         [profiles.limited]\nrequire_token = true\ntoken_sha256 = \"{}\"\n\
         [profiles.limited.rate_limit]\nper_minute = 10\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server"),
        mcp_director::secrets::sha256_hex(&token)
    );
    let Some((_schema, replicas, lb)) = cluster::replicas(3, &config, &["a"], &[]).await else {
        return;
    };
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for id in 0..11 {
        // 2026-07-28, stateless: each request stands alone, wherever it lands.
        let answer = http
            .post(format!("{}/mcp?token={token}", lb.url))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "a/echo")
            .json(
                &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                "name": "a/echo", "arguments": {"text": "x"},
                "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                          "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                          "io.modelcontextprotocol/clientCapabilities": {}}}}),
            )
            .send()
            .await
            .unwrap();
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[200; 10], "{statuses:?}");
    // Round robin gave each replica about 4: without the shared count (each enforcing its
    // share, ⌈10/3⌉ = 4) none would refuse.
    assert_eq!(statuses[10], 429, "{statuses:?}");
    drop((replicas, lb));
}

/// Redis unreachable: the replica does not stop limiting (nor refuse everyone); it enforces
/// its share meanwhile, alone here: the whole limit.
#[tokio::test(flavor = "multi_thread")]
async fn without_an_answer_from_redis_a_replica_limits_on_its_own() {
    let nobody = common::free_port();
    let d = Director::start(&format!(
        "[settings.cluster]\nredis_url = \"redis://127.0.0.1:{nobody}\"\n[settings.rate_limit]\nper_minute = 2\n"
    ));
    let c = McpHttp::new(&d.url);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(c.request(&init).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert!(d.log().contains("Redis unusable"), "the fallback is logged");
}
