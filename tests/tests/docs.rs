//! The design in `docs/` is what comments cite: every `docs/<page>.md` or
//! `docs/<page>.md#<section>` reference in the sources, the template and the README names a
//! page and a heading that exist, and no comment cites a page outside the repository.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use integration_tests::workspace::root;
use regex::Regex;

/// Where references live: the crates' sources, tests and benches, the template, the README.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            // Build output, virtualenvs, local state and VCS data are not ours to check.
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                sources(&path, found);
            }
        } else if [".rs", ".toml", ".yaml", ".sh", ".md"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            found.push(path);
        }
    }
}

/// GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(page: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(page).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            line.trim_start_matches('#')
                .strip_prefix(' ')
                .filter(|_| line.starts_with('#'))
        })
        .map(anchor)
        .collect()
}

#[test]
fn every_docs_reference_resolves_to_a_page_and_section() {
    let root = root();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let reference = Regex::new(r"docs/([A-Za-z0-9-]+\.md)(?:#([a-z0-9_-]+))?").unwrap();
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        for captures in reference.captures_iter(&text) {
            checked += 1;
            let page = root.join("docs").join(&captures[1]);
            if !page.is_file() {
                broken.push(format!("{shown}: {} has no page", &captures[0]));
                continue;
            }
            if let Some(section) = captures.get(2) {
                if !anchors(&page).contains(section.as_str()) {
                    broken.push(format!("{shown}: {} has no such section", &captures[0]));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken docs references:\n{}",
        broken.join("\n")
    );
    assert!(
        checked >= 10,
        "only {checked} references found: is the scan looking in the right place?"
    );
}

#[test]
fn no_comment_cites_the_specification_outside_the_repository() {
    let root = root();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs" || e == "yaml"))
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .contains(concat!("SPEC", " §"))
        })
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "cite docs/<page>.md#<section>, not the specification's section numbers, in: {offenders:?}"
    );
}

#[test]
fn the_readme_links_the_design_and_the_design_index_lists_every_page() {
    let root = root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("](docs/README.md)"),
        "README links docs/README.md"
    );
    let index = std::fs::read_to_string(root.join("docs/README.md")).unwrap();
    for entry in std::fs::read_dir(root.join("docs")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().extension().is_some_and(|e| e == "md") && name != "README.md" {
            assert!(
                index.contains(&format!("]({name})")),
                "docs/README.md links {name}"
            );
        }
    }
}

#[test]
fn anchors_follow_github_rules() {
    assert_eq!(anchor("Snapshot table"), "snapshot-table");
    assert_eq!(
        anchor("Flaws of the original design, fixed"),
        "flaws-of-the-original-design-fixed"
    );
    assert_eq!(anchor("INVENTORY_ITEM"), "inventory_item");
}
