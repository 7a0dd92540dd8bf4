//! The core crate knows nothing about AWS: no `aws-*` crate (nor serde_dynamo, which brings the
//! DynamoDB SDK) anywhere in its normal dependency tree. The DynamoDB adapters live in
//! `shared/dynamo`.

use std::process::Command;

#[test]
fn core_has_no_aws_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--package",
            "snapshot-core",
            "--edges",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("utf-8 tree");
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"snapshot-core"),
        "tree lists the core itself:\n{tree}"
    );
    assert!(
        crates.contains(&"zstd"),
        "tree lists transitive dependencies:\n{tree}"
    );
    let aws: Vec<&&str> = crates
        .iter()
        .filter(|name| name.starts_with("aws") || name.starts_with("serde_dynamo"))
        .collect();
    assert!(aws.is_empty(), "snapshot-core depends on {aws:?}");
}
