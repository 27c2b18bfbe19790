//! The systemd units shipped in `deploy/` are valid for systemd and keep their sandbox:
//! `systemd-analyze verify` accepts them (with ExecStart pointed at the binary just built), and
//! `systemd-analyze security --offline` rates the service's exposure low.

mod common;

use std::process::Command;

use common::TestDir;

fn units_in(dir: &std::path::Path) {
    let root = env!("CARGO_MANIFEST_DIR");
    let service = std::fs::read_to_string(format!("{root}/deploy/securetcp.service")).unwrap();
    let service = service.replace("/usr/local/bin/securetcp", env!("CARGO_BIN_EXE_securetcp"));
    std::fs::write(dir.join("securetcp.service"), service).unwrap();
    std::fs::copy(
        format!("{root}/deploy/securetcp.socket"),
        dir.join("securetcp.socket"),
    )
    .unwrap();
}

#[test]
fn the_units_verify_and_the_sandbox_is_tight() {
    if !common::require_program("systemd-analyze", "systemd") {
        return;
    }
    let dir = TestDir::new("units");
    units_in(&dir.0);
    let verify = Command::new("systemd-analyze")
        .args(["verify", "./securetcp.socket", "./securetcp.service"])
        .current_dir(&dir.0)
        .output()
        .expect("systemd-analyze (Debian package systemd; .ci/run installs it)");
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{said}");
    assert!(
        !said.contains("securetcp."),
        "warnings about our units: {said}"
    );

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "./securetcp.service"])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    let level: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for securetcp.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    assert!(level < 2.0, "exposure {level}:\n{report}");
}
