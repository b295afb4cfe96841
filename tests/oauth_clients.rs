//! OAuth with real clients: the official Python SDK's OAuth client, Debian's chromium driven
//! by playwright-core on the consent page, the npm `oidc-provider` as an external identity
//! provider, and schemathesis against the OAuth part of /api-docs.

mod common;

use common::Director;
use serde_json::Value;
use std::process::Command;

use common::{ADMIN_PASSWORD as PASSWORD, ADMIN_USER as USER, oauth_config as config};

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

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_through_an_openid_connect_provider_ends_in_a_director_token() {
    let idp_port = common::free_port();
    let exe = env!("CARGO_BIN_EXE_mcp-fixture-server");
    let d = Director::start(&format!(
        "[servers.fx]\ncommand = \"{exe}\"\n[servers.other]\ncommand = \"{exe}\"\n\
         [profiles.fx-only]\nservers = [\"fx\"]\n\
         [settings.oauth]\nenabled = true\n\
         [settings.oauth.oidc]\nissuer = \"http://127.0.0.1:{idp_port}\"\nclient_id = \"mcp-director\"\n\
         client_secret = \"${{IDP_SECRET:-director-secret-at-the-idp}}\"\n\
         allowed_groups = [\"mcp-users\"]\n\
         [[settings.oauth.profiles]]\nemail = \"*@example.com\"\nprofile = \"fx-only\"\n"
    ));
    let _idp = common::identity_provider(idp_port, &d.url);
    d.wait_running(&["fx", "other"]).await;
    let redirect = format!("http://127.0.0.1:{}/callback", common::free_port());

    // A member of the allowed group: provider sign-in, director consent, code.
    let url = authorize_url(&d, &redirect).await;
    let shot = format!("{}/consent-oidc.png", env!("CARGO_TARGET_TMPDIR"));
    let report: Value = serde_json::from_str(
        run(Command::new(common::node())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/js/consent_browser.cjs"
            ))
            .args([url.as_str(), "approve", "", "", &shot, "ok-alice"])
            .env("NODE_PATH", common::peers().join("npm/node_modules")))
        .trim(),
    )
    .expect("JSON report");
    assert_eq!(report["idp"], format!("http://127.0.0.1:{idp_port}"));
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(report["signed_in_as"], "ok-alice@example.com");
    assert_eq!(report["redirected_to"], redirect);
    let code = report["code"].as_str().expect("the code").to_string();

    // The client exchanges it (RFC 7636 appendix B verifier) and uses the director's token.
    let http = reqwest::Client::new();
    let client_id = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "client_id")
        .unwrap()
        .1
        .to_string();
    let tokens: Value = http
        .post(format!("{}/token", d.url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("client_id", &client_id),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().expect("a director token");
    assert!(access.starts_with("mcpd_at_"));
    let mut mcp = common::McpHttp::new(&d.url);
    mcp.bearer = Some(access.to_string());
    mcp.initialize(serde_json::json!({})).await;
    let names = mcp.tool_names().await;
    assert!(names.iter().any(|n| n == "fx/echo"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("other/")),
        "the email rule gave profile fx-only: {names:?}"
    );

    // Outside the allowed group: refused at the callback, no consent page.
    let url = authorize_url(&d, &redirect).await;
    let refused: Value = serde_json::from_str(
        run(Command::new(common::node())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/js/consent_browser.cjs"
            ))
            .args([url.as_str(), "none", "", "", &shot, "mallory"])
            .env("NODE_PATH", common::peers().join("npm/node_modules")))
        .trim(),
    )
    .expect("JSON report");
    assert_eq!(refused["status"], 403, "{refused}");
    assert!(refused["body"].as_str().unwrap().contains("not allowed"));
    assert!(!d.log().contains(access));
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_5xx_and_no_spec_mismatch_on_the_oauth_endpoints() {
    let d = Director::start(&config(""));
    // schemathesis keeps a cache in its working directory: not in the repository.
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(common::peers().join("venv-schemathesis/bin/schemathesis"))
        .current_dir(work.path())
        .args(["run", &format!("{}/api-docs", d.url), "--url", &d.url])
        .args(["--include-tag", "oauth"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "40", "--generation-deterministic"])
        .args(["--request-timeout", "10", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It really exercised the ten OAuth operations (a filter matching none also "passes").
    assert!(report.contains("Tested: 10"), "{report}");
    assert!(!d.log().contains("panicked"));
}
