//! Async tasks through the director: create, poll, result, list, cancel; upstreams with and
//! without task support; owners; timeouts; a restart in between.

mod common;

use common::{Director, McpHttp};
use serde_json::{Value, json};

const TOKEN: &str = "task-owner-token-0123456789abcdefghijklmnop";

fn config(extra: &str) -> String {
    format!(
        "[servers.a]\ncommand = \"{}\"\n[profiles.owner]\nrequire_token = true\ntoken_sha256 = \"{}\"\n{extra}",
        env!("CARGO_BIN_EXE_mcp-fixture-server"),
        mcp_director::secrets::sha256_hex(TOKEN)
    )
}

fn rpc(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

async fn owner_session(d: &Director) -> McpHttp {
    let mut c = McpHttp::new(&d.url);
    c.url = format!("{}/mcp?token={TOKEN}", d.url);
    c.initialize(json!({})).await;
    c
}

async fn answer(c: &McpHttp, body: Value) -> Value {
    c.post(body).await.pop().expect("an answer")
}

fn task_of(created: &Value) -> (String, Value) {
    let task = created["result"]["task"].clone();
    (
        task["taskId"]
            .as_str()
            .unwrap_or_else(|| panic!("no task in {created}"))
            .to_string(),
        task,
    )
}

/// A task of `a/slow` that runs for ten minutes, created by `c`: its id.
async fn long_task(c: &McpHttp) -> String {
    let created = answer(
        c,
        rpc(
            1,
            "tools/call",
            json!({"name": "a/slow", "arguments": {"ms": 600000}, "task": {}}),
        ),
    )
    .await;
    task_of(&created).0
}

/// Task objects with volatile fields replaced, for snapshots.
fn stable(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if ["taskId", "createdAt", "lastUpdatedAt"].contains(&k.as_str()) {
                        *x = json!(format!("[{k}]"));
                    } else {
                        walk(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn create_poll_result_list_cancel_on_a_plain_upstream() {
    let d = Director::start(&config(""));
    d.wait_running(&["a"]).await;
    let c = owner_session(&d).await;
    let mut stream = c.open_stream(None).await;
    let mut log = Vec::new();

    let created = answer(
        &c,
        rpc(
            1,
            "tools/call",
            json!({"name": "a/slow", "arguments": {"ms": 400}, "task": {"ttl": 60000}}),
        ),
    )
    .await;
    let (id, task) = task_of(&created);
    assert_eq!(task["status"], "working");
    assert_eq!(task["ttl"], 60000);
    assert!(task["createdAt"].as_str().unwrap().ends_with('Z'));
    log.push(stable(created));
    let polled = answer(&c, rpc(2, "tasks/get", json!({"taskId": id}))).await;
    assert_eq!(polled["result"]["status"], "working");
    // tasks/result blocks until the work is done, then answers what tools/call would have.
    let result = answer(&c, rpc(3, "tasks/result", json!({"taskId": id}))).await;
    assert_eq!(result["result"]["content"][0]["text"], "slept 400 ms");
    assert_eq!(
        result["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id.as_str()
    );
    log.push(stable(result));
    let done = answer(&c, rpc(4, "tasks/get", json!({"taskId": id}))).await;
    assert_eq!(done["result"]["status"], "completed");
    log.push(stable(done));
    // The status change was announced on the session's stream.
    let note = common::next_notification(&mut stream, "notifications/tasks/status").await;
    assert_eq!(note["params"]["status"], "completed");

    // Cancel a long one: cancelled before the answer, and for good.
    let long = answer(
        &c,
        rpc(
            5,
            "tools/call",
            json!({"name": "a/slow", "arguments": {"ms": 600000}, "task": {}}),
        ),
    )
    .await;
    let (long_id, _) = task_of(&long);
    let cancelled = answer(&c, rpc(6, "tasks/cancel", json!({"taskId": long_id}))).await;
    assert_eq!(cancelled["result"]["status"], "cancelled");
    log.push(stable(cancelled));
    let again = answer(&c, rpc(7, "tasks/cancel", json!({"taskId": long_id}))).await;
    assert_eq!(again["error"]["code"], -32602);
    log.push(stable(again));
    let after = answer(&c, rpc(8, "tasks/get", json!({"taskId": long_id}))).await;
    assert_eq!(after["result"]["status"], "cancelled");

    let listed = answer(&c, rpc(9, "tasks/list", json!({}))).await;
    let ids: Vec<&str> = listed["result"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str(), long_id.as_str()]);
    let unknown = answer(&c, rpc(10, "tasks/get", json!({"taskId": "nope"}))).await;
    assert_eq!(unknown["error"]["code"], -32602);
    log.push(stable(unknown));
    insta::assert_json_snapshot!("task_exchange", log);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_identity_cannot_see_or_cancel_a_task() {
    let d = Director::start(&config(""));
    d.wait_running(&["a"]).await;
    let owner = owner_session(&d).await;
    let id = long_task(&owner).await;
    let mut stranger = McpHttp::new(&d.url);
    stranger.initialize(json!({})).await;
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        let a = answer(&stranger, rpc(2, method, json!({"taskId": id}))).await;
        assert_eq!(a["error"]["code"], -32602, "{method}: {a}");
    }
    let listed = answer(&stranger, rpc(3, "tasks/list", json!({}))).await;
    assert_eq!(listed["result"]["tasks"], json!([]));
    // The owner, in a new session with the same token, still has it.
    let again = owner_session(&d).await;
    let polled = answer(&again, rpc(4, "tasks/get", json!({"taskId": id}))).await;
    assert_eq!(polled["result"]["status"], "working");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_fails_the_task_and_stops_the_call() {
    let d = Director::start(&config(""));
    d.wait_running(&["a"]).await;
    let c = owner_session(&d).await;
    let created = answer(
        &c,
        rpc(
            1,
            "tools/call",
            json!({"name": "a/slow", "arguments": {"ms": 600000}, "task": {"timeoutMs": 300}}),
        ),
    )
    .await;
    let (id, _) = task_of(&created);
    let result = answer(&c, rpc(2, "tasks/result", json!({"taskId": id}))).await;
    assert_eq!(
        result["error"]["message"],
        "the task timed out after 300 ms"
    );
    let task = answer(&c, rpc(3, "tasks/get", json!({"taskId": id}))).await;
    assert_eq!(task["result"]["status"], "failed");
    assert_eq!(
        task["result"]["statusMessage"],
        "the task timed out after 300 ms"
    );
    // The upstream heard the cancellation (the fixture logs it to stderr, which the director
    // copies into its log).
    common::wait_for(|| async { d.log().contains("fixture: request").then_some(()) }).await;
    assert!(d.log().contains("cancelled"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_that_forbids_tasks_refuses_one() {
    let d = Director::start(&config(""));
    d.wait_running(&["a"]).await;
    let c = owner_session(&d).await;
    // The fixture's `echo` declares nothing: the director runs it as its own task.
    let created = answer(
        &c,
        rpc(
            1,
            "tools/call",
            json!({"name": "a/echo", "arguments": {"text": "t"}, "task": {}}),
        ),
    )
    .await;
    assert!(created["result"]["task"]["taskId"].is_string(), "{created}");
    // `forbid` says taskSupport = forbidden: -32601, as the spec says.
    let refused = answer(
        &c,
        rpc(
            2,
            "tools/call",
            json!({"name": "a/forbid", "arguments": {}, "task": {}}),
        ),
    )
    .await;
    assert_eq!(refused["error"]["code"], -32601, "{refused}");
    let plain = answer(
        &c,
        rpc(
            3,
            "tools/call",
            json!({"name": "a/forbid", "arguments": {}}),
        ),
    )
    .await;
    assert_eq!(plain["result"]["content"][0]["text"], "forbid ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn results_survive_a_restart_and_lost_work_fails_with_a_reason() {
    let d = Director::start(&config(""));
    d.wait_running(&["a"]).await;
    let c = owner_session(&d).await;
    let quick = answer(
        &c,
        rpc(
            1,
            "tools/call",
            json!({"name": "a/echo", "arguments": {"text": "kept"}, "task": {}}),
        ),
    )
    .await;
    let (quick_id, _) = task_of(&quick);
    let done = answer(&c, rpc(2, "tasks/result", json!({"taskId": quick_id}))).await;
    assert_eq!(done["result"]["content"][0]["text"], "fixture: kept");
    let long = answer(
        &c,
        rpc(
            3,
            "tools/call",
            json!({"name": "a/slow", "arguments": {"ms": 600000}, "task": {}}),
        ),
    )
    .await;
    let (long_id, _) = task_of(&long);

    let (dir, temp) = d.stop();
    let d = Director::start_in(&dir);
    d.wait_running(&["a"]).await;
    let c = owner_session(&d).await;
    let kept = answer(&c, rpc(4, "tasks/result", json!({"taskId": quick_id}))).await;
    assert_eq!(kept["result"]["content"][0]["text"], "fixture: kept");
    // Alone on SQLite the restart fails it at once; on PostgreSQL (shared: the killed process
    // could have been another replica) once its lease has lapsed.
    let limit = if common::postgres_pass() { 60 } else { 20 };
    let lost = common::wait_for_within(std::time::Duration::from_secs(limit), || async {
        let t = answer(&c, rpc(5, "tasks/get", json!({"taskId": long_id}))).await;
        (t["result"]["status"] == "failed").then_some(t)
    })
    .await;
    assert_eq!(
        lost["result"]["statusMessage"],
        "the director running this task stopped before it finished"
    );
    drop(temp);
}

/// server-everything's `simulate-research-query` requires a task: the director passes the task
/// through to it and returns its result.
#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_that_requires_tasks_runs_its_own() {
    let js = common::peers()
        .join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let d = Director::start(&config(&format!(
        "[servers.ev]\ncommand = \"node\"\nargs = [\"{}\", \"stdio\"]\n",
        js.display()
    )));
    d.wait_running(&["a", "ev"]).await;
    let c = owner_session(&d).await;
    let plain = answer(
        &c,
        rpc(
            1,
            "tools/call",
            json!({"name": "ev/simulate-research-query", "arguments": {"topic": "rust"}}),
        ),
    )
    .await;
    assert_eq!(plain["error"]["code"], -32601, "{plain}");
    let created = answer(&c, rpc(2, "tools/call", json!({"name": "ev/simulate-research-query", "arguments": {"topic": "rust"}, "task": {"ttl": 60000}}))).await;
    let (id, _) = task_of(&created);
    let result = answer(&c, rpc(3, "tasks/result", json!({"taskId": id}))).await;
    let text = result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{result}"));
    assert!(text.to_lowercase().contains("rust"), "{text}");
    assert_eq!(
        result["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id.as_str()
    );
    let task = answer(&c, rpc(4, "tasks/get", json!({"taskId": id}))).await;
    assert_eq!(task["result"]["status"], "completed");
}

/// A task runs where its session does: in the session's project, on that project's instance.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_runs_in_its_sessions_project() {
    let d = Director::start(&config("[projects.web]\nenv = { ROOT = \"/code/web\" }\n"));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    c.url = format!("{}/mcp?token={TOKEN}&project=web", d.url);
    c.initialize(json!({})).await;
    let created = common::wait_for(|| async {
        let a = answer(
            &c,
            rpc(
                1,
                "tools/call",
                json!({"name": "a/env", "arguments": {"name": "ROOT"}, "task": {}}),
            ),
        )
        .await;
        a["result"]["task"]["taskId"].as_str().map(str::to_string)
    })
    .await;
    let result = answer(&c, rpc(2, "tasks/result", json!({"taskId": created}))).await;
    let text = result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{result}"));
    assert!(text.starts_with("/code/web|"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_that_needs_the_client_is_input_required_until_answered() {
    let d = Director::start(&config(""));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({"elicitation": {"form": {}}})).await;
    let mut stream = c.open_stream(None).await;
    let created = answer(
        &c,
        rpc(
            1,
            "tools/call",
            json!({"name": "a/elicit", "arguments": {"message": "who?"},
            "task": {"ttl": 60000}}),
        ),
    )
    .await;
    let (task_id, _) = task_of(&created);
    // The job's server request comes on the session's stream, marked as the task's.
    let mut statuses = Vec::new();
    let request = loop {
        let (_, m) = tokio::time::timeout(std::time::Duration::from_secs(20), stream.recv())
            .await
            .expect("the elicitation")
            .expect("stream open");
        match m["method"].as_str() {
            Some("elicitation/create") => break m,
            Some("notifications/tasks/status") => {
                statuses.push(m["params"]["status"].as_str().unwrap().to_string())
            }
            _ => {}
        }
    };
    assert_eq!(
        request["params"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        task_id.as_str()
    );
    let got = answer(&c, rpc(2, "tasks/get", json!({"taskId": task_id}))).await;
    assert_eq!(got["result"]["status"], "input_required");
    // The client answers; the task works again and completes with what was elicited.
    let reply = json!({"jsonrpc": "2.0", "id": request["id"], "result": {
        "action": "accept", "content": {"name": "Ada"}}});
    assert_eq!(c.request(&reply).send().await.unwrap().status(), 202);
    let result = answer(&c, rpc(3, "tasks/result", json!({"taskId": task_id}))).await;
    assert_eq!(
        result["result"]["content"][0]["text"],
        "elicited: accept Ada"
    );
    while statuses.last().map(String::as_str) != Some("completed") {
        let (_, m) = tokio::time::timeout(std::time::Duration::from_secs(20), stream.recv())
            .await
            .expect("status notifications")
            .expect("stream open");
        if m["method"] == "notifications/tasks/status" {
            statuses.push(m["params"]["status"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(statuses, ["input_required", "working", "completed"]);
}

/// A task with the seed's `timeoutMs` (and with `ttl`, and with neither) on a tool the upstream
/// runs as a task itself (server-everything's `simulate-research-query`): the director runs
/// the upstream's task to its end and hands its result over.
#[tokio::test(flavor = "multi_thread")]
async fn upstream_tasks_run_with_timeout_ttl_or_neither() {
    let everything_js = common::peers()
        .join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let d = Director::start(&format!(
        "[servers.ev]\ncommand = \"node\"\nargs = [\"{}\", \"stdio\"]\n",
        everything_js.display()
    ));
    d.wait_running(&["ev"]).await;
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    let shapes = [
        json!({"timeoutMs": 300000}),
        json!({"ttl": 60000}),
        json!({}),
    ];
    let mut ids = Vec::new();
    for (i, task) in shapes.iter().enumerate() {
        let created = answer(
            &c,
            rpc(
                i as i64 + 1,
                "tools/call",
                json!({"name": "ev/simulate-research-query", "arguments": {"topic": "rust"}, "task": task}),
            ),
        )
        .await;
        ids.push(task_of(&created).0);
    }
    for (i, id) in ids.iter().enumerate() {
        let status = common::wait_for(|| async {
            let got = answer(&c, rpc(10, "tasks/get", json!({"taskId": id}))).await;
            let status = got["result"]["status"].as_str()?.to_string();
            (status != "working").then_some(status)
        })
        .await;
        assert_eq!(status, "completed", "task shape {}", shapes[i]);
        let result = answer(&c, rpc(11, "tasks/result", json!({"taskId": id}))).await;
        let text = result["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains("Research Report"), "{result}");
    }
}

/// An operator sees every client's tasks through the admin API and cancels one: its owner
/// then reads `cancelled`, and a finished task cannot be cancelled again.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_lists_and_cancels_a_clients_task() {
    let d = Director::start(&config(""));
    d.wait_running(&["a"]).await;
    let owner = owner_session(&d).await;
    let id = long_task(&owner).await;
    let admin = d.client(None);
    let working = admin
        .list_tasks(None, Some("working"))
        .await
        .unwrap()
        .into_inner();
    let listed = working.iter().find(|t| t.task_id == id).expect("listed");
    // The owner is the token's identity, shortened; the replica running it is named.
    let hash = mcp_director::secrets::sha256_hex(TOKEN);
    assert_eq!(listed.owner, format!("token:{}", &hash[..12]));
    assert!(listed.node.is_some());
    let mut stream = owner.open_stream(None).await;
    let cancelled = admin.cancel_task(&id).await.unwrap().into_inner();
    assert_eq!(cancelled.status.to_string(), "cancelled");
    // The owner did not ask: its session is told.
    let note = common::next_notification(&mut stream, "notifications/tasks/status").await;
    assert_eq!(note["params"]["status"], "cancelled");
    assert_eq!(note["params"]["taskId"], id.as_str());
    let polled = answer(&owner, rpc(2, "tasks/get", json!({"taskId": id}))).await;
    assert_eq!(polled["result"]["status"], "cancelled", "{polled}");
    let none_working = admin
        .list_tasks(None, Some("working"))
        .await
        .unwrap()
        .into_inner();
    assert!(none_working.iter().all(|t| t.task_id != id));
    let again = admin.cancel_task(&id).await.unwrap_err();
    assert_eq!(again.status(), Some(reqwest::StatusCode::BAD_REQUEST));
    let missing = admin.cancel_task("no-such-task").await.unwrap_err();
    assert_eq!(missing.status(), Some(reqwest::StatusCode::NOT_FOUND));
    let bad = admin.list_tasks(None, Some("sleeping")).await.unwrap_err();
    assert_eq!(bad.status(), Some(reqwest::StatusCode::BAD_REQUEST));
}
