//! Upstreams are not trusted and clients misbehave: what a hostile upstream sends reaches no
//! one it was not serving, one that floods is cut off alone, and a client that hangs up does
//! not leave its call running. Each test here failed before the fix it guards.

mod common;

use common::{Director, McpHttp};
use serde_json::{Value, json};
use std::time::Duration;

const FIXTURE: &str = env!("CARGO_BIN_EXE_mcp-fixture-server");

fn rpc(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// While session A's call runs on a well-behaved server, a hostile server called by session B
/// sprays progress for every token it can think of (A's own, leaked to it, and the sequential
/// tokens of old) and log messages: A hears only its own server's progress, B hears the
/// hostile server's log messages of its own call and nothing else, and nobody's streams get
/// anything.
#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_upstream_reaches_no_one_it_was_not_serving() {
    let dir = tempfile::tempdir().unwrap();
    let leaked = dir.path().join("tokens");
    let d = Director::start(&format!(
        "[servers.good]\ncommand = \"{FIXTURE}\"\nenv = {{ FIXTURE_TOKEN_LOG = \"{}\" }}\n\
         [servers.evil]\ncommand = \"{FIXTURE}\"\nenv = {{ FIXTURE_HOSTILE = \"1\", FIXTURE_SPRAY_FROM = \"{}\" }}\n",
        leaked.display(),
        leaked.display()
    ));
    d.wait_running(&["good", "evil"]).await;
    let mut a = McpHttp::new(&d.url);
    a.initialize(json!({})).await;
    let mut b = McpHttp::new(&d.url);
    b.initialize(json!({})).await;
    let mut a_stream = a.open_stream(None).await;
    let mut b_stream = b.open_stream(None).await;
    let set = json!({"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": "debug"}});
    a.post(set.clone()).await;
    b.post(set).await;

    // A's call: 40 steps of progress, 20 ms apart.
    let call_a = a.post(rpc(
        2,
        "tools/call",
        json!({"name": "good/progress", "arguments": {"steps": 40}, "_meta": {"progressToken": "a-token"}}),
    ));
    let spray = async {
        // Once A's token has leaked, B's call sprays it.
        common::wait_for(|| async {
            std::fs::read_to_string(&leaked)
                .ok()
                .filter(|t| !t.is_empty())
        })
        .await;
        b.post(rpc(
            3,
            "tools/call",
            json!({"name": "evil/spray", "arguments": {}}),
        ))
        .await
    };
    let (answer_a, answer_b) = tokio::join!(call_a, spray);

    let progress: Vec<&Value> = answer_a
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 40, "{answer_a:?}");
    assert!(
        progress
            .iter()
            .all(|m| m["params"]["progressToken"] == "a-token" && m["params"]["message"].is_null()),
        "sprayed progress reached A: {answer_a:?}"
    );
    assert!(
        !answer_a
            .iter()
            .any(|m| m["method"] == "notifications/message"),
        "B's server's log reached A: {answer_a:?}"
    );
    assert!(common::result_text(&answer_b).starts_with("sprayed"));
    assert!(
        !answer_b
            .iter()
            .any(|m| m["method"] == "notifications/progress"),
        "{answer_b:?}"
    );
    let logs = answer_b
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .count();
    assert_eq!(logs, 20, "B's own call's log messages: {answer_b:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(a_stream.try_recv().is_err(), "A's stream heard something");
    assert!(b_stream.try_recv().is_err(), "B's stream heard something");
}

/// A server that writes one endless line (200 MiB) is cut off at
/// `max_upstream_message_bytes`: its call fails at once naming it, it is restarted, the
/// director's memory stays bounded, and other servers and sessions carry on.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_line_resets_only_its_upstream() {
    let d = Director::start(&format!(
        "[settings.limits]\nmax_upstream_message_bytes = 4194304\n\
         [servers.good]\ncommand = \"{FIXTURE}\"\n\
         [servers.evil]\ncommand = \"{FIXTURE}\"\nenv = {{ FIXTURE_HOSTILE = \"1\" }}\n"
    ));
    d.wait_running(&["good", "evil"]).await;
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    let started = std::time::Instant::now();
    let answer = c
        .post(rpc(
            2,
            "tools/call",
            json!({"name": "evil/flood", "arguments": {"mib": 200}}),
        ))
        .await;
    let error = &answer.last().unwrap()["error"];
    assert!(
        error["message"].as_str().unwrap().contains("'evil'"),
        "{answer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the call waited for its timeout"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(
        peak_kib < 100 * 1024,
        "the director grew to {peak_kib} KiB reading a flood"
    );
    assert!(
        d.log().contains("upstream connection reset"),
        "the reason is logged"
    );
    let good = c
        .post(rpc(
            3,
            "tools/call",
            json!({"name": "good/echo", "arguments": {"text": "still here"}}),
        ))
        .await;
    assert!(common::result_text(&good).contains("still here"));
    // The flooding server comes back.
    let restarted = common::wait_for(|| async {
        let s = d
            .client(None)
            .get_server_status("evil")
            .await
            .ok()?
            .into_inner();
        (s.restarts >= 1 && s.state == mcp_director_client::types::UpstreamState::Running)
            .then_some(s)
    })
    .await;
    assert!(restarted.restarts >= 1);
}

