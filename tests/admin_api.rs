//! The admin API driven through the generated client against a running director.

mod common;

use common::Director;
use mcp_director_client::types;
use serde_json::json;

fn server(v: serde_json::Value) -> types::Server {
    serde_json::from_value(v).unwrap()
}

fn status_of<T: std::fmt::Debug>(r: Result<T, mcp_director_client::Error<types::Error>>) -> u16 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.status().expect("an HTTP status").as_u16(),
    }
}

fn names<T: serde::Serialize>(items: &[T]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            serde_json::to_value(i).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn servers_profiles_projects_crud_validation_and_persistence() {
    let d = Director::start("");
    let c = d.client(None);

    // Servers: add, list, validation, duplicate, remove.
    let fixture = env!("CARGO_BIN_EXE_mcp-fixture-server");
    let fs = server(json!({"name": "fs", "command": fixture}));
    let added = c.add_server(&fs).await.unwrap();
    assert_eq!(added.status().as_u16(), 201);
    let web = server(
        json!({"name": "web", "transport": "streamable-http", "url": "http://127.0.0.1:9/mcp"}),
    );
    c.add_server(&web).await.unwrap();
    assert_eq!(
        names(&c.list_servers().await.unwrap().into_inner()),
        ["fs", "web"]
    );
    assert_eq!(status_of(c.add_server(&fs).await), 409);
    let nameless = server(json!({"command": "x"}));
    assert_eq!(status_of(c.add_server(&nameless).await), 400);
    let no_command = server(json!({"name": "bad"}));
    assert_eq!(status_of(c.add_server(&no_command).await), 400);
    assert_eq!(status_of(c.remove_server("nope").await), 404);
    // The added server starts live: its status and tools come from the running upstream.
    let status = common::wait_for(|| async {
        let s = c.get_server_status("fs").await.unwrap().into_inner();
        (s.state == types::UpstreamState::Running).then_some(s)
    })
    .await;
    assert!(status.pid.is_some());
    assert_eq!(status.protocol_version.as_deref(), Some("2025-11-25"));
    assert_eq!(status.tools, Some(11));
    assert_eq!(status.server_info["name"], "fixture");
    let tools = c.list_tools().await.unwrap().into_inner();
    let echo = tools
        .iter()
        .find(|t| t.name == "fs/echo")
        .expect("fs/echo listed");
    assert_eq!(
        (echo.server.as_str(), echo.original_name.as_str()),
        ("fs", "echo")
    );
    assert_eq!(status_of(c.get_server_status("nope").await), 404);

    // Profiles: a token-protected profile returns its token once; only the hash is stored.
    let profile: types::Profile = serde_json::from_value(
        json!({"name": "restricted", "servers": ["fs"], "allow": ["fs/read_*"], "require_token": true}),
    )
    .unwrap();
    let created = c.create_profile(&profile).await.unwrap().into_inner();
    let token = created.token.expect("a token for require_token");
    assert!(token.len() >= 43);
    assert!(
        !d.config_text().contains(&token),
        "the token itself is never stored"
    );
    assert!(d.config_text().contains("token_sha256"));
    assert_eq!(status_of(c.create_profile(&profile).await), 409);
    let dangling: types::Profile =
        serde_json::from_value(json!({"name": "p2", "servers": ["nope"]})).unwrap();
    assert_eq!(status_of(c.create_profile(&dangling).await), 400);
    assert_eq!(
        names(&c.list_profiles().await.unwrap().into_inner()),
        ["restricted"]
    );

    // Projects.
    let project: types::Project = serde_json::from_value(
        json!({"name": "web", "servers": ["fs"], "env": {"ROOT": "/code/web"}, "roots": [{"uri": "file:///code/web"}]}),
    )
    .unwrap();
    c.create_project(&project).await.unwrap();
    assert_eq!(
        names(&c.list_projects().await.unwrap().into_inner()),
        ["web"]
    );
    assert_eq!(status_of(c.delete_project("nope").await), 404);

    // Remove, then restart: everything survives.
    c.remove_server("web").await.unwrap();
    let pid = status.pid.unwrap();
    assert!(common::process_alive(pid));
    let (dir, temp) = d.stop();
    let d = Director::start_in(&dir);
    // The killed director's stdio child sees its stdin close and exits.
    common::wait_for(|| async { (!common::process_alive(pid)).then_some(()) }).await;
    let c = d.client(None);
    assert_eq!(names(&c.list_servers().await.unwrap().into_inner()), ["fs"]);
    assert_eq!(
        names(&c.list_profiles().await.unwrap().into_inner()),
        ["restricted"]
    );
    assert_eq!(
        names(&c.list_projects().await.unwrap().into_inner()),
        ["web"]
    );
    c.delete_profile("restricted").await.unwrap();
    c.delete_project("web").await.unwrap();
    assert!(c.list_profiles().await.unwrap().into_inner().is_empty());
    drop(temp);
}

#[tokio::test]
async fn basic_auth_once_enabled_guards_every_call_and_survives_restart() {
    let d = Director::start("");
    let c = d.client(None);
    let request: types::EnableAuthRequest =
        serde_json::from_value(json!({"username": "admin", "password": "correct-horse"})).unwrap();
    let status = c.enable_auth(&request).await.unwrap().into_inner();
    assert!(status.enabled);
    let file = d.config_text();
    assert!(
        !file.contains("correct-horse"),
        "the password is never stored"
    );
    assert!(file.contains("$argon2id$"));

    // Without or with wrong credentials: 401 with a Basic challenge.
    let raw = reqwest::get(format!("{}/api/servers", d.url))
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 401);
    let challenge = raw.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic "), "{challenge}");
    assert_eq!(status_of(c.list_servers().await), 401);
    let wrong = d.client(Some(("admin", "wrong-horse")));
    assert_eq!(status_of(wrong.list_servers().await), 401);
    let wrong_user = d.client(Some(("root", "correct-horse")));
    assert_eq!(status_of(wrong_user.list_servers().await), 401);
    // A bad body is still a 401 first: nothing is revealed before authentication.
    let bad_body = reqwest::Client::new()
        .post(format!("{}/api/servers", d.url))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_body.status().as_u16(), 401);

    let ok = d.client(Some(("admin", "correct-horse")));
    ok.list_servers().await.unwrap();
    let cfg = ok.get_config().await.unwrap().into_inner();
    assert!(cfg.settings.unwrap().auth.unwrap().enabled);

    // Observability stays open.
    assert_eq!(
        reqwest::get(format!("{}/health", d.url))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    let (dir, temp) = d.stop();
    let d = Director::start_in(&dir);
    assert_eq!(status_of(d.client(None).list_servers().await), 401);
    d.client(Some(("admin", "correct-horse")))
        .list_servers()
        .await
        .unwrap();
    drop(temp);
}

