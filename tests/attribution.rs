//! Server requests (sampling, elicitation) from a server shared by several sessions reach the
//! session whose call they belong to, never another, and are not refused: over Streamable
//! HTTP by the answer stream they arrive on, over stdio through lanes.

mod common;

use common::{Director, McpHttp};
use serde_json::{Value, json};

/// Two sessions call the same sampling tool at once; each is asked itself, and each call
/// completes with its own client's answer.
async fn both_sampled(d: &Director, tool: &str, arguments: Value) {
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut c = McpHttp::new(&d.url);
        c.initialize(json!({"sampling": {}})).await;
        clients.push(c);
    }
    let calls = clients.iter().enumerate().map(|(i, c)| {
        let call = json!({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}});
        c.call_answering(call, move |request| {
            assert_eq!(request["method"], "sampling/createMessage");
            // Slow enough that both calls are in flight together.
            std::thread::sleep(std::time::Duration::from_millis(300));
            json!({"role": "assistant", "model": "m",
                "content": {"type": "text", "text": format!("answer-of-client-{i}")}})
        })
    });
    let answers = futures::future::join_all(calls).await;
    for (i, answer) in answers.iter().enumerate() {
        let text = common::result_text(answer);
        assert!(
            text.contains(&format!("answer-of-client-{i}")),
            "{i}: {answer:?}"
        );
        assert!(
            !text.contains(&format!("answer-of-client-{}", 1 - i)),
            "{i} got the other's: {answer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_sampling_over_streamable_http_reaches_each_caller() {
    let (_everything, url) = common::everything_http();
    let d = Director::start(&format!(
        "[servers.web]\ntransport = \"streamable-http\"\nurl = \"{url}\"\n"
    ));
    d.wait_running(&["web"]).await;
    both_sampled(
        &d,
        "web/trigger-sampling-request",
        json!({"prompt": "p", "maxTokens": 5}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_sampling_over_stdio_reaches_each_caller() {
    let d = Director::start(&format!(
        "[servers.a]\ncommand = \"{}\"\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    ));
    d.wait_running(&["a"]).await;
    both_sampled(&d, "a/sample", json!({"prompt": "p"})).await;
    assert!(
        d.log().contains("lane opened"),
        "the second caller got a lane"
    );
}

/// A client that cannot be asked calls a sampling tool while a client that can is being served
/// by the same stdio server: the upstream's question is about the first client's call and must
/// never reach the second (found with leftover 2026 tasks holding the shared connection). The
/// caller gets a clear error instead, and the other client hears nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_request_is_never_sent_to_a_bystander_that_could_answer_it() {
    let d = Director::start(&format!(
        "[servers.a]\ncommand = \"{}\"\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    ));
    d.wait_running(&["a"]).await;
    let mut bystander = McpHttp::new(&d.url);
    bystander.initialize(json!({"sampling": {}})).await;
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = asked.clone();
    let slow = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "a/slow", "arguments": {"ms": 2000}}});
    let bystanding = tokio::spawn(async move {
        bystander
            .call_answering(slow, move |_| {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                json!({"role": "assistant", "model": "m",
                    "content": {"type": "text", "text": "leaked"}})
            })
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let mut caller = McpHttp::new(&d.url);
    caller.initialize(json!({})).await;
    let answer = caller
        .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "a/sample", "arguments": {"prompt": "secret of the caller"}}}))
        .await;
    let text = answer.last().unwrap().to_string();
    assert!(!text.contains("leaked"), "{text}");
    assert!(
        text.contains("error") || text.contains("isError"),
        "the caller is told: {text}"
    );
    let bystander = bystanding.await.unwrap();
    assert!(
        !asked.load(std::sync::atomic::Ordering::SeqCst),
        "the bystander was asked: {bystander:?}"
    );
    assert_eq!(common::result_text(&bystander), "slept 2000 ms");
}
