//! The web console (`/ui/`) in Debian's chromium (playwright-core), every page checked with
//! axe-core: sign-in (a wrong password refused), the live overview, a server added and seen
//! ready, its tools in the catalog, the configuration reloaded, a forged CSRF token refused,
//! sign-out; and, without a browser, who may use it at all. Screenshots are kept in
//! `target/tmp/console/`.

mod common;

use common::Director;
use serde_json::Value;
use std::process::Command;

const USER: &str = "admin";
const PASSWORD: &str = "console-password-42";

fn config() -> String {
    format!(
        "[settings.auth]\nenabled = true\nusername = \"{USER}\"\npassword_hash = \"{}\"\n\
         [servers.a]\ncommand = \"{}\"\nenv = {{ FIXTURE_NAME = \"a\" }}\n",
        mcp_director::secrets::hash_password(PASSWORD),
        env!("CARGO_BIN_EXE_mcp-fixture-server")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_signs_in_adds_a_server_and_watches_it_become_ready() {
    let d = Director::start(&config());
    d.wait_running_as(Some((USER, PASSWORD)), &["a"]).await;
    // A call for analytics to show.
    let mut client = common::McpHttp::new(&d.url);
    client.initialize(serde_json::json!({})).await;
    let called = client
        .post(
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "a/echo", "arguments": {"text": "for analytics"}}}),
        )
        .await;
    assert_eq!(common::result_text(&called), "a: for analytics");
    // Analytics are written in 10 s slots: the browser comes once the call is there.
    let admin = d.client(Some((USER, PASSWORD)));
    common::wait_for(|| async {
        let report = admin
            .get_analytics(None, None, None, None, None)
            .await
            .ok()?
            .into_inner();
        report.rows.iter().any(|r| r.name == "echo").then_some(())
    })
    .await;
    let shots = format!("{}/console", env!("CARGO_TARGET_TMPDIR"));
    let (base, fixture) = (d.url.clone(), env!("CARGO_BIN_EXE_mcp-fixture-server"));
    let out = tokio::task::spawn_blocking(move || {
        Command::new(common::node())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/js/console_browser.cjs"
            ))
            .args([&base, USER, PASSWORD, fixture, &shots])
            .env("NODE_PATH", common::peers().join("npm/node_modules"))
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&out.stderr)));
    eprintln!("console in chromium: {report}");
    assert!(report["failure"].is_null(), "{}", report["failure"]);
    assert_eq!(report["first_url"], "/ui/login");
    assert_eq!(report["wrong_password_status"], 401);
    assert_eq!(
        report["wrong_password_message"],
        "Wrong user name or password."
    );
    assert_eq!(report["signed_in_as"], USER);
    assert_eq!(
        report["cookie"],
        serde_json::json!({"httpOnly": true, "sameSite": "Strict", "path": "/ui"})
    );
    assert!(
        report["added_notice"]
            .as_str()
            .unwrap()
            .contains("Added added")
    );
    assert_eq!(report["overview_live"], "/ui/live/overview");
    // The call made before the browser came counts for server a's last hour.
    assert_eq!(report["overview_calls_a"], "1");
    assert_eq!(report["restart_notice"], "Restarting added.");
    // Two processes of it wrote their start to stderr: the first, and the restarted one.
    let stderr = report["stderr"].as_str().unwrap();
    assert_eq!(
        stderr.matches("fixture server fixture started").count(),
        2,
        "{stderr}"
    );
    assert_eq!(report["found_tools"], serde_json::json!(["added/echo"]));
    assert_eq!(report["config_has_added"], true);
    assert_eq!(report["forged_csrf_status"], 403);
    assert!(
        report["still_there"]
            .as_array()
            .unwrap()
            .contains(&"added".into()),
        "{report}"
    );
    assert_eq!(report["phone_overflow"], serde_json::json!([]));
    assert_eq!(report["first_tab"], "Skip to content");
    assert_eq!(report["after_sign_out"], "/ui/login");
    assert_eq!(report["console_errors"], serde_json::json!([]));
    for (page, violations) in report["axe"].as_object().unwrap() {
        assert_eq!(violations, &serde_json::json!([]), "axe on {page}");
    }
    assert_eq!(report["axe"].as_object().unwrap().len(), 11);
    assert_eq!(report["edit_name_readonly"], true);
    assert_eq!(report["edit_notice"], "Saved added.");
    assert_eq!(report["config_has_edit"], true);
    assert_eq!(report["projects"], serde_json::json!(["proj"]));
    // The playground: a form from the schema, the call's progress and result.
    assert_eq!(
        report["playground_fields"],
        serde_json::json!(["a.steps:number"])
    );
    assert_eq!(report["playground_result"], "3 steps");
    assert_eq!(
        report["playground_progress"],
        serde_json::json!(["1 / 3", "2 / 3", "3 / 3"])
    );
    // A profile's playground offers only what the profile sees.
    assert!(
        report["playground_hidden"]
            .as_str()
            .unwrap()
            .contains("sees no tool"),
        "{report}"
    );
    let narrow_tools = report["playground_narrow_tools"].as_array().unwrap();
    assert!(!narrow_tools.contains(&"a/echo".into()) && !narrow_tools.is_empty());
    // The task ran, was cancelled from the tasks page, and the store says so.
    let task_id = report["task_id"].as_str().unwrap();
    assert_eq!(report["task_status_after"], "cancelled");
    assert!(
        report["cancel_notice"]
            .as_str()
            .unwrap()
            .starts_with("Cancelled task")
    );
    let tasks = admin.list_tasks(None, None).await.unwrap().into_inner();
    let task = tasks
        .iter()
        .find(|t| t.task_id == task_id)
        .expect("the task");
    assert_eq!(task.status.to_string(), "cancelled");
    assert_eq!(task.owner, format!("console:{USER}"));
    assert!(
        report["analytics_tools"]
            .as_array()
            .unwrap()
            .contains(&"added/progress".into()),
        "{report}"
    );
    assert_eq!(
        report["analytics_lines"],
        serde_json::json!(["calls", "errors", "p50", "p95"])
    );
    assert!(
        report["analytics_tools"]
            .as_array()
            .unwrap()
            .contains(&"a/echo".into()),
        "{report}"
    );
    assert!(report["analytics_chart"].as_u64().unwrap() >= 1);
    assert!(
        report["profiles"]
            .as_array()
            .unwrap()
            .contains(&"narrow".into())
    );
    // The token shown once works, and its profile sees fewer tools.
    let token = report["profile_token"].as_str().unwrap().trim();
    let tools = |token: Option<&str>| {
        let mut c = common::McpHttp::new(&d.url);
        if let Some(t) = token {
            c.url = format!("{}/mcp?token={t}", d.url);
        }
        async move {
            c.initialize(serde_json::json!({})).await;
            let listed = c
                .post(serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
                .await;
            listed[0]["result"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let narrow = tools(Some(token)).await;
    let everyone = tools(None).await;
    assert!(!narrow.contains(&"a/echo".to_string()), "{narrow:?}");
    assert!(everyone.contains(&"a/echo".to_string()), "{everyone:?}");
    assert!(
        narrow.len() < everyone.len() && !narrow.is_empty(),
        "{narrow:?}"
    );
    for shot in report["screenshots"].as_array().unwrap() {
        let png = std::fs::read(shot.as_str().unwrap()).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000);
    }
    // The server added in the browser runs (the same handlers as /api).
    d.wait_running_as(Some((USER, PASSWORD)), &["added"]).await;
}

/// Without `[settings.auth]` the console answers this machine only (as `/api` does), with a
/// session but no sign-in; a remote client (here: named by a trusted proxy) is refused.
#[tokio::test(flavor = "multi_thread")]
async fn without_admin_auth_only_this_machine_uses_the_console() {
    let d = Director::start("[settings]\ntrusted_proxies = [\"127.0.0.1\"]\n");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let local = http.get(format!("{}/ui/", d.url)).send().await.unwrap();
    assert_eq!(local.status(), 200);
    let cookie = local
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let csp = local.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let remote = http
        .get(format!("{}/ui/", d.url))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(remote.status(), 403);
    // A change without the session's token: refused.
    let session = cookie.split(';').next().unwrap().to_string();
    let forged = http
        .post(format!("{}/ui/config/reload", d.url))
        .header("cookie", &session)
        .form(&[("csrf", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // The assets are small: the budget for the console is 300 KiB in all.
    assert!(mcp_director::console::assets_size() < 64 * 1024);
}

/// With `[settings.auth] oidc_emails`, an operator signs in through the OpenID Connect
/// provider (`[settings.oauth.oidc]`, its one redirect URI shared with client sign-in); a
/// person the rule does not name is refused and gets no session.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_signs_in_through_the_identity_provider() {
    let idp_port = common::free_port();
    let d = Director::start(&format!(
        "[settings.auth]\nenabled = true\nusername = \"{USER}\"\npassword_hash = \"{}\"\n\
         oidc_emails = [\"ok-*@example.com\"]\n\
         [settings.oauth.oidc]\nissuer = \"http://127.0.0.1:{idp_port}\"\nclient_id = \"mcp-director\"\n\
         client_secret = \"director-secret-at-the-idp\"\n",
        mcp_director::secrets::hash_password(PASSWORD),
    ));
    let _idp = common::identity_provider(idp_port, &d.url);
    let sign_in = |login: &'static str| {
        let base = d.url.clone();
        let shot = format!(
            "{}/console/sign-in-oidc-{login}.png",
            env!("CARGO_TARGET_TMPDIR")
        );
        tokio::task::spawn_blocking(move || {
            let out = Command::new(common::node())
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/js/console_oidc.cjs"
                ))
                .args([&base, login, &shot])
                .env("NODE_PATH", common::peers().join("npm/node_modules"))
                .output()
                .expect("run node");
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            serde_json::from_str::<Value>(text.trim())
                .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&out.stderr)))
        })
    };
    let alice = sign_in("ok-alice").await.unwrap();
    assert!(alice["failure"].is_null(), "{alice}");
    assert_eq!(alice["idp"], format!("http://127.0.0.1:{idp_port}"));
    assert_eq!(alice["callback_status"], 200, "{alice}");
    assert_eq!(alice["signed_in_as"], "ok-alice@example.com");
    assert_eq!(alice["path"], "/ui/");
    let mallory = sign_in("mallory").await.unwrap();
    assert!(mallory["failure"].is_null(), "{mallory}");
    assert_eq!(mallory["callback_status"], 403, "{mallory}");
    assert_eq!(mallory["refusal"], "Your account may not use this console.");
    // Starting sign-ins is throttled per address (each asks the provider and keeps a row).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = http
            .get(format!("{}/ui/login/oidc", d.url))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses[0], 303, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // A state the director never issued: refused, nothing signed in.
    let forged = reqwest::get(format!(
        "{}/oauth/callback?state=console.forged&code=x",
        d.url
    ))
    .await
    .unwrap();
    assert_eq!(forged.status().as_u16(), 400);
}
