//! The supply-chain rules the scripts must keep: Python packages installed only with their
//! hashes, cargo builds only from the committed lock file, and the cargo-deny check in the
//! test command.

use std::path::Path;

use integration_tests::workspace::root;

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `tools/*/requirements.txt`, relative to the repository root.
fn requirements_files() -> Vec<String> {
    let tools = root().join("tools");
    let mut files: Vec<String> = std::fs::read_dir(&tools)
        .unwrap_or_else(|e| panic!("reading {}: {e}", tools.display()))
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("requirements.txt").is_file())
        .map(|entry| {
            format!(
                "tools/{}/requirements.txt",
                entry.file_name().to_string_lossy()
            )
        })
        .collect();
    files.sort();
    files
}

/// Each requirement of a pip requirements file with its continuation lines joined.
fn requirements(text: &str) -> Vec<String> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or_default().trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
}

#[test]
fn every_python_requirement_is_pinned_with_its_hashes() {
    let files = requirements_files();
    for expected in [
        "tools/moto/",
        "tools/template/",
        "tools/deny/",
        "tools/build/",
    ] {
        assert!(
            files.iter().any(|f| f.starts_with(expected)),
            "{expected}requirements.txt is missing: {files:?}"
        );
    }
    for file in files {
        let reqs = requirements(&read(&file));
        assert!(!reqs.is_empty(), "{file} pins nothing");
        for req in reqs {
            let spec = req.split_whitespace().next().unwrap_or_default();
            assert!(
                spec.contains("==") && !spec.contains('*'),
                "{file}: `{spec}` is not pinned to one version"
            );
            let hashes = req
                .split_whitespace()
                .filter(|w| w.starts_with("--hash=sha256:") && w.len() == 14 + 64)
                .count();
            assert!(hashes > 0, "{file}: `{spec}` has no sha256 hash");
        }
    }
}

#[test]
fn virtualenvs_are_installed_in_hash_checking_mode() {
    let venv = read("scripts/venv.sh");
    let install = venv
        .lines()
        .skip_while(|l| !l.contains("pip install"))
        .take(2)
        .collect::<String>();
    assert!(
        install.contains("--require-hashes"),
        "scripts/venv.sh installs without --require-hashes: {install}"
    );
}

#[test]
fn cargo_builds_in_the_scripts_use_the_committed_lock_file() {
    let mut checked = 0;
    for script in [
        "scripts/test.sh",
        "scripts/run.sh",
        "scripts/build.sh",
        "scripts/bench.sh",
        "Makefile",
    ] {
        for line in read(script).lines().map(str::trim) {
            if line.starts_with('#') || line.starts_with("step ") || line.starts_with("echo ") {
                continue;
            }
            let builds = [
                "cargo build",
                "cargo run",
                "cargo test",
                "cargo clippy",
                "cargo lambda build",
            ]
            .iter()
            .any(|c| line.contains(c));
            if builds {
                checked += 1;
                assert!(
                    line.contains("--locked"),
                    "{script}: `{line}` lacks --locked"
                );
            }
        }
    }
    assert!(
        checked >= 5,
        "found only {checked} cargo builds in the scripts"
    );
}

#[test]
fn the_test_command_runs_cargo_deny_offline_on_bans_licenses_and_sources() {
    let test = read("scripts/test.sh");
    assert!(
        test.lines().any(|l| l.trim() == "scripts/deny.sh"),
        "scripts/test.sh does not run scripts/deny.sh"
    );
    let deny = read("scripts/deny.sh");
    assert!(
        deny.contains("--frozen"),
        "cargo-deny must run offline (--frozen)"
    );
    assert!(deny.contains("checks=(bans licenses sources)"));
    let policy = read("deny.toml");
    for rule in [
        "unknown-registry = \"deny\"",
        "unknown-git = \"deny\"",
        "wildcards = \"deny\"",
        "name = \"openssl-sys\"",
    ] {
        assert!(policy.contains(rule), "deny.toml lacks {rule}");
    }
    assert!(Path::new(&root().join("tools/deny/requirements.txt")).is_file());
}
