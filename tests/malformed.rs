//! Hostile and malformed requests, sent as raw bytes: each gets a 4xx or a JSON-RPC error —
//! never a 5xx, a hang or a dropped connection — and the director stays healthy.

mod common;

use common::{Director, McpHttp};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One raw HTTP/1.1 exchange (`Connection: close`): the status and the body.
async fn exchange(authority: &str, head: &str, body: &[u8]) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(authority).await.unwrap();
    let mut request = format!(
        "{head}\r\nhost: {authority}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    tcp.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut answer),
    )
    .await
    .unwrap_or_else(|_| panic!("no answer to {head}"))
    .unwrap_or_else(|e| panic!("connection dropped on {head}: {e}"));
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer to {head}: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_hostile_requests_get_clear_errors() {
    let d = Director::start(&format!(
        "[settings.limits]\nmax_request_bytes = 65536\n[servers.a]\ncommand = \"{}\"\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    ));
    d.wait_running(&["a"]).await;
    let mut c = McpHttp::new(&d.url);
    c.initialize(json!({})).await;
    let session = c.session.clone().unwrap();
    let authority = d.url.strip_prefix("http://").unwrap().to_string();

    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"a/echo","arguments":{{"text":{}1{}}}}}}}"#,
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"not json".to_vec(),
        b"\xff\xfe\xfd".to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":\"\xff\"}".to_vec(),
        b"[]".to_vec(),
        br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_vec(),
        b"3".to_vec(),
        b"null".to_vec(),
        br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#.to_vec(),
        br#"{"id":1,"method":"ping"}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":7}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":3}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":42}}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope/x"}}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"nope://x"}}"#
            .to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"no/such/method"}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"!!"}}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"nope"}}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"method":"ping"} trailing"#.to_vec(),
        deep.into_bytes(),
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"s":"{}"}}}}"#,
            "x".repeat(200_000)
        )
        .into_bytes(),
    ];
    let with_session = format!("mcp-session-id: {session}\r\nmcp-protocol-version: 2025-11-25");
    let heads: Vec<String> = vec![
        format!("POST /mcp HTTP/1.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n{with_session}"),
        format!("POST /mcp HTTP/1.1\r\ncontent-type: application/json\r\naccept: application/json\r\n{with_session}"),
        "POST /mcp HTTP/1.1\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream".into(),
        "POST /mcp HTTP/1.1\r\ncontent-type: application/json\r\nmcp-session-id: unknown-session".into(),
        format!("POST /mcp HTTP/1.1\r\naccept: image/png\r\n{with_session}"),
        format!("POST /mcp HTTP/1.1\r\naccept: application/json\r\nmcp-session-id: {session}\r\nmcp-protocol-version: 1999-01-01"),
        format!("POST /mcp HTTP/1.1\r\naccept: application/json\r\norigin: http://evil.example.com\r\n{with_session}"),
        "POST /mcp?sessionId=unknown HTTP/1.1\r\ncontent-type: application/json".into(),
    ];
    let mut sent = 0;
    let mut check = |what: String, (status, body): (u16, String)| {
        sent += 1;
        let rpc_error = status == 200 && body.contains("\"error\"");
        let accepted_notification = status == 202;
        assert!(
            (400..500).contains(&status) || rpc_error || accepted_notification,
            "{what}: {status} {body}"
        );
    };
    for head in &heads {
        for body in &bodies {
            let answer = exchange(&authority, head, body).await;
            check(
                format!(
                    "{head} / {:?}",
                    String::from_utf8_lossy(&body[..body.len().min(60)])
                ),
                answer,
            );
        }
    }
    // Wrong methods, paths and headers.
    for head in [
        "PUT /mcp HTTP/1.1",
        "PATCH /mcp HTTP/1.1",
        "OPTIONS /mcp HTTP/1.1",
        "POST /sse HTTP/1.1",
        "DELETE /sse HTTP/1.1",
        "GET /mcp HTTP/1.1",
        "GET /mcp HTTP/1.1\r\naccept: text/event-stream",
        "GET /mcp HTTP/1.1\r\naccept: text/event-stream\r\nmcp-session-id: unknown",
        "DELETE /mcp HTTP/1.1",
        "DELETE /mcp HTTP/1.1\r\nmcp-session-id: unknown",
        "GET /api/servers/%ff%fe HTTP/1.1",
        "GET /api/nope HTTP/1.1",
        "POST /api/servers HTTP/1.1\r\ncontent-type: application/json",
        "POST /api/profiles HTTP/1.1\r\ncontent-type: application/json",
        "POST /token HTTP/1.1\r\ncontent-type: application/x-www-form-urlencoded",
    ] {
        let answer = exchange(&authority, head, b"{\"garbage\":").await;
        check(head.to_string(), answer);
    }
    assert!(sent >= 200, "{sent} requests");
    // Still healthy, and the session still works.
    let health = reqwest::get(format!("{}/health", d.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    let answer = c
        .post(json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "a/echo", "arguments": {"text": "alive"}}}))
        .await;
    assert!(common::result_text(&answer).contains("alive"));
}
