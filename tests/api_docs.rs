//! `/api-docs` serves exactly `spec/openapi.yaml`, and the spec and the router agree.

mod common;

use common::Director;
use serde_json::Value;

fn spec() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/openapi.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// `(METHOD, path, tags)` of every operation in the spec.
fn operations(spec: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                let tags = op["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect();
                out.push((method.to_uppercase(), path.clone(), tags));
            }
        }
    }
    out
}

#[tokio::test]
async fn api_docs_is_the_spec_and_lists_every_seed_endpoint() {
    let d = Director::start("");
    let response = reqwest::get(format!("{}/api-docs", d.url)).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, spec());
    assert_eq!(served["openapi"], "3.0.3");

    // The seed's endpoints, each with its method.
    let seed = [
        ("GET", "/sse"),
        ("POST", "/mcp"),
        ("GET", "/mcp"),
        ("DELETE", "/mcp"),
        ("GET", "/authorize"),
        ("POST", "/authorize"),
        ("POST", "/token"),
        ("POST", "/register"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/.well-known/openid-configuration"),
        ("GET", "/metrics"),
        ("GET", "/health"),
        ("GET", "/api-docs"),
        ("GET", "/api/servers"),
        ("POST", "/api/servers"),
        ("DELETE", "/api/servers/{name}"),
        ("GET", "/api/servers/{name}/status"),
        ("GET", "/api/tools"),
        ("GET", "/api/profiles"),
        ("POST", "/api/profiles"),
        ("DELETE", "/api/profiles/{name}"),
        ("GET", "/api/projects"),
        ("POST", "/api/projects"),
        ("DELETE", "/api/projects/{name}"),
        ("GET", "/api/config"),
        ("POST", "/api/config"),
        ("POST", "/api/config/reload"),
        ("POST", "/api/auth/enable"),
    ];
    let ops = operations(&served);
    for (method, path) in seed {
        assert!(
            ops.iter().any(|(m, p, _)| m == method && p == path),
            "{method} {path} missing from /api-docs"
        );
    }
    insta::assert_json_snapshot!("api_docs", served);
}

#[tokio::test]
async fn every_admin_observability_and_oauth_operation_of_the_spec_is_routed() {
    let d = Director::start(&format!(
        "[servers.x]\ncommand = \"true\"\n[profiles.x]\n[projects.x]\n\
         [settings.auth]\nenabled = true\nusername = \"a\"\npassword_hash = \"{}\"\n\
         [settings.oauth]\nenabled = true\n",
        mcp_director::secrets::hash_password("p")
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut checked = 0;
    let mut oauth = 0;
    for (method, path, tags) in operations(&spec()) {
        if !tags
            .iter()
            .any(|t| t == "admin" || t == "observability" || t == "oauth")
        {
            continue;
        }
        oauth += usize::from(tags.iter().any(|t| t == "oauth"));
        let path = path.replace("{name}", "x");
        let request = http.request(method.parse().unwrap(), format!("{}{path}", d.url));
        let request = if method == "POST" {
            request
                .header("content-type", "application/json")
                .body("{}")
        } else {
            request
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        // An unrouted path is a 404 with no body and a wrong method a 405: either means the
        // spec and the router disagree. A routed 404 carries the spec's Error body.
        assert!(status != 405, "{method} {path}: 405");
        if status == 404 {
            let error: Value = serde_json::from_str(&body)
                .unwrap_or_else(|_| panic!("{method} {path}: unrouted 404"));
            assert_eq!(error["error"], "not_found", "{method} {path}");
        }
        checked += 1;
    }
    assert_eq!(oauth, 10);
    assert_eq!(checked, mcp_director_api::ROUTES.len() + 3 + oauth);
    // And every generated route is in the spec (the generator reads nothing else).
    let ops = operations(&spec());
    for (method, path) in mcp_director_api::ROUTES {
        assert!(ops.iter().any(|(m, p, _)| m == method && p == path));
    }
}