/// A client that accepts only JSON and hangs up mid-call: the upstream is told to stop
/// (`notifications/cancelled`), and the session, with nothing left in flight, idles out.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_hangs_up_mid_call_cancels_it() {
    let d = Director::start(&format!(
        "[settings]\nsession_idle_timeout_secs = 2\n[servers.a]\ncommand = \"{FIXTURE}\"\n"
    ));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    // A raw connection, closed half a second into the call (a pooling HTTP client would keep
    // the connection open and read the answer away).
    let body = rpc(
        2,
        "tools/call",
        json!({"name": "a/slow", "arguments": {"ms": 20000}}),
    )
    .to_string();
    let authority = d.url.strip_prefix("http://").unwrap();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: {authority}\r\naccept: application/json\r\n\
         content-type: application/json\r\nmcp-session-id: {}\r\ncontent-length: {}\r\n\r\n{body}",
        c.session.clone().unwrap(),
        body.len()
    );
    {
        use tokio::io::AsyncWriteExt;
        let mut tcp = tokio::net::TcpStream::connect(authority).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    common::wait_for(|| async { d.log().contains("fixture: request").then_some(()) }).await;
    assert!(
        d.log().contains("cancelled"),
        "the upstream heard of it: {}",
        d.log()
    );
    // Nothing in flight keeps the session: left alone past its idle timeout it expires, and
    // its id is then unknown.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    assert_eq!(c.request(&ping).send().await.unwrap().status(), 404);
}

/// A subscription is made through the instance the session uses (its project's), and made
/// again when that instance restarts: updates do not stop silently.
#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_follow_the_sessions_instance_across_restarts() {
    let d = Director::start(&format!(
        "[servers.a]\ncommand = \"{FIXTURE}\"\n[projects.web]\nenv = {{ FIXTURE_NAME = \"a-web\" }}\n"
    ));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    c.url = format!("{}/mcp?project=web", d.url);
    c.initialize(json!({})).await;
    let mut stream = c.open_stream(None).await;
    let updated =
        async |stream: &mut tokio::sync::mpsc::UnboundedReceiver<(Option<String>, Value)>| {
            loop {
                let (_, m) = tokio::time::timeout(Duration::from_secs(15), stream.recv())
                    .await
                    .expect("an update in time")
                    .expect("stream open");
                if m["method"] == "notifications/resources/updated" {
                    return m;
                }
            }
        };
    let answer = c
        .post(rpc(
            2,
            "resources/subscribe",
            json!({"uri": "fixture://static"}),
        ))
        .await;
    assert!(answer[0].get("result").is_some(), "{answer:?}");
    assert_eq!(
        updated(&mut stream).await["params"]["uri"],
        "fixture://static"
    );
    // The project's instance (it names itself a-web) crashes and comes back.
    let env = c
        .post(rpc(
            3,
            "tools/call",
            json!({"name": "a/echo", "arguments": {"text": "x"}}),
        ))
        .await;
    assert!(common::result_text(&env).starts_with("a-web"));
    c.post(rpc(
        4,
        "tools/call",
        json!({"name": "a/crash", "arguments": {}}),
    ))
    .await;
    // Subscribing again makes the fixture send an update: the subscription was remade.
    assert_eq!(
        updated(&mut stream).await["params"]["uri"],
        "fixture://static"
    );
}

/// On exit (`serve` stopped by SIGTERM, `stdio` at the end of its input) every child's whole
/// process group is gone: the children and what they started.
#[tokio::test(flavor = "multi_thread")]
async fn exiting_stops_children_and_grandchildren() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_path_buf();
    let config = |n: usize| {
        (0..n)
            .map(|i| {
                format!(
                    "[servers.s{i}]\ncommand = \"{FIXTURE}\"\nenv = {{ FIXTURE_GRANDCHILD = \"{}\" }}\n",
                    dir.join(format!("grandchild-{i}")).display()
                )
            })
            .collect::<String>()
    };
    let grandchildren = async |n: usize| {
        let mut pids = Vec::new();
        for i in 0..n {
            let path = dir.join(format!("grandchild-{i}"));
            pids.push(
                common::wait_for(|| async {
                    std::fs::read_to_string(&path).ok()?.parse::<u32>().ok()
                })
                .await,
            );
        }
        pids
    };

    let d = Director::start(&config(3));
    let children = d.wait_running(&["s0", "s1", "s2"]).await;
    let grand = grandchildren(3).await;
    assert!(grand.iter().all(|p| common::process_alive(*p)));
    d.terminate();
    for pid in children.iter().chain(&grand) {
        assert!(!common::process_alive(*pid), "{pid} outlived the director");
    }

    for i in 0..3 {
        let _ = std::fs::remove_file(dir.join(format!("grandchild-{i}")));
    }
    let path = dir.join("stdio.toml");
    std::fs::write(&path, config(2)).unwrap();
    let mut stdio = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-director"))
        .args(["stdio", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let grand = grandchildren(2).await;
    drop(stdio.stdin.take());
    let _ = stdio.wait();
    for pid in &grand {
        assert!(
            !common::process_alive(*pid),
            "{pid} outlived the stdio director"
        );
    }
}
