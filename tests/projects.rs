//! Projects (where servers run) and live reconfiguration with open sessions.

mod common;

use common::{Director, McpHttp};
use serde_json::{Value, json};

const EXE: &str = env!("CARGO_BIN_EXE_mcp-fixture-server");

async fn session(d: &Director, query: &str, capabilities: Value) -> McpHttp {
    let mut c = McpHttp::new(&d.url);
    c.url = format!("{}/mcp{query}", d.url);
    c.initialize(capabilities).await;
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn one_server_runs_in_each_projects_context() {
    let web_dir = tempfile::tempdir().unwrap();
    let api_dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[servers.a]\ncommand = \"{EXE}\"\n[servers.b]\ncommand = \"{EXE}\"\n\
         [projects.web]\nservers = [\"a\"]\nenv = {{ ROOT = \"/code/web\" }}\ncwd = \"{}\"\n\
         roots = [{{ uri = \"file:///code/web\", name = \"web\" }}]\n\
         [projects.api]\nenv = {{ ROOT = \"/code/api\" }}\ncwd = \"{}\"\n",
        web_dir.path().display(),
        api_dir.path().display()
    );
    let d = Director::start(&config);
    d.wait_running(&["a"]).await;
    let env = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "a/env", "arguments": {"name": "ROOT"}}});

    let web = session(&d, "?project=web", json!({})).await;
    let api = session(&d, "?project=api", json!({})).await;
    let plain = session(&d, "", json!({})).await;
    // Each project has its own instance of `a`; wait until both are up.
    for c in [&web, &api] {
        common::wait_for(|| async {
            let r = c.post(env.clone()).await;
            r.last().unwrap().get("result").map(|_| ())
        })
        .await;
    }
    let parts = |s: String| s.split('|').map(str::to_string).collect::<Vec<_>>();
    let (w, a, p) = (
        parts(common::result_text(&web.post(env.clone()).await)),
        parts(common::result_text(&api.post(env.clone()).await)),
        parts(common::result_text(&plain.post(env.clone()).await)),
    );
    assert_eq!(w[0], "/code/web");
    assert_eq!(
        std::path::Path::new(&w[1]).canonicalize().unwrap(),
        web_dir.path().canonicalize().unwrap()
    );
    assert_eq!(a[0], "/code/api");
    assert_eq!(
        std::path::Path::new(&a[1]).canonicalize().unwrap(),
        api_dir.path().canonicalize().unwrap()
    );
    assert_eq!(p[0], "", "no project, no ROOT");
    assert!(
        w[2] != a[2] && a[2] != p[2] && w[2] != p[2],
        "three processes: {w:?} {a:?} {p:?}"
    );

    // The project's servers bound the view.
    let names = web.tool_names().await;
    assert!(names.iter().all(|n| n.starts_with("a/")), "{names:?}");
    let b = web.post(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "b/echo", "arguments": {"text": "x"}}})).await;
    assert_eq!(b.last().unwrap()["error"]["code"], -32602);

    // A client that offers no roots gets the project's.
    let roots = common::result_text(&web.post(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "a/roots", "arguments": {}}})).await);
    assert_eq!(roots, r#"roots: [{"name":"web","uri":"file:///code/web"}]"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_change_keeps_sessions_and_calls_in_flight() {
    let d = Director::start(&format!(
        "[servers.a]\ncommand = \"{EXE}\"\n[servers.b]\ncommand = \"{EXE}\"\n"
    ));
    let b_pid = d.wait_running(&["a", "b"]).await[1];
    let client = session(&d, "", json!({})).await;
    let mut stream = client.open_stream(None).await;
    let slow = client.post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "a/slow", "arguments": {"ms": 1500}}}));
    let change = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let admin = d.client(None);
        let c: mcp_director_client::types::Server = serde_json::from_value(
            json!({"name": "c", "command": EXE, "env": {"FIXTURE_NAME": "c"}}),
        )
        .unwrap();
        admin.add_server(&c).await.unwrap();
        admin.remove_server("b").await.unwrap();
    };
    let (slow, ()) = tokio::join!(slow, change);
    assert_eq!(
        common::result_text(&slow),
        "slept 1500 ms",
        "the call in flight completed"
    );

    // The session hears of the change and can use the new server; b's process is gone.
    let note = common::next_notification(&mut stream, "notifications/tools/list_changed").await;
    assert_eq!(note["method"], "notifications/tools/list_changed");
    common::wait_for(|| async {
        let r = client
            .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "c/echo", "arguments": {"text": "new"}}}))
            .await;
        r.last().unwrap().get("result").map(|_| ())
    })
    .await;
    let names = client.tool_names().await;
    assert!(
        names.iter().any(|n| n == "c/echo") && !names.iter().any(|n| n.starts_with("b/")),
        "{names:?}"
    );
    common::wait_for(|| async { (!common::process_alive(b_pid)).then_some(()) }).await;
    // The same session still works.
    let again = client
        .post(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "a/echo", "arguments": {"text": "still here"}}}))
        .await;
    assert_eq!(common::result_text(&again), "fixture: still here");
}
