//! Which environment variables code reads, found in its source text, so a test can check the
//! SAM template sets each of them.
//!
//! Recognised reads (outside comments and `#[cfg(test)]` items):
//! - `Env`'s `.string("X", ..)`, `.number("X", ..)`, `.optional("X")` (snapshot_core::config);
//! - `std::env::var("X")`, `env::var_os("X")`;
//! - `lookup("X")` inside a `from_lookup` function;
//! - `EnvFilter::from_default_env()` / `try_from_default_env()` (`RUST_LOG`) and
//!   `EnvFilter::try_from_env("X")`.
//!
//! The name may also be a `const NAME: &str = "X"` declared in the scanned sources. A read
//! through anything else (a lower-case variable, a computed name) is reported as unresolved,
//! so the scan fails loudly rather than miss a variable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

const NAME: &str = r"[A-Z][A-Z0-9_]*";

static READ_CALLS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?x)
        (?: \.(?:string|number|optional) | \benv::var(?:_os)? | \blookup | EnvFilter::(?:try_)?from_env )
        \(\s*
        (?: "(?P<literal>{NAME})" | (?P<constant>{NAME})\s*[,)] | (?P<other>[^)\s][^,)]*) )
        "#
    ))
    .expect("valid regex")
});

/// `env::var(name)` and friends called with something we cannot resolve are checked separately
/// from `Env` methods: `.string(x)` on other types is common and harmless.
static STD_ENV_CALL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\benv::var(?:_os)?\(").expect("valid regex"));

static DEFAULT_ENV_FILTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"EnvFilter::(?:try_)?from_default_env\b").expect("valid regex"));

static STR_CONST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"\bconst\s+(?P<name>{NAME})\s*:\s*&(?:'static\s+)?str\s*=\s*"(?P<value>[^"]*)""#
    ))
    .expect("valid regex")
});

/// Variables read, each with the files that read it; and reads whose name could not be
/// resolved, as `file: snippet`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EnvReads {
    pub variables: BTreeMap<String, BTreeSet<PathBuf>>,
    pub unresolved: Vec<String>,
}

impl EnvReads {
    pub fn names(&self) -> BTreeSet<String> {
        self.variables.keys().cloned().collect()
    }
}

/// Scans every `.rs` file under `dirs`.
pub fn scan_dirs(dirs: &[PathBuf]) -> EnvReads {
    let mut files = Vec::new();
    for dir in dirs {
        collect_rust_files(dir, &mut files);
    }
    assert!(!files.is_empty(), "no Rust sources under {dirs:?}");
    let sources: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (path, strip_non_production(&text))
        })
        .collect();
    let constants: BTreeMap<String, String> = sources
        .iter()
        .flat_map(|(_, text)| STR_CONST.captures_iter(text))
        .map(|c| (c["name"].to_owned(), c["value"].to_owned()))
        .collect();
    let mut reads = EnvReads::default();
    for (path, text) in &sources {
        scan_text(path, text, &constants, &mut reads);
    }
    reads
}

/// Scans one source text (already stripped of comments and test code).
pub fn scan_text(
    path: &Path,
    text: &str,
    constants: &BTreeMap<String, String>,
    reads: &mut EnvReads,
) {
    let mut record = |name: &str| {
        reads
            .variables
            .entry(name.to_owned())
            .or_default()
            .insert(path.to_path_buf());
    };
    for call in READ_CALLS.captures_iter(text) {
        let whole = call.get(0).map_or("", |m| m.as_str());
        if let Some(literal) = call.name("literal") {
            record(literal.as_str());
        } else if let Some(constant) = call.name("constant") {
            match constants.get(constant.as_str()) {
                Some(value) => record(value),
                None => reads.unresolved.push(format!(
                    "{}: `{whole}` (no `const {}: &str`)",
                    path.display(),
                    constant.as_str()
                )),
            }
        } else if STD_ENV_CALL.is_match(whole) || whole.starts_with("lookup") {
            // `std::env::var(k)` inside `from_lookup(|k| std::env::var(k).ok())` hands the
            // lookup to `Env`, whose calls are scanned themselves.
            let argument = call.name("other").map_or("", |m| m.as_str().trim());
            if !is_forwarded_lookup_key(argument) {
                reads
                    .unresolved
                    .push(format!("{}: `{whole}`", path.display()));
            }
        }
    }
    if DEFAULT_ENV_FILTER.is_match(text) {
        record("RUST_LOG");
    }
}

