//! OAuth 2.1: discovery, registration, consent, code and refresh grants, and the resource
//! server on /mcp, against a real director. Each refused case is its own test; the real
//! clients (the Python SDK, a browser, an OpenID Connect provider, schemathesis) are in
//! tests/oauth_clients.rs.

mod common;

use base64::Engine;
use common::Director;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::HashMap;

use common::{ADMIN_PASSWORD as PASSWORD, ADMIN_USER as USER, oauth_config as config};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// Rewrites the director's configuration file (`from` → `to`) and reloads it.
/// Sets `settings.<table>.<key>` in the configuration behind the director's back (its file,
/// or the store's version in the PostgreSQL pass), then reloads it.
async fn edit_config(d: &Director, table: &str, key: &str, value: &str) {
    let mut doc: toml::Table = d.config_text().parse().expect("the configuration is TOML");
    doc.get_mut("settings")
        .and_then(|s| s.get_mut(table))
        .and_then(|t| t.as_table_mut())
        .unwrap_or_else(|| panic!("no [settings.{table}]"))
        .insert(key.into(), value.into());
    d.write_config(&toml::to_string(&doc).unwrap());
    let r = http()
        .post(format!("{}/api/config/reload", d.url))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

const VERIFIER: &str = "verifier-0123456789-0123456789-0123456789-abcdef";

/// The query of a redirect's Location.
fn location_query(r: &reqwest::Response) -> HashMap<String, String> {
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header");
    url::Url::parse(location)
        .expect("absolute Location")
        .query_pairs()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A hidden form field's value on the consent page.
fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect("field on the page") + marker.len();
    page[start..][..page[start..].find('"').expect("closing quote")].to_string()
}

struct Flow {
    base: String,
    client_id: String,
}

impl Flow {
    async fn register(d: &Director, grant_types: Value) -> Self {
        let r = http()
            .post(format!("{}/register", d.url))
            .json(&json!({"redirect_uris": [REDIRECT], "client_name": "Test <Client>", "grant_types": grant_types}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        Self {
            base: d.url.clone(),
            client_id: body["client_id"].as_str().unwrap().to_string(),
        }
    }

    fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(&format!("{}/authorize", self.base)).unwrap();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", REDIRECT)
                .append_pair("state", "st-1");
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    }

    fn pkce() -> [(&'static str, String); 2] {
        [
            ("code_challenge", s256(VERIFIER)),
            ("code_challenge_method", "S256".to_string()),
        ]
    }

    /// GET /authorize with PKCE (and `extra`): the browser cookie and the consent page.
    async fn consent_page(&self, extra: &[(&str, &str)]) -> (String, String) {
        let [(a, b), (c, e)] = Self::pkce();
        let mut params: Vec<(&str, &str)> = vec![(a, &b), (c, &e)];
        params.extend_from_slice(extra);
        let page = http()
            .get(self.authorize_url(&params))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "consent page");
        let cookie = page
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("browser cookie")
            .to_string();
        (cookie, page.text().await.unwrap())
    }

    /// GET /authorize, then approve with the admin credentials: the redirect's query.
    async fn approve(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let (cookie, html) = self.consent_page(extra).await;
        let r = http()
            .post(format!("{}/authorize", self.base))
            .header("cookie", cookie)
            .form(&[
                ("request_id", field(&html, "request_id")),
                ("csrf_token", field(&html, "csrf_token")),
                ("decision", "approve".into()),
                ("username", USER.into()),
                ("password", PASSWORD.into()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        location_query(&r)
    }

    async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let mut form = form.to_vec();
        form.push(("client_id", &self.client_id));
        let r = http()
            .post(format!("{}/token", self.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn exchange(&self, code: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .await
    }

    /// A full approval and exchange: the token response.
    async fn tokens(&self) -> Value {
        let q = self.approve(&[]).await;
        let (status, body) = self.exchange(&q["code"]).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// POST initialize to /mcp with a bearer token: the status and the WWW-Authenticate header.
async fn mcp_initialize(base: &str, token: Option<&str>, query: &str) -> (u16, String) {
    let mut r = http()
        .post(format!("{base}/mcp{query}"))
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        );
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), challenge)
}

fn assert_no_secret_in_log(d: &Director, secrets: &[&str]) {
    let log = d.log();
    for s in secrets {
        assert!(!s.is_empty());
        assert!(!log.contains(s), "a secret leaked into the log");
    }
}

#[tokio::test]
async fn discovery_follows_rfc9728_and_rfc8414() {
    let d = Director::start(&config(""));
    let (status, challenge) = mcp_initialize(&d.url, None, "").await;
    assert_eq!(status, 401);
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", d.url);
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"{prm_url}\", scope=\"mcp\"")
    );
    let prm: Value = http()
        .get(&prm_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], format!("{}/mcp", d.url));
    assert_eq!(prm["authorization_servers"], json!([d.url]));
    let asm: Value = http()
        .get(format!("{}/.well-known/oauth-authorization-server", d.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let oidc: Value = http()
        .get(format!("{}/.well-known/openid-configuration", d.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for m in [&asm, &oidc] {
        assert_eq!(m["issuer"], d.url);
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["registration_endpoint"], format!("{}/register", d.url));
        assert_eq!(m["authorization_endpoint"], format!("{}/authorize", d.url));
        assert_eq!(m["token_endpoint"], format!("{}/token", d.url));
    }
    // Off by default: the endpoints are not there.
    let off = Director::start("");
    let r = http()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            off.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn full_flow_then_refresh_rotation() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!(["authorization_code", "refresh_token"])).await;
    let q = flow
        .approve(&[("resource", &format!("{}/mcp", d.url))])
        .await;
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], d.url, "RFC 9207 iss");
    let (status, tokens) = flow.exchange(&q["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "mcp");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_initialize(&d.url, Some(access), "").await.0, 200);

    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, rotated) = flow
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["refresh_token"], tokens["refresh_token"]);
    let new_access = rotated["access_token"].as_str().unwrap();
    assert_eq!(mcp_initialize(&d.url, Some(new_access), "").await.0, 200);
    assert_no_secret_in_log(&d, &[access, new_access, &refresh]);

    // /metrics counts what was issued and refused, by grant type and error code.
    let (status, _) = flow.exchange(&q["code"]).await;
    assert_eq!(status, 400);
    let text = http()
        .get(format!("{}/metrics", d.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let sample = |name: &str, label: (&str, &str)| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    let issued = "mcp_director_oauth_tokens_issued_total";
    assert_eq!(
        sample(issued, ("grant_type", "authorization_code")),
        Some(1.0)
    );
    assert_eq!(sample(issued, ("grant_type", "refresh_token")), Some(1.0));
    assert_eq!(
        sample(
            "mcp_director_oauth_failures_total",
            ("error", "invalid_grant")
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn refresh_token_reuse_after_rotation_revokes_the_grant() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!(["authorization_code", "refresh_token"])).await;
    let tokens = flow.tokens().await;
    let old = tokens["refresh_token"].as_str().unwrap();
    let (_, rotated) = flow
        .token(&[("grant_type", "refresh_token"), ("refresh_token", old)])
        .await;
    let (status, body) = flow
        .token(&[("grant_type", "refresh_token"), ("refresh_token", old)])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The whole family is gone: the rotated pair too.
    let (status, challenge) = mcp_initialize(&d.url, rotated["access_token"].as_str(), "").await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let (status, _) = flow
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rotated["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(status, 400);
    assert_no_secret_in_log(&d, &[old]);
}

/// GET /authorize with the given PKCE parameters: the error the client is redirected with.
async fn authorize_error(flow: &Flow, params: &[(&str, &str)]) -> (String, String) {
    let r = http().get(flow.authorize_url(params)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let q = location_query(&r);
    assert_eq!(q["state"], "st-1");
    (q["error"].clone(), q["error_description"].clone())
}

#[tokio::test]
async fn missing_pkce_is_refused() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!([])).await;
    let (error, description) = authorize_error(&flow, &[]).await;
    assert_eq!(error, "invalid_request");
    assert!(description.contains("code_challenge"), "{description}");
    // And at the token endpoint, a code without its verifier is not exchanged.
    let q = flow.approve(&[]).await;
    let (status, body) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn plain_pkce_method_is_refused() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!([])).await;
    let (error, description) = authorize_error(
        &flow,
        &[
            ("code_challenge", VERIFIER),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    assert_eq!(error, "invalid_request");
    assert!(description.contains("S256"), "{description}");
}

#[tokio::test]
async fn wrong_verifier_is_refused_and_spends_the_code() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!([])).await;
    let q = flow.approve(&[]).await;
    let wrong = "another-verifier-0123456789-0123456789-0123456789";
    let (status, body) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", wrong),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // No second guess with the same code.
    let (status, body) = flow.exchange(&q["code"]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn reused_code_is_refused_and_revokes_its_tokens() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!([])).await;
    let q = flow.approve(&[]).await;
    let (status, tokens) = flow.exchange(&q["code"]).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_initialize(&d.url, Some(access), "").await.0, 200);
    let (status, body) = flow.exchange(&q["code"]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(mcp_initialize(&d.url, Some(access), "").await.0, 401);
    assert_no_secret_in_log(&d, &[&q["code"], access]);
}

#[tokio::test]
async fn redirect_uri_mismatch_is_refused() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!([])).await;
    // At /authorize: never redirected to an unregistered URI.
    let url = flow
        .authorize_url(&[])
        .replace("127.0.0.1%3A9%2Fcallback", "127.0.0.1%3A9%2Fother");
    let r = http().get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // At /token: the code is bound to the URI it was issued for.
    let q = flow.approve(&[]).await;
    let (status, body) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Registration itself refuses what is neither https nor loopback.
    let r = http()
        .post(format!("{}/register", d.url))
        .json(&json!({"redirect_uris": ["http://evil.example.com/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");
}

#[tokio::test]
async fn expired_code_is_refused() {
    let d = Director::start(&config("code_ttl_secs = 1"));
    let flow = Flow::register(&d, json!([])).await;
    let q = flow.approve(&[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, body) = flow.exchange(&q["code"]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn expired_access_token_is_refused() {
    let d = Director::start(&config("access_token_ttl_secs = 1"));
    let flow = Flow::register(&d, json!([])).await;
    let tokens = flow.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_initialize(&d.url, Some(access), "").await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, challenge) = mcp_initialize(&d.url, Some(access), "").await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
}

#[tokio::test]
async fn token_for_another_audience_is_refused() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!([])).await;
    // Another server's URI is not a resource this director issues tokens for.
    let r = http()
        .get(flow.authorize_url(&[
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("resource", "https://other.example.com/mcp"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(location_query(&r)["error"], "invalid_target");
    // A token minted for this director under its old URL is refused once the director
    // moves to another one (its canonical URI, the token's audience, changed).
    let tokens = flow.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_initialize(&d.url, Some(access), "").await.0, 200);
    edit_config(&d, "oauth", "issuer", "https://director.example.com").await;
    let (status, challenge) = mcp_initialize(&d.url, Some(access), "").await;
    assert_eq!(status, 401);
    assert!(challenge.contains("another resource"), "{challenge}");
}

#[tokio::test]
async fn token_in_the_query_string_is_refused() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!([])).await;
    let tokens = flow.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    let (status, challenge) = mcp_initialize(&d.url, None, &format!("?token={access}")).await;
    assert_eq!(status, 400, "RFC 6750 §3.1: a malformed request");
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    let r = http()
        .get(format!("{}/sse?token={access}", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("/.well-known/oauth-protected-resource/sse"),
        "the /sse challenge names its own metadata: {challenge}"
    );
    assert_no_secret_in_log(&d, &[access]);
}

#[tokio::test]
async fn insufficient_scope_is_403_with_the_scope_to_ask_for() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!([])).await;
    let q = flow.approve(&[("scope", "offline_access")]).await;
    let (status, tokens) = flow.exchange(&q["code"]).await;
    assert_eq!(status, 200);
    let (status, challenge) = mcp_initialize(&d.url, tokens["access_token"].as_str(), "").await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"mcp\""), "{challenge}");
}

#[tokio::test]
async fn consent_needs_the_form_token_the_cookie_and_the_password() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!([])).await;
    let (cookie, html) = flow.consent_page(&[]).await;
    assert!(html.contains("Test &lt;Client&gt;"), "client name, escaped");
    assert!(html.contains("127.0.0.1:9"), "redirect host");
    let post = |cookie: Option<String>, csrf: String, password: &str| {
        let mut r = http().post(format!("{}/authorize", d.url)).form(&[
            ("request_id", field(&html, "request_id")),
            ("csrf_token", csrf),
            ("decision", "approve".to_string()),
            ("username", USER.to_string()),
            ("password", password.to_string()),
        ]);
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        r.send()
    };
    let csrf = field(&html, "csrf_token");
    assert_eq!(
        post(None, csrf.clone(), PASSWORD).await.unwrap().status(),
        403
    );
    assert_eq!(
        post(Some(cookie.clone()), "forged".into(), PASSWORD)
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post(Some(cookie.clone()), csrf.clone(), "wrong")
            .await
            .unwrap()
            .status(),
        403
    );
    let ok = post(Some(cookie.clone()), csrf.clone(), PASSWORD)
        .await
        .unwrap();
    assert_eq!(ok.status(), 302);
    assert!(location_query(&ok).contains_key("code"));
    // Decided once.
    assert_eq!(
        post(Some(cookie), csrf, PASSWORD).await.unwrap().status(),
        400
    );
}

#[tokio::test]
async fn the_subject_picks_the_profile_and_owns_its_session() {
    let exe = env!("CARGO_BIN_EXE_mcp-fixture-server");
    let d = Director::start(&format!(
        "{}[[settings.oauth.profiles]]\nsubject = \"local:admin\"\nprofile = \"narrow\"\n\
         [servers.other]\ncommand = \"{exe}\"\n\
         [profiles.narrow]\nservers = [\"fx\"]\n[profiles.wide]\n",
        config("")
    ));
    d.wait_running_as(Some((USER, PASSWORD)), &["fx", "other"])
        .await;
    let flow = Flow::register(&d, json!([])).await;
    let tokens = flow.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    let mut mcp = common::McpHttp::new(&d.url);
    mcp.bearer = Some(access.to_string());
    mcp.initialize(json!({})).await;
    let names = mcp.tool_names().await;
    assert!(names.iter().any(|n| n == "fx/echo"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("other/")), "{names:?}");
    // Another profile than the rules give is refused.
    assert_eq!(
        mcp_initialize(&d.url, Some(access), "?profile=narrow")
            .await
            .0,
        200
    );
    assert_eq!(
        mcp_initialize(&d.url, Some(access), "?profile=wide")
            .await
            .0,
        403
    );
    // The subject, not the session or the token, owns its tasks: a session with another token
    // of the same subject finds the task (tests/tasks.rs shows other principals do not).
    let created = mcp
        .post(
            json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
            "name": "fx/echo", "arguments": {"text": "t"}, "task": {"ttl": 60000}}}),
        )
        .await;
    let task_id = created.last().unwrap()["result"]["task"]["taskId"]
        .as_str()
        .expect("a task")
        .to_string();
    let get =
        json!({"jsonrpc": "2.0", "id": 6, "method": "tasks/get", "params": {"taskId": task_id}});
    let second = flow.tokens().await;
    let mut same_subject = common::McpHttp::new(&d.url);
    same_subject.bearer = second["access_token"].as_str().map(str::to_string);
    same_subject.initialize(json!({})).await;
    let found = same_subject.post(get.clone()).await;
    assert_eq!(
        found.last().unwrap()["result"]["taskId"],
        task_id.as_str(),
        "{found:?}"
    );
    // The session cannot be used without the token.
    mcp.bearer = None;
    let r = mcp
        .request(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_clients_token_never_reaches_an_upstream() {
    let temp = tempfile::tempdir().unwrap();
    let headers_log = temp.path().join("upstream-headers.log");
    let port = common::free_port();
    let _upstream = common::Peer::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_mcp-fixture-server"))
            .args(["--http", &format!("127.0.0.1:{port}")])
            .env("FIXTURE_HEADERS_LOG", &headers_log)
            .stdout(std::process::Stdio::null()),
    );
    common::wait_for(|| async { std::net::TcpStream::connect(("127.0.0.1", port)).ok() }).await;
    let d = Director::start(&format!(
        "{}[servers.up]\ntransport = \"streamable-http\"\nurl = \"http://127.0.0.1:{port}/mcp\"\n\
         headers = {{ Authorization = \"Bearer upstream-own-credential\" }}\n",
        config("")
    ));
    d.wait_running_as(Some((USER, PASSWORD)), &["up"]).await;
    let flow = Flow::register(&d, json!([])).await;
    let tokens = flow.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    let mut mcp = common::McpHttp::new(&d.url);
    mcp.bearer = Some(access.to_string());
    mcp.initialize(json!({})).await;
    let answer = mcp
        .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "up/echo", "arguments": {"text": "hi"}}}))
        .await;
    assert!(common::result_text(&answer).contains("hi"), "{answer:?}");
    let seen = std::fs::read_to_string(&headers_log).unwrap();
    assert!(
        seen.lines().count() >= 2,
        "the upstream saw the calls: {seen}"
    );
    assert!(
        seen.lines().all(
            |l| serde_json::from_str::<Value>(l).unwrap()["authorization"]
                == "Bearer upstream-own-credential"
        ),
        "only the upstream's own credential: {seen}"
    );
    assert!(!seen.contains(access));
}

