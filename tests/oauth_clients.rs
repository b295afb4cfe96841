//! OAuth with real clients: the official Python SDK's OAuth client, Debian's chromium driven
//! by playwright-core on the consent page, the npm `oidc-provider` as an external identity
//! provider, and schemathesis against the OAuth part of /api-docs.

mod common;

use common::Director;
use serde_json::Value;
use std::process::Command;

const USER: &str = "admin";
const PASSWORD: &str = "correct horse battery";

fn config(extra: &str) -> String {
    let exe = env!("CARGO_BIN_EXE_mcp-fixture-server");
    format!(
        "[servers.fx]\ncommand = \"{exe}\"\n\
         [settings.auth]\nenabled = true\nusername = \"{USER}\"\npassword_hash = \"{}\"\n\
         [settings.oauth]\nenabled = true\n{extra}\n",
        mcp_director::secrets::hash_password(PASSWORD)
    )
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("start the peer");
    assert!(
        out.status.success(),
        "{:?} failed:\n{}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_oauth_client_discovers_registers_authorizes_and_lists() {
    let d = Director::start(&config(""));
    d.wait_running_as(Some((USER, PASSWORD)), &["fx"]).await;
    let out = run(Command::new(common::peers().join("venv/bin/python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/sdk_oauth.py"
        ))
        .arg(format!("{}/mcp", d.url))
        .args([USER, PASSWORD]));
    let report: Value = serde_json::from_str(out.trim()).expect("JSON report");
    insta::assert_json_snapshot!(report, {".iss" => "[issuer]", ".resource" => "[resource]"});
    assert_eq!(report["iss"], d.url);
    assert_eq!(report["resource"], format!("{}/mcp", d.url));
    let log = d.log();
    assert!(
        !log.contains("mcpd_at_") && !log.contains("mcpd_rt_"),
        "a token in the log"
    );
}

/// Registers a client for `redirect` and returns the authorize URL of a PKCE request.
async fn authorize_url(d: &Director, redirect: &str) -> String {
    let http = reqwest::Client::new();
    let client: Value = http
        .post(format!("{}/register", d.url))
        .json(
            &serde_json::json!({"redirect_uris": [redirect], "client_name": "Browser Test Client"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut url = url::Url::parse(&format!("{}/authorize", d.url)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client["client_id"].as_str().unwrap())
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "browser-state")
        .append_pair("scope", "mcp")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

/// The consent page in Debian's chromium: the decision's redirect, and a screenshot kept in
/// `target/tmp/` as a test artifact.
fn browser(authorize: &str, decision: &str) -> Value {
    let shot = format!("{}/consent-{decision}.png", env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::remove_file(&shot);
    let out = run(Command::new(common::node())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/js/consent_browser.cjs"
        ))
        .args([authorize, decision, USER, PASSWORD, &shot])
        .env("NODE_PATH", common::peers().join("npm/node_modules")));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "a real screenshot"
    );
    serde_json::from_str(out.trim()).expect("JSON report")
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_page_in_chromium_approve_and_deny() {
    let d = Director::start(&config(""));
    let redirect = format!("http://127.0.0.1:{}/callback", common::free_port());

    let approved = browser(&authorize_url(&d, &redirect).await, "approve");
    assert_eq!(approved["status"], 200);
    assert_eq!(approved["client"], "Browser Test Client");
    assert_eq!(approved["scopes"], serde_json::json!(["mcp"]));
    assert_eq!(
        approved["redirect_host"],
        redirect
            .trim_start_matches("http://")
            .trim_end_matches("/callback")
    );
    assert_eq!(approved["redirected_to"], redirect);
    assert_eq!(approved["params"]["code"], "present");
    assert_eq!(approved["params"]["state"], "browser-state");
    assert_eq!(approved["params"]["iss"], d.url.as_str());
    assert!(
        approved["csp"]
            .as_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );

    let denied = browser(&authorize_url(&d, &redirect).await, "deny");
    assert_eq!(denied["redirected_to"], redirect);
    assert_eq!(denied["params"]["error"], "access_denied");
    assert_eq!(denied["params"]["state"], "browser-state");
    assert!(denied["params"].get("code").is_none());
}
