//! The generated MCP types are lossless: every official example of 2026-07-28 and our own
//! request/result pairs for the older versions parse and serialise back to the same JSON.

use mcp_director_protocol as protocol;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

type Roundtrip = fn(&str, &str) -> Option<Result<Value, serde_json::Error>>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The generated name of a schema definition: typify writes `JSONRPCRequest` as `JsonrpcRequest`.
fn type_name(types: &[&str], definition: &str) -> Option<String> {
    types
        .iter()
        .find(|t| t.eq_ignore_ascii_case(definition))
        .map(|t| t.to_string())
}

/// `1` and `1.0` are the same JSON number; typed `f64` fields write the second.
fn numbers_as_f64(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(numbers_as_f64).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect())
        }
        other => other,
    }
}

/// Round-trips every `<dir>/<Type>[/…].json` and returns how many files it checked.
fn roundtrip_dir(dir: &Path, types: &[&str], roundtrip: Roundtrip) -> usize {
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let (definition, files) = if path.is_dir() {
            let files: Vec<PathBuf> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            (
                path.file_name().unwrap().to_string_lossy().to_string(),
                files,
            )
        } else {
            (
                path.file_stem().unwrap().to_string_lossy().to_string(),
                vec![path.clone()],
            )
        };
        let name = type_name(types, &definition)
            .unwrap_or_else(|| panic!("no generated type for {definition}"));
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let original: Value = serde_json::from_str(&text).unwrap();
            let back = roundtrip(&name, &text)
                .expect("type exists")
                .unwrap_or_else(|e| panic!("{} does not parse as {name}: {e}", file.display()));
            assert_eq!(
                numbers_as_f64(back),
                numbers_as_f64(original),
                "{} changed in a round trip",
                file.display()
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn official_2026_07_28_examples_roundtrip_losslessly() {
    let dir = fixtures().join("mcp-examples");
    let checked = roundtrip_dir(
        &dir,
        protocol::v2026_07_28::TYPES,
        protocol::v2026_07_28::roundtrip,
    );
    assert!(checked >= 129, "only {checked} examples checked");
}

#[test]
fn older_versions_roundtrip_losslessly() {
    let versions: [(&str, &[&str], Roundtrip); 4] = [
        (
            "2024-11-05",
            protocol::v2024_11_05::TYPES,
            protocol::v2024_11_05::roundtrip,
        ),
        (
            "2025-03-26",
            protocol::v2025_03_26::TYPES,
            protocol::v2025_03_26::roundtrip,
        ),
        (
            "2025-06-18",
            protocol::v2025_06_18::TYPES,
            protocol::v2025_06_18::roundtrip,
        ),
        (
            "2025-11-25",
            protocol::v2025_11_25::TYPES,
            protocol::v2025_11_25::roundtrip,
        ),
    ];
    for (version, types, roundtrip) in versions {
        let checked = roundtrip_dir(
            &fixtures().join("mcp-older").join(version),
            types,
            roundtrip,
        );
        assert_eq!(checked, 10, "{version}");
    }
}

#[test]
fn tools_call_is_not_mistaken_for_ping_and_keeps_its_arguments() {
    use protocol::v2025_11_25::ClientRequest;
    let text =
        std::fs::read_to_string(fixtures().join("mcp-older/2025-11-25/CallToolRequest.json"))
            .unwrap();
    let request: ClientRequest = serde_json::from_str(&text).unwrap();
    let ClientRequest::CallToolRequest(call) = &request else {
        panic!("tools/call parsed as {request:?}");
    };
    assert_eq!(
        serde_json::to_value(&call.params.arguments).unwrap(),
        json!({"path": "/tmp/notes.txt", "nested": {"a": [1, 2, {"b": null}]}})
    );
    let ping: ClientRequest =
        serde_json::from_value(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).unwrap();
    assert!(matches!(ping, ClientRequest::PingRequest(_)));
}

#[test]
fn jsonrpc_version_other_than_2_0_is_rejected() {
    use protocol::v2025_11_25::{ClientRequest, JsonrpcRequest};
    let bad = json!({"jsonrpc": "1.0", "id": 1, "method": "ping"});
    assert!(serde_json::from_value::<JsonrpcRequest>(bad.clone()).is_err());
    assert!(serde_json::from_value::<ClientRequest>(bad).is_err());
    let good = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert!(serde_json::from_value::<JsonrpcRequest>(good).is_ok());
}

#[test]
fn unknown_keys_in_tool_schemas_survive() {
    for (roundtrip, version) in [
        (protocol::v2025_06_18::roundtrip as Roundtrip, "2025-06-18"),
        (protocol::v2025_11_25::roundtrip, "2025-11-25"),
        (protocol::v2026_07_28::roundtrip, "2026-07-28"),
    ] {
        let tool = json!({
            "name": "t",
            "inputSchema": {"type": "object", "$defs": {"A": {"type": "string"}},
                            "properties": {"a": {"$ref": "#/$defs/A"}}, "x-vendor": true},
            "outputSchema": {"type": "object", "additionalProperties": false, "$id": "urn:x"}
        });
        let back = roundtrip("Tool", &tool.to_string()).unwrap().unwrap();
        assert_eq!(back, tool, "{version}");
    }
}
