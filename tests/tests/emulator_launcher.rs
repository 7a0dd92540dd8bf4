//! The local emulator's launcher (tools/moto/launcher.py) answers Queries with moto's own
//! documents: its Python tests (tools/moto/test_launcher.py) send the same requests to the
//! launcher and to moto's unpatched server and compare the answers, every attribute type,
//! limits, start keys and 1 MB pages cut to the byte included.

use std::process::Command;

use integration_tests::workspace::root;

#[test]
fn the_launchers_queries_answer_as_moto_does() {
    let root = root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/venv.sh (make test does)",
        python.display()
    );
    let output = Command::new(&python)
        .args(["-m", "unittest", "-v", "tools/moto/test_launcher.py"])
        .current_dir(&root)
        .output()
        .expect("the virtualenv's python runs");
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "launcher tests failed:\n{report}");
    // Every test ran (none skipped or missing).
    assert!(report.contains("Ran 6 tests"), "{report}");
    assert!(report.trim_end().ends_with("OK"), "{report}");
}