/// The closure parameter of `from_lookup(|k| std::env::var(k).ok())` (or `key`, `name`...): a
/// single lower-case identifier, forwarded from an `Env` call that the scan sees.
fn is_forwarded_lookup_key(argument: &str) -> bool {
    !argument.is_empty() && argument.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

fn collect_rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Drops comment lines and `#[cfg(test)]` items: what tests set up is not configuration.
pub fn strip_non_production(text: &str) -> String {
    let without_comments: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    strip_cfg_test_items(&without_comments)
}

fn strip_cfg_test_items(text: &str) -> String {
    const MARKER: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(MARKER) {
        out.push_str(&rest[..start]);
        let item = &rest[start + MARKER.len()..];
        rest = &item[item_end(item)..];
    }
    out.push_str(rest);
    out
}

/// Length of the item that starts `text`: up to its `;` or the `}` closing its first block.
fn item_end(text: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            ';' if depth == 0 => return i + 1,
            _ => {}
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> EnvReads {
        let stripped = strip_non_production(text);
        let constants = STR_CONST
            .captures_iter(&stripped)
            .map(|c| (c["name"].to_owned(), c["value"].to_owned()))
            .collect();
        let mut reads = EnvReads::default();
        scan_text(Path::new("x.rs"), &stripped, &constants, &mut reads);
        reads
    }

    fn names(reads: &EnvReads) -> Vec<String> {
        reads.names().into_iter().collect()
    }

    #[test]
    fn finds_env_methods_std_env_and_default_filter_reads() {
        let reads = scan(
            r#"
            fn f() {
                let a = env.string("EVENTS_TABLE", "x")?;
                let b = env.number(
                    "PRUNE_SCAN_SEGMENTS",
                    4, 1, 64,
                )?;
                let c = env.optional("ADMIN_SCOPE");
                let d = std::env::var("ADMIN_DEV_TOKEN");
                let e = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME");
                let f = EnvFilter::try_from_default_env();
            }
            "#,
        );
        assert_eq!(
            names(&reads),
            [
                "ADMIN_DEV_TOKEN",
                "ADMIN_SCOPE",
                "AWS_LAMBDA_FUNCTION_NAME",
                "EVENTS_TABLE",
                "PRUNE_SCAN_SEGMENTS",
                "RUST_LOG"
            ]
        );
        assert!(reads.unresolved.is_empty(), "{:?}", reads.unresolved);
    }

    #[test]
    fn resolves_str_constants_and_accepts_forwarded_lookups() {
        let reads = scan(
            r#"
            pub const PORT_VAR: &str = "ADMIN_API_PORT";
            fn f() { let p = env.string(PORT_VAR, "8080"); }
            fn from_env() { Self::from_lookup(|k| std::env::var(k).ok()) }
            "#,
        );
        assert_eq!(names(&reads), ["ADMIN_API_PORT"]);
        assert!(reads.unresolved.is_empty(), "{:?}", reads.unresolved);
    }

    #[test]
    fn reports_reads_it_cannot_resolve() {
        let reads = scan(
            r#"fn f() { let v = std::env::var(format!("{}_X", p)); let w = env.string(MISSING, ""); }"#,
        );
        assert!(reads.variables.is_empty());
        assert_eq!(reads.unresolved.len(), 2, "{:?}", reads.unresolved);
    }

    #[test]
    fn ignores_comments_and_test_code() {
        let reads = scan(
            r#"
            /// Reads `std::env::var("DOC_ONLY")`.
            // env.string("COMMENTED", "")
            fn f() { let a = env.optional("REAL"); }
            #[cfg(test)]
            mod tests {
                fn g() { let s = format!("{x}"); env.string("TEST_ONLY", ""); }
            }
            #[cfg(test)]
            use std::env::var;
            fn h() { let b = env.optional("AFTER_TESTS"); }
            "#,
        );
        assert_eq!(names(&reads), ["AFTER_TESTS", "REAL"]);
    }
}
