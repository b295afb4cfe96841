//! Embeds `spec/openapi.yaml`, converted to JSON, so `/api-docs` serves exactly the spec.

fn main() {
    println!("cargo::rerun-if-changed=spec/openapi.yaml");
    let yaml = std::fs::read_to_string("spec/openapi.yaml").expect("spec/openapi.yaml is readable");
    let doc: serde_json::Value =
        serde_yaml::from_str(&yaml).expect("spec/openapi.yaml is valid YAML");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(
        out.join("openapi.json"),
        serde_json::to_string(&doc).expect("JSON values serialise"),
    )
    .expect("OUT_DIR is writable");
}
