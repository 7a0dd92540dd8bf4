//! The Cargo workspace as the template tests see it: which crates exist, which binaries they
//! build and which workspace crates they depend on. Manifests are read line by line: the tests
//! need a few plain keys, not a TOML parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The repository root (the workspace holding this crate).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// What the tests need of one `Cargo.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub package: String,
    /// `[[bin]]` names plus the binaries Cargo discovers (`src/main.rs`, `src/bin/*.rs`).
    pub bins: BTreeSet<String>,
    /// Keys of `[dependencies]` (not dev- or build-dependencies).
    pub dependencies: BTreeSet<String>,
}

/// Reads the manifest of the crate in `dir` (relative to the workspace root).
pub fn manifest(dir: &str) -> Manifest {
    let crate_dir = root().join(dir);
    let path = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut m = Manifest::default();
    let mut section = String::new();
    let mut explicit_main = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim().trim_matches('"'));
        match (section.as_str(), key) {
            ("[package]", "name") => m.package = value.to_owned(),
            ("[[bin]]", "name") => {
                m.bins.insert(value.to_owned());
            }
            ("[[bin]]", "path") if value == "src/main.rs" => explicit_main = true,
            ("[dependencies]", dep) => {
                let name = dep.split('.').next().unwrap_or(dep);
                m.dependencies.insert(name.to_owned());
            }
            _ => {}
        }
    }
    if crate_dir.join("src/main.rs").is_file() && !explicit_main {
        m.bins.insert(m.package.clone());
    }
    if let Ok(entries) = std::fs::read_dir(crate_dir.join("src/bin")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "rs") {
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    m.bins.insert(stem.to_owned());
                }
            }
        }
    }
    m
}

/// Workspace crates by package name → directory, from `[workspace.dependencies]` path entries.
pub fn path_crates() -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(root().join("Cargo.toml")).expect("reading the root Cargo.toml");
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once('=')?;
            let rest = rest.trim();
            let path = rest
                .strip_prefix('{')?
                .trim()
                .strip_prefix("path")?
                .trim()
                .strip_prefix('=')?;
            let path = path.trim().strip_prefix('"')?.split('"').next()?;
            Some((name.trim().to_owned(), path.to_owned()))
        })
        .collect()
}

/// `[workspace] members`.
pub fn members() -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(root().join("Cargo.toml")).expect("reading the root Cargo.toml");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("the root Cargo.toml lists its members on one line");
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Directories under `functions/` holding a crate.
pub fn function_crate_dirs() -> BTreeSet<String> {
    let dir = root().join("functions");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| format!("functions/{}", e.file_name().to_string_lossy()))
        .collect()
}

/// Source directories of the crate in `dir` and of every workspace crate it depends on,
/// directly or through another.
pub fn source_dirs_with_workspace_dependencies(dir: &str) -> Vec<PathBuf> {
    let crates = path_crates();
    let mut seen = BTreeSet::from([dir.to_owned()]);
    let mut pending = vec![dir.to_owned()];
    let mut dirs = Vec::new();
    while let Some(current) = pending.pop() {
        dirs.push(root().join(&current).join("src"));
        for dep in manifest(&current).dependencies {
            if let Some(dep_dir) = crates.get(&dep) {
                if seen.insert(dep_dir.clone()) {
                    pending.push(dep_dir.clone());
                }
            }
        }
    }
    dirs
}

/// The plain `key = value` lines of one table of the root `Cargo.toml` (`[profile.release]`,
/// `[workspace.metadata.lambda.build]`), values without their quotes.
pub fn root_table(table: &str) -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(root().join("Cargo.toml")).expect("reading the root Cargo.toml");
    let mut current = "";
    let mut values = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            current = line;
        } else if current == table && !line.starts_with('#') {
            if let Some((key, value)) = line.split_once('=') {
                let value = value.trim().trim_matches('"');
                values.insert(key.trim().to_owned(), value.to_owned());
            }
        }
    }
    values
}

/// The arguments `make build` (scripts/build.sh) gives `cargo lambda build`, as the script
/// writes them (shell words, quotes kept: `"${bins[@]}"` is the function selection, `"$@"` the
/// caller's own arguments).
pub fn make_build_arguments() -> Vec<String> {
    let path = root().join("scripts/build.sh");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut commands = text
        .lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix("cargo lambda build "));
    let command = commands
        .next()
        .expect("scripts/build.sh runs `cargo lambda build`");
    assert!(
        commands.next().is_none(),
        "scripts/build.sh runs `cargo lambda build` once"
    );
    command.split_whitespace().map(str::to_owned).collect()
}
