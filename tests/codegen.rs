//! `generated/` is exactly what `cargo xtask codegen` writes from `spec/`, and the check notices
//! when it is not.

use std::path::Path;
use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(args)
        .output()
        .expect("run xtask")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn generated_code_is_fresh_and_the_check_catches_a_spec_edit() {
    let out = xtask(&["codegen", "--check"]);
    assert!(
        out.status.success(),
        "generated/ is stale: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A scratch checkout: edit the spec, the check fails naming the stale file.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::tempdir().unwrap();
    copy_dir(&root.join("spec"), &scratch.path().join("spec"));
    copy_dir(&root.join("generated"), &scratch.path().join("generated"));
    let spec_path = scratch.path().join("spec/openapi.yaml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    let edited = spec.replacen(
        "operationId: list_servers",
        "operationId: list_all_servers",
        1,
    );
    assert_ne!(
        edited, spec,
        "the spec has a list_servers operation to rename"
    );
    std::fs::write(&spec_path, edited).unwrap();

    let dir = scratch.path().to_str().unwrap();
    let out = xtask(&["--root", dir, "codegen", "--check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the check passed on an edited spec");
    assert!(
        stderr.contains("stale: generated/api/src/lib.rs"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stale: generated/client/src/lib.rs"),
        "{stderr}"
    );
    assert!(!stderr.contains("generated/protocol"), "{stderr}");

    // Regenerating makes it pass again, and the new operation name is in the trait.
    let out = xtask(&["--root", dir, "codegen"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = xtask(&["--root", dir, "codegen", "--check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = std::fs::read_to_string(scratch.path().join("generated/api/src/lib.rs")).unwrap();
    assert!(api.contains("fn list_all_servers("));
}
