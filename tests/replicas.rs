//! Several directors on one PostgreSQL store: a task is its replica's (leased), so another
//! replica starting never fails it; any replica answers for it and can cancel it, and the
//! replica running it stops the work.

mod common;

use common::{Director, McpHttp, PgSchema};
use serde_json::{Value, json};

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
async fn a_replica_starting_leaves_another_replicas_task_alone_and_any_replica_cancels_it() {
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

    // Another replica starts on the same store (a rolling deploy): the task goes on.
    let b = Director::start(&config(&schema.url));
    b.wait_running(&["a"]).await;
    let on_b = owner(&b).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let seen = call(&on_b, 2, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(seen["result"]["status"], "working", "{seen}");

    // Cancelled through B: cancelled for everyone, and A stops the work (its call upstream is
    // cancelled: the slow fixture call ends).
    let cancelled = call(&on_b, 3, "tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    let on_a_now = call(&on_a, 4, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(on_a_now["result"]["status"], "cancelled");
    common::wait_for(|| async {
        a.log()
            .contains("task cancelled through another replica: stopped")
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
