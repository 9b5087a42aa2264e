//! tallyd's command line: help, version, configuration errors and exit codes.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn tallyd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tallyd"))
}

#[test]
fn help_lists_every_flag_with_examples() {
    let out = tallyd().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--data-dir",
        "--config",
        "--log-level",
        "--storage-fsync",
        "--http-max-body-size",
        "--query-timeout",
        "Examples:",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}:\n{text}");
    }
}

#[test]
fn version_prints_the_package_version() {
    let out = tallyd().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains(env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn print_config_emits_toml_that_loads_back() {
    let out = tallyd()
        .args(["--print-config", "--storage-fsync", "never"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tally.toml");
    std::fs::write(&path, &out.stdout).unwrap();
    let again = tallyd()
        .args(["--print-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(again.stdout, out.stdout);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("fsync = \"never\"")
    );
}

#[test]
fn a_bad_option_exits_2_and_names_the_option() {
    let out = tallyd()
        .args(["--storage-fsync", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("storage.fsync") && err.contains("sometimes"),
        "{err}"
    );
    let out = tallyd().args(["--listen", "localhost"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("listen address")
    );
}

#[test]
fn a_locked_data_directory_is_reported_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut first = tallyd()
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first holds the lock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "first tallyd never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let port2 = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tallyd()
        .args(["--listen", &format!("127.0.0.1:{port2}"), "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("locked by another process"), "{err}");
}