#[tokio::test]
async fn config_replace_validates_and_reload_reads_the_file() {
    let d = Director::start("[servers.a]\ncommand = \"true\"\n");
    let c = d.client(None);
    let mut cfg = serde_json::to_value(c.get_config().await.unwrap().into_inner()).unwrap();

    // Invalid: a profile naming a missing server → 400 and nothing changes.
    cfg["profiles"] = json!({"p": {"servers": ["missing"]}});
    let bad: types::Config = serde_json::from_value(cfg.clone()).unwrap();
    assert_eq!(status_of(c.update_config(&bad).await), 400);
    assert!(c.list_profiles().await.unwrap().into_inner().is_empty());
    // Unknown keys are refused by the server's schema.
    let unknown = reqwest::Client::new()
        .post(format!("{}/api/config", d.url))
        .json(&json!({"settings": {"bindd": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 400);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("bindd")
    );

    // Valid replace.
    cfg["profiles"] = json!({"p": {"servers": ["a"]}});
    let good: types::Config = serde_json::from_value(cfg).unwrap();
    c.update_config(&good).await.unwrap();
    assert_eq!(names(&c.list_profiles().await.unwrap().into_inner()), ["p"]);

    // Edit the file by hand, then reload.
    let text = d.config_text();
    d.write_config(&format!("{text}\n[servers.b]\ncommand = \"true\"\n"));
    c.reload_config().await.unwrap();
    assert_eq!(
        names(&c.list_servers().await.unwrap().into_inner()),
        ["a", "b"]
    );

    // A broken file: reload fails with the file and line, the running config stays.
    if common::skip_unless_sqlite(
        "a configuration version in the store is checked before it is stored",
    ) {
        return;
    }
    d.write_config("[servers.c]\ncommand = 3\n");
    let err = c.reload_config().await.unwrap_err();
    let mcp_director_client::Error::ErrorResponse(r) = err else {
        panic!("expected an error response")
    };
    assert_eq!(r.status().as_u16(), 400);
    let description = r.into_inner().error_description.unwrap();
    assert!(description.contains("mcp-director.toml"), "{description}");
    assert!(description.contains("line 2"), "{description}");
    assert_eq!(
        names(&c.list_servers().await.unwrap().into_inner()),
        ["a", "b"]
    );
}

/// Wrong admin passwords are slowed down per address: the eleventh within a minute is 429
/// (and so is a right one from there, until the minute is over); right ones before that pass.
#[tokio::test(flavor = "multi_thread")]
async fn guessing_admin_passwords_is_throttled() {
    let d = common::Director::start(&format!(
        "[settings.auth]\nenabled = true\nusername = \"admin\"\npassword_hash = \"{}\"\n",
        mcp_director::secrets::hash_password("right")
    ));
    let http = reqwest::Client::new();
    let get = |password: &'static str| {
        http.get(format!("{}/api/servers", d.url))
            .basic_auth("admin", Some(password))
            .send()
    };
    for _ in 0..20 {
        assert_eq!(get("right").await.unwrap().status(), 200);
    }
    for _ in 0..10 {
        assert_eq!(get("wrong").await.unwrap().status(), 401);
    }
    let limited = get("wrong").await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(get("right").await.unwrap().status(), 429);
}

/// A restart through the admin API: a new process at once (no back-off), and what the
/// server's processes wrote to stderr is in its status.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_starts_a_new_process_and_stderr_is_kept() {
    let d = Director::start(&format!(
        "[servers.a]\ncommand = \"{}\"\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    ));
    let before = d.wait_running(&["a"]).await;
    let c = d.client(None);
    let answered = c.restart_server("a").await.unwrap();
    assert_eq!(answered.status().as_u16(), 202);
    let status = common::wait_for(|| async {
        let s = c.get_server_status("a").await.ok()?.into_inner();
        (s.state == types::UpstreamState::Running && s.pid.is_some() && s.pid != Some(before[0]))
            .then_some(s)
    })
    .await;
    assert!(!common::process_alive(before[0]), "the old process is gone");
    assert_eq!(status.last_error, None);
    let started = status
        .stderr
        .iter()
        .filter(|l| l.contains("fixture server fixture started"))
        .count();
    assert_eq!(started, 2, "{:?}", status.stderr);
    assert_eq!(status_of(c.restart_server("nope").await), 404);
}

/// A profile's token rotated: the new one (shown once) admits, the old one no longer does,
/// and only the new token's hash is kept. The catalog lists prompts and resources too.
#[tokio::test]
async fn a_rotated_profile_token_replaces_the_old_one() {
    let d = Director::start(&format!(
        "[servers.a]\ncommand = \"{}\"\n",
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    ));
    d.wait_running(&["a"]).await;
    let admin = d.client(None);
    let created = admin
        .create_profile(
            &serde_json::from_value(json!({"name": "p", "require_token": true})).unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    let old = created.token.expect("a token");
    let rotated = admin.rotate_profile_token("p").await.unwrap().into_inner();
    let new = rotated.token.expect("a new token");
    assert_ne!(old, new);
    assert_eq!(
        rotated
            .profile
            .token_sha256
            .as_deref()
            .map(|h| h.to_string()),
        Some(mcp_director::secrets::sha256_hex(&new))
    );
    let status = |token: String| {
        let url = format!("{}/mcp?profile=p", d.url);
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("accept", "application/json, text/event-stream")
                .json(
                    &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"}}}),
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(new).await, 200);
    assert_eq!(status(old).await, 401);
    assert_eq!(status_of(admin.rotate_profile_token("nobody").await), 404);

    // A server changed in place: one change, other fields kept; the path names it.
    let mut a = admin
        .list_servers()
        .await
        .unwrap()
        .into_inner()
        .into_iter()
        .find(|s| s.name.as_deref().map(|n| n.to_string()) == Some("a".into()))
        .unwrap();
    a.args = vec!["--changed".into()];
    let updated = admin.update_server("a", &a).await.unwrap().into_inner();
    assert_eq!(updated.args, vec!["--changed".to_string()]);
    assert!(d.config_text().contains("--changed"));
    let mut unnamed = a.clone();
    unnamed.name = None;
    assert_eq!(
        status_of(admin.update_server("nobody", &unnamed).await),
        404
    );
    assert_eq!(status_of(admin.update_server("b", &a).await), 400);
    d.wait_running(&["a"]).await;

    let prompts = admin.list_prompts().await.unwrap().into_inner();
    assert!(
        prompts
            .iter()
            .any(|p| p.server == "a" && p.name.starts_with("a/")),
        "{prompts:?}"
    );
    let resources = admin.list_resources().await.unwrap().into_inner();
    assert!(
        resources
            .iter()
            .any(|r| r.uri.as_deref() == Some("fixture://static")),
        "{resources:?}"
    );
}
