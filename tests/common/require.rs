//! Tests that drive an outside program (redis-server, haproxy, systemd-analyze, Xvfb): on a
//! machine with only Rust they skip with one line saying what to install; in CI they must run.

use std::io::Write;
use std::path::Path;

/// Whether the test may go on with `program` (looked up on `PATH`, as `Command::new` does).
///
/// - Found: `true`.
/// - Missing and `CI` is not `true`: prints one line to stderr (past the test harness's output
///   capture, so `cargo test` shows it), `skipped: <test> needs <program> (install Debian package
///   <debian_package>)`, and returns `false`; the test returns early and passes.
/// - Missing with `CI=true`: panics, so CI (whose `.ci/run` installs the packages) never passes a
///   test it did not run.
pub fn require_program(program: &str, debian_package: &str) -> bool {
    if on_path(program) {
        return true;
    }
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .map(str::to_owned)
        .unwrap_or_else(|| "this test".to_owned());
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test} needs {program}, which is not on PATH (install Debian package {debian_package}); \
             with CI=true such tests are required"
        );
    }
    // Straight to the stream: eprintln! would be captured and hidden for a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test} needs {program} (install Debian package {debian_package})"
    );
    false
}

/// Whether an executable file named `program` is in one of `PATH`'s directories.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| {
        path.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| executable(&dir.join(program)))
    })
}