/// A web server on loopback publishing client metadata documents; its base URL.
async fn metadata_host() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let b = base.clone();
    let doc = move |path: &str, client_id: String| {
        let body = json!({"client_id": client_id, "client_name": "Metadata Client",
            "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"});
        (path.to_string(), body.to_string())
    };
    let (good_path, good) = doc("/client.json", format!("{b}/client.json"));
    let (_, wrong) = doc("/wrong.json", format!("{b}/someone-else.json"));
    let big = json!({"client_id": format!("{b}/big.json"), "redirect_uris": [REDIRECT],
        "padding": "x".repeat(10_000)})
    .to_string();
    let app = axum::Router::new()
        .route(&good_path, axum::routing::get(move || async move { good }))
        .route(
            "/wrong.json",
            axum::routing::get(move || async move { wrong }),
        )
        .route("/big.json", axum::routing::get(move || async move { big }))
        .route(
            "/moved.json",
            axum::routing::get(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [("location", "/client.json")],
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_id_metadata_document_stands_in_for_registration() {
    let d = Director::start(&config(""));
    let base = metadata_host().await;
    let asm: Value = http()
        .get(format!("{}/.well-known/oauth-authorization-server", d.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asm["client_id_metadata_document_supported"], true);
    let flow = Flow {
        base: d.url.clone(),
        client_id: format!("{base}/client.json"),
    };
    let q = flow.approve(&[]).await;
    let (status, tokens) = flow.exchange(&q["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        mcp_initialize(&d.url, tokens["access_token"].as_str(), "")
            .await
            .0,
        200
    );
    let page = http()
        .get(flow.authorize_url(&[
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Metadata Client"),
        "the document's name is shown"
    );
    assert!(
        page.contains("(as published by 127.0.0.1)"),
        "and who published it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_metadata_fetches_are_fenced() {
    let d = Director::start(&config(""));
    let base = metadata_host().await;
    let refused = async |client_id: String| -> String {
        let flow = Flow {
            base: d.url.clone(),
            client_id,
        };
        let r = http()
            .get(flow.authorize_url(&[
                ("code_challenge", &s256(VERIFIER)),
                ("code_challenge_method", "S256"),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "never redirected to an untrusted client");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        // The client learns nothing about what answered where; the log says why.
        assert_eq!(
            body["error_description"],
            "the client_id metadata document could not be used"
        );
        let log = d.log();
        log[log
            .rfind("client metadata document refused")
            .expect("logged")..]
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    let why = refused("http://example.com/client.json".into()).await;
    assert!(why.contains("https") || why.contains("resolve"), "{why}");
    let why = refused("https://10.1.2.3/client.json".into()).await;
    assert!(why.contains("private or reserved"), "{why}");
    let why = refused("https://169.254.169.254/latest/meta-data".into()).await;
    assert!(why.contains("private or reserved"), "{why}");
    let why = refused("https://[64:ff9b::a9fe:a9fe]/latest".into()).await;
    assert!(why.contains("private or reserved"), "{why}");
    let why = refused(format!("{base}/big.json")).await;
    assert!(why.contains("larger than 5120 bytes"), "{why}");
    let why = refused(format!("{base}/wrong.json")).await;
    assert!(why.contains("not its own URL"), "{why}");
    let why = refused(format!("{base}/moved.json")).await;
    assert!(why.contains("302"), "{why}");
}

#[tokio::test]
async fn wrong_passwords_end_the_authorization_request() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!([])).await;
    let (cookie, html) = flow.consent_page(&[]).await;
    let attempt = async |password: &str| {
        http()
            .post(format!("{}/authorize", d.url))
            .header("cookie", &cookie)
            .form(&[
                ("request_id", field(&html, "request_id")),
                ("csrf_token", field(&html, "csrf_token")),
                ("decision", "approve".to_string()),
                ("username", USER.to_string()),
                ("password", password.to_string()),
            ])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    for _ in 0..5 {
        assert_eq!(attempt("guess").await, 403);
    }
    // Even the right password is too late: the request is gone.
    assert_eq!(attempt(PASSWORD).await, 400);
}

#[tokio::test]
async fn a_removed_account_loses_its_tokens() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!(["authorization_code", "refresh_token"])).await;
    let tokens = flow.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_initialize(&d.url, Some(access), "").await.0, 200);
    // The admin account is renamed: what `local:admin` was granted is worth nothing now.
    edit_config(&d, "auth", "username", "someone-else").await;
    let (status, challenge) = mcp_initialize(&d.url, Some(access), "").await;
    assert_eq!(status, 401);
    assert!(challenge.contains("no longer allowed"), "{challenge}");
    let (status, body) = flow
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_narrower_refresh_scope_applies_to_that_access_token_only() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!(["authorization_code", "refresh_token"])).await;
    let q = flow.approve(&[("scope", "mcp offline_access")]).await;
    let (_, tokens) = flow.exchange(&q["code"]).await;
    assert_eq!(tokens["scope"], "mcp offline_access");
    let refresh = |token: String, scope: Option<&'static str>| {
        let flow = &flow;
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ];
            if let Some(s) = scope {
                form.push(("scope", s));
            }
            flow.token(&form).await
        }
    };
    let (status, narrow) = refresh(
        tokens["refresh_token"].as_str().unwrap().into(),
        Some("offline_access"),
    )
    .await;
    assert_eq!(status, 200, "{narrow}");
    assert_eq!(narrow["scope"], "offline_access");
    assert_eq!(
        mcp_initialize(&d.url, narrow["access_token"].as_str(), "")
            .await
            .0,
        403
    );
    // The grant kept its scope: the next refresh without `scope` has it all again.
    let (status, full) = refresh(narrow["refresh_token"].as_str().unwrap().into(), None).await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["scope"], "mcp offline_access");
    assert_eq!(
        mcp_initialize(&d.url, full["access_token"].as_str(), "")
            .await
            .0,
        200
    );
    // An empty scope is not a narrowing.
    let (status, body) = refresh(full["refresh_token"].as_str().unwrap().into(), Some("")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
}

#[tokio::test]
async fn errors_for_a_remote_redirect_uri_are_shown_not_redirected() {
    let d = Director::start(&config(""));
    let r = http()
        .post(format!("{}/register", d.url))
        .json(&json!({"redirect_uris": ["https://app.example.com/cb"]}))
        .send()
        .await
        .unwrap();
    let client_id = r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut url = url::Url::parse(&format!("{}/authorize", d.url)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", "https://app.example.com/cb")
        .append_pair("state", "s<1>");
    // No PKCE: an error, but the browser is not bounced to app.example.com by itself.
    let r = http().get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("app.example.com"), "{page}");
    assert!(
        page.contains("href=\"https://app.example.com/cb?error=invalid_request&amp;"),
        "a link the user may follow: {page}"
    );
    assert!(
        page.contains("state=s%3C1%3E"),
        "the state, encoded: {page}"
    );
}

/// An operator sees the registered clients and the grants in force (never a token), revokes
/// a grant (its tokens stop working at once), and deletes a client (its other grants with it).
#[tokio::test]
async fn an_operator_lists_and_revokes_grants_and_deletes_clients() {
    let d = Director::start(&config(""));
    let flow = Flow::register(&d, json!(["authorization_code", "refresh_token"])).await;
    let resource = format!("{}/mcp", d.url);
    let mut access = Vec::new();
    for _ in 0..2 {
        let q = flow.approve(&[("resource", &resource)]).await;
        let (status, tokens) = flow.exchange(&q["code"]).await;
        assert_eq!(status, 200, "{tokens}");
        let token = tokens["access_token"].as_str().unwrap().to_string();
        assert_eq!(mcp_initialize(&d.url, Some(&token), "").await.0, 200);
        access.push(token);
    }
    let admin = d.client(Some((USER, PASSWORD)));
    let clients = admin.list_oauth_clients().await.unwrap().into_inner();
    let client = clients
        .iter()
        .find(|c| c.client_id == flow.client_id)
        .expect("the client");
    assert_eq!(client.grants, 2);
    assert_eq!(client.redirect_uris, vec![REDIRECT.to_string()]);
    let grants = admin.list_oauth_grants().await.unwrap().into_inner();
    assert_eq!(grants.len(), 2);
    let subject = format!("local:{USER}");
    assert!(
        grants
            .iter()
            .all(|g| g.client_id == flow.client_id && g.subject == subject),
        "{grants:?}"
    );
    let listed = serde_json::to_string(&grants).unwrap();
    assert!(access.iter().all(|t| !listed.contains(t.as_str())));

    // One grant revoked: one of the two tokens stops working, at once.
    let revoked = admin
        .revoke_oauth_grant(&grants[0].id)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.id, grants[0].id);
    let mut statuses = Vec::new();
    for t in &access {
        statuses.push(mcp_initialize(&d.url, Some(t), "").await.0);
    }
    statuses.sort();
    assert_eq!(statuses, vec![200, 401]);
    let again = admin.revoke_oauth_grant(&grants[0].id).await.unwrap_err();
    assert_eq!(again.status(), Some(reqwest::StatusCode::NOT_FOUND));

    // The client deleted: its other grant goes too, and it is no longer listed.
    admin.delete_oauth_client(&flow.client_id).await.unwrap();
    for t in &access {
        assert_eq!(mcp_initialize(&d.url, Some(t), "").await.0, 401);
    }
    assert!(
        admin
            .list_oauth_grants()
            .await
            .unwrap()
            .into_inner()
            .is_empty()
    );
    let clients = admin.list_oauth_clients().await.unwrap().into_inner();
    assert!(clients.iter().all(|c| c.client_id != flow.client_id));
    let missing = admin
        .delete_oauth_client(&flow.client_id)
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(reqwest::StatusCode::NOT_FOUND));
}
