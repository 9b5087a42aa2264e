//! The harness of the shell's end-to-end tests: a real server in a temporary directory, data
//! loaded over HTTP, and the built `tally` binary run against it.
//!
//! [`start_server`] is the one place that knows which server runs: the real `tallyd`, found
//! next to the test binary (or at `$TALLYD_BIN`). The tests were first written against
//! InfluxDB 1.x, whose `/query` answers the same JSON; they pass against both.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]
#![allow(
    clippy::unwrap_used,
    reason = "test harness: a failure to set up is a test failure, reported by the panic"
)]

use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to answer `/ping` before the test gives up. A guard against a
/// hang, not a measurement: startup normally takes a fraction of a second.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);

/// A running server, stopped when dropped.
pub(crate) struct TestServer {
    pub(crate) url: String,
    child: Child,
    directory: TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server the tests talk to: tallyd on a free port with a fresh data directory.
pub(crate) fn start_server() -> TestServer {
    // A free port can be taken by another process between choosing it and tallyd binding it;
    // a second try with a new port gets past that.
    let mut failures = Vec::new();
    for _ in 0..3 {
        match start_tallyd() {
            Ok(server) => return server,
            Err(failure) => failures.push(failure),
        }
    }
    panic!("tallyd did not start:\n{}", failures.join("\n---\n"));
}

/// The tallyd binary: next to this test's directory in the target tree, or `$TALLYD_BIN`.
fn tallyd_binary() -> PathBuf {
    if let Ok(path) = std::env::var("TALLYD_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join("tallyd");
    assert!(
        path.exists(),
        "{} not found: build it first (`cargo build --workspace --bins`) or set $TALLYD_BIN",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A port on 127.0.0.1 that nothing listens on, for the refused-connection tests.
pub(crate) fn closed_port() -> u16 {
    free_port()
}

fn start_tallyd() -> Result<TestServer, String> {
    let directory = tempfile::tempdir().unwrap();
    let port = free_port();
    let log_path = directory.path().join("tallyd.log");
    let log = File::create(&log_path).unwrap();
    let child = Command::new(tallyd_binary())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(directory.path().join("data"))
        // The samples have fixed timestamps: keep raw data forever.
        .args(["--storage-retention-raw", "inf"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut server = TestServer {
        url: format!("http://127.0.0.1:{port}"),
        child,
        directory,
    };
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return Err(format!(
                "tallyd exited with {status}:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            ));
        }
        let ping = ureq::get(format!("{}/ping", server.url)).call();
        if ping.is_ok_and(|response| response.status().as_u16() == 204) {
            return Ok(server);
        }
        if started.elapsed() > STARTUP_LIMIT {
            let _ = server.child.kill();
            return Err(format!(
                "tallyd did not answer /ping within {STARTUP_LIMIT:?}:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            ));
        }
        sleep(Duration::from_millis(50));
    }
}

impl TestServer {
    /// Runs `query` through the HTTP API directly, bypassing the shell; returns the body.
    pub(crate) fn query(&self, query: &str) -> String {
        let mut response = ureq::post(format!("{}/query", self.url))
            .query("q", query)
            .send_empty()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{query}");
        response.body_mut().read_to_string().unwrap()
    }

    /// Creates `database` and writes line protocol into it, timestamps in seconds.
    pub(crate) fn load(&self, database: &str, lines: &str) {
        self.query(&format!("CREATE DATABASE \"{database}\""));
        let response = ureq::post(format!("{}/write", self.url))
            .query("db", database)
            .query("precision", "s")
            .send(lines)
            .unwrap();
        assert_eq!(response.status().as_u16(), 204, "writing {lines}");
    }

    /// A scratch directory that lives as long as the server.
    pub(crate) fn scratch_path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }
}

/// Points in 2026-11-30 from two measurements: GPUs of one host, and LLM requests with a
/// tag value in Japanese and a field that is sometimes missing.
pub(crate) const SAMPLE_LINES: &str = "\
gpu,host=node-1,gpu=0 util=97.5,memory_used=40000i 1795996800
gpu,host=node-1,gpu=1 util=12,memory_used=1024i 1795996800
gpu,host=node-1,gpu=0 util=95,memory_used=41000i 1795996860
llm,provider=openai,model=gpt-4o completion_tokens=120i,latency_ms=850.5,status=\"ok\" 1795996800
llm,provider=anthropic,model=ソネット completion_tokens=300i,latency_ms=1200 1795996830
";

/// A server with [`SAMPLE_LINES`] loaded into the database `llmtest`.
pub(crate) fn server_with_samples() -> TestServer {
    let server = start_server();
    server.load("llmtest", SAMPLE_LINES);
    server
}

/// The `tally` binary, aimed at `url`, in an environment that cannot redirect it.
pub(crate) fn tally_command(url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
    command.arg("--host").arg(url);
    for variable in [
        "TALLY_HOST",
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        command.env_remove(variable);
    }
    command
}

/// What one run of `tally` did.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

/// Runs `tally --host url args...` with `stdin` on its standard input.
pub(crate) fn run_tally(url: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = tally_command(url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap().into()
}
