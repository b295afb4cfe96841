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
