//! The skip rule for tests that need an outside program: without it and without `CI=true`, one
//! `skipped:` line and a pass; with `CI=true`, a failure. Runs this test binary again as a child,
//! so the environment can differ without touching this process's own.

mod common;

use std::process::Command;

/// Only does something inside the child run below (the variable is set only there).
#[test]
fn child_needs_a_missing_program() {
    if std::env::var_os("SECURETCP_REQUIRE_CHILD").is_none() {
        return;
    }
    if !common::require_program("securetcp-no-such-program", "no-such-package") {
        return;
    }
    unreachable!("a program that does not exist was found on PATH");
}

fn run_child(ci: Option<&str>) -> (bool, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_needs_a_missing_program",
            "--test-threads",
            "2",
        ])
        .env("SECURETCP_REQUIRE_CHILD", "1")
        .env_remove("CI");
    if let Some(value) = ci {
        command.env("CI", value);
    }
    let output = command.output().unwrap();
    // The harness reports a failed test's panic on stdout, the skip line goes to stderr.
    let said = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    (output.status.success(), said.into_owned())
}

#[test]
fn a_missing_program_skips_with_one_line_outside_ci() {
    for ci in [None, Some("false"), Some("")] {
        let (passed, stderr) = run_child(ci);
        assert!(passed, "CI={ci:?}: {stderr}");
        let skipped: Vec<_> = stderr
            .lines()
            .filter(|l| l.starts_with("skipped:"))
            .collect();
        assert_eq!(
            skipped,
            [
                "skipped: child_needs_a_missing_program needs securetcp-no-such-program \
                 (install Debian package no-such-package)"
            ],
            "CI={ci:?}: {stderr}"
        );
    }
}

#[test]
fn a_missing_program_fails_the_test_in_ci() {
    let (passed, stderr) = run_child(Some("true"));
    assert!(!passed, "passed with CI=true: {stderr}");
    assert!(
        stderr.contains("needs securetcp-no-such-program") && !stderr.contains("skipped:"),
        "{stderr}"
    );
}

#[test]
fn a_present_program_runs() {
    assert!(common::require_program("sh", "dash"));
}
