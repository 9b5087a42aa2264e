//! A small harness for end-to-end tests: start the real `tallyd` on a free 127.0.0.1 port with
//! a temporary data directory, talk HTTP to it, stop it with SIGTERM or kill it with SIGKILL.
//!
//! The binary is found next to the test executable (`target/<profile>/tallyd`, built because
//! the server crate has integration tests of its own) or at `$TALLYD_BIN`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary such as `tallyd` or `tally`.
pub fn binary(name: &str) -> PathBuf {
    let env = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Ok(path) = std::env::var(&env) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build it first (`cargo build --workspace --bins`) or set ${env}",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running tallyd.
pub struct Tallyd {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

/// An HTTP response: status, lower-cased headers, body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Tallyd {
    /// Starts tallyd with a fresh temporary data directory.
    pub fn start(args: &[&str]) -> Tallyd {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("data");
        let mut t = Tallyd::start_in(&dir, args);
        t._temp = Some(temp);
        t
    }

    /// Starts tallyd on `data_dir` (kept after the test).
    pub fn start_in(data_dir: &Path, args: &[&str]) -> Tallyd {
        let port = free_port();
        let log = data_dir.with_extension(format!("{port}.log"));
        std::fs::create_dir_all(data_dir.parent().unwrap()).unwrap();
        let log_file = std::fs::File::create(&log).unwrap();
        // Tests write fixed, often old, timestamps: keep raw data forever unless the test sets
        // a retention itself (tallyd's default of 7 days would refuse them).
        let retention: &[&str] = if args
            .iter()
            .any(|a| a.starts_with("--storage-retention-raw"))
        {
            &[]
        } else {
            &["--storage-retention-raw", "inf"]
        };
        let child = Command::new(binary("tallyd"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(retention)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut t = Tallyd {
            child: Some(child),
            port,
            data_dir: data_dir.to_path_buf(),
            log,
            _temp: None,
        };
        t.wait_ready();
        t
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "tallyd exited with {status} before it was ready:\n{}",
                    self.log_text()
                );
            }
            if let Ok(r) = self.try_request("GET", "/ping", &[], b"")
                && r.status == 204
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "tallyd did not answer /ping within 60 s:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        request(self.port, method, path, headers, body)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log_text()))
    }

    /// `POST /write?db=DB&precision=ns` with a line protocol body.
    pub fn write(&self, db: &str, body: &str) -> Response {
        self.request(
            "POST",
            &format!("/write?db={}&precision=ns", encode(db)),
            &[],
            body.as_bytes(),
        )
    }

    /// `GET /query?db=DB&epoch=ns&q=...`, returning the JSON answer.
    pub fn query(&self, db: &str, q: &str) -> serde_json::Value {
        let r = self.request(
            "GET",
            &format!("/query?db={}&epoch=ns&q={}", encode(db), encode(q)),
            &[],
            b"",
        );
        assert_eq!(r.status, 200, "query {q:?} failed: {}", r.text());
        r.json()
    }

    /// Sends SIGTERM and waits; asserts a clean exit.
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        send_signal(child.id(), libc::SIGTERM);
        let status = wait_timeout(&mut child, Duration::from_secs(60));
        assert!(
            status.success(),
            "tallyd exited with {status} after SIGTERM:\n{}",
            self.log_text()
        );
    }

    /// Kills with SIGKILL (a crash).
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Tallyd {
    /// Starts tallyd with a fresh temporary data directory and extra environment variables
    /// (secrets such as `TALLY_SMTP_PASSWORD` that tallyd reads only from the environment).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Tallyd {
        let temp = tempfile::tempdir().unwrap();
        let data_dir = temp.path().join("data");
        let port = free_port();
        let log = data_dir.with_extension(format!("{port}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary("tallyd"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--storage-retention-raw", "inf"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut t = Tallyd {
            child: Some(child),
            port,
            data_dir,
            log,
            _temp: Some(temp),
        };
        t.wait_ready();
        t
    }
}

impl Drop for Tallyd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn send_signal(pid: u32, signal: i32) {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid as i32, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Percent-encodes a query-string value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One HTTP/1.1 request on a fresh connection.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::other(format!(
            "malformed response: {:?}",
            String::from_utf8_lossy(&raw)
        ))
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..line_end])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// The rows of the first series of the first statement, or an empty list.
pub fn rows(answer: &serde_json::Value) -> Vec<Vec<serde_json::Value>> {
    answer["results"][0]["series"][0]["values"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// Feeding a tallyd with the benchmark generator's data (`../shared/bench/gen.py`), moved in
/// time so that its window ends now: the dashboard's relative ranges ("last hour") then show it.
pub mod gen_data {
    use std::path::PathBuf;
    use std::process::Command;
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::Tallyd;

    /// The end of gen.py's fixed window, 2026-12-01T00:00:00Z, in nanoseconds.
    const WINDOW_END_NS: i64 = 1_796_083_200_000_000_000;
    /// Lines per write request.
    const LINES_PER_WRITE: usize = 20_000;

    /// What to generate: gen.py's `--days`, `--hosts`, `--gpus`, `--llm-rate`, and how many of
    /// the last hours of the window to keep.
    #[derive(Clone, Copy, Debug)]
    pub struct GenOptions {
        pub days: u32,
        pub hosts: u32,
        pub gpus: u32,
        pub llm_rate: f64,
        pub keep_hours: f64,
    }

    /// Path of gen.py: `$TALLY_GEN_PY`, or `shared/bench/gen.py` beside the repository, or the
    /// copy kept in `tests/data/` so a clone alone can run the tests.
    pub fn gen_py() -> PathBuf {
        if let Ok(path) = std::env::var("TALLY_GEN_PY") {
            return PathBuf::from(path);
        }
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let shared = manifest.join("../../shared/bench/gen.py");
        if shared.exists() {
            return shared;
        }
        let kept = manifest.join("data/gen.py");
        assert!(
            kept.exists(),
            "{} not found: the dashboard and report tests need the shared benchmark generator (set $TALLY_GEN_PY)",
            kept.display()
        );
        kept
    }

    /// Now in nanoseconds, rounded down to 10 s so gen.py's 5 s and 10 s grids stay aligned.
    pub fn now_ns_aligned() -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        now - now.rem_euclid(10_000_000_000)
    }

    /// Runs gen.py and returns its lines, shifted so the window ends at `end_ns` and cut to
    /// the last `keep_hours`.
    pub fn generate(options: GenOptions, end_ns: i64) -> Vec<String> {
        let output = Command::new("python3")
            .arg(gen_py())
            .args(["--scale", "small", "--seed", "7"])
            .args(["--days", &options.days.to_string()])
            .args(["--hosts", &options.hosts.to_string()])
            .args(["--gpus", &options.gpus.to_string()])
            .args(["--llm-rate", &options.llm_rate.to_string()])
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 (needed for gen.py): {e}"));
        assert!(
            output.status.success(),
            "gen.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let shift = end_ns - WINDOW_END_NS;
        let cut = WINDOW_END_NS - (options.keep_hours * 3600e9) as i64;
        let text = String::from_utf8(output.stdout).unwrap();
        text.lines()
            .filter_map(|line| {
                let (head, time) = line.rsplit_once(' ')?;
                let time: i64 = time.parse().ok()?;
                (time >= cut).then(|| format!("{head} {}", time + shift))
            })
            .collect()
    }

    /// Inference-server processes in the schema of the process sampler (Telegraf's procstat),
    /// which gen.py does not write: `vllm` and `ollama` on each host, every 10 s until `end_ns`.
    pub fn procstat_lines(hosts: u32, hours: f64, end_ns: i64) -> Vec<String> {
        let n_samples = (hours * 360.0) as i64;
        let mut lines = Vec::new();
        for sample in 0..n_samples {
            let time = end_ns - sample * 10_000_000_000;
            for host in 1..=hosts {
                for (name, cpu, rss) in [("vllm", 180.0, 24.0e9), ("ollama", 20.0, 3.0e9)] {
                    let wobble = (sample % 37) as f64;
                    lines.push(format!(
                        "procstat,host=gpu-node-{host:02},pattern={name},pid={},process_name={name} cpu_usage={},memory_rss={}i,memory_vms={}i,num_threads=64i {time}",
                        4000 + host,
                        cpu + wobble,
                        rss as i64 + sample * 1_000_000,
                        (rss * 2.0) as i64
                    ));
                }
            }
        }
        lines
    }

    /// Writes `lines` into `db`, in batches, asserting each batch is stored whole.
    pub fn write_lines(tallyd: &Tallyd, db: &str, lines: &[String]) {
        for batch in lines.chunks(LINES_PER_WRITE) {
            let response = tallyd.write(db, &batch.join("\n"));
            assert_eq!(response.status, 204, "write failed: {}", response.text());
        }
    }
}

/// A headless Chromium driven through chromedriver's WebDriver HTTP API (W3C), for the
/// dashboard's browser tests. Needs Debian's `chromium` and `chromium-driver`; a test that
/// uses it fails (never skips) with the install command when they are missing.
pub mod browser {
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};

    use super::{Response, free_port, parse_response};

    /// One HTTP/1.1 request to chromedriver. It keeps connections open whatever the client
    /// asks, so the answer is read up to its Content-Length rather than to the end.
    fn request(
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        let mut buffer = [0u8; 64 * 1024];
        loop {
            let n = stream.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buffer[..n]);
            let Some(end_of_head) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&raw[..end_of_head]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(length) = length
                && raw.len() >= end_of_head + 4 + length
            {
                raw.truncate(end_of_head + 4 + length);
                break;
            }
        }
        parse_response(&raw).ok_or_else(|| {
            std::io::Error::other(format!(
                "malformed response: {:?}",
                String::from_utf8_lossy(&raw)
            ))
        })
    }

    /// The key W3C WebDriver uses for element references.
    const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

    fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
        if let Ok(path) = std::env::var(env) {
            return Some(PathBuf::from(path));
        }
        let paths = std::env::var("PATH").unwrap_or_default();
        for dir in std::env::split_paths(&paths) {
            for name in names {
                let candidate = dir.join(name);
                if candidate.is_file() {
                    return Some(candidate);
                }
            }
        }
        None
    }

    fn missing(what: &str, env: &str) -> ! {
        panic!(
            "{what} not found: the dashboard's browser tests need Debian's packages chromium and chromium-driver \
             (install them with `apt-get install -y chromium chromium-driver`, as .ci/run does), \
             or set ${env} to the program"
        )
    }

    pub struct Browser {
        driver: Child,
        port: u16,
        session: String,
        _profile: tempfile::TempDir,
    }

    impl Browser {
        /// Starts chromedriver and a headless Chromium with a new, empty profile, its window
        /// `width` x `height` CSS pixels.
        pub fn start(width: u32, height: u32) -> Browser {
            let chromium = find_program("CHROMIUM_BIN", &["chromium", "chromium-browser"])
                .unwrap_or_else(|| missing("chromium", "CHROMIUM_BIN"));
            let chromedriver = find_program("CHROMEDRIVER_BIN", &["chromedriver"])
                .unwrap_or_else(|| missing("chromedriver", "CHROMEDRIVER_BIN"));
            let profile = tempfile::tempdir().unwrap();
            let port = free_port();
            let driver = Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
            let mut browser = Browser {
                driver,
                port,
                session: String::new(),
                _profile: profile,
            };
            browser.wait_for_driver();
            let args = [
                "--headless".to_string(),
                "--no-sandbox".into(),
                "--disable-gpu".into(),
                "--disable-quic".into(),
                "--no-first-run".into(),
                "--disable-background-networking".into(),
                "--disable-component-update".into(),
                "--disable-sync".into(),
                "--disable-dev-shm-usage".into(),
                "--hide-scrollbars".into(),
                format!("--user-data-dir={}", browser._profile.path().display()),
                format!("--window-size={width},{height}"),
            ];
            let capabilities = json!({
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": { "binary": chromium, "args": args },
                        "goog:loggingPrefs": { "browser": "ALL" },
                    }
                }
            });
            let answer = browser.call("POST", "/session", Some(capabilities));
            browser.session = answer["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("chromedriver did not start a session: {answer}"))
                .to_string();
            browser
        }

        fn wait_for_driver(&mut self) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(r) = request(self.port, "GET", "/status", &[], b"")
                    && r.status == 200
                {
                    return;
                }
                if let Ok(Some(status)) = self.driver.try_wait() {
                    panic!("chromedriver exited with {status} at start");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!("chromedriver did not answer within 30 s");
        }

        /// One WebDriver command; returns its `value`, panicking on a WebDriver error.
        fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
            self.try_call(method, path, body)
                .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
        }

        fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
            let body = body.map(|b| b.to_string()).unwrap_or_default();
            let headers: &[(&str, &str)] = if body.is_empty() {
                &[]
            } else {
                &[("Content-Type", "application/json")]
            };
            let response = request(self.port, method, path, headers, body.as_bytes())
                .map_err(|e| format!("cannot reach chromedriver: {e}"))?;
            let answer: Value = serde_json::from_slice(&response.body)
                .map_err(|e| format!("not JSON ({e}): {}", response.text()))?;
            if response.status != 200 {
                return Err(format!(
                    "{}: {}",
                    answer["value"]["error"], answer["value"]["message"]
                ));
            }
            Ok(answer["value"].clone())
        }

        fn session_path(&self, rest: &str) -> String {
            format!("/session/{}{rest}", self.session)
        }

        pub fn goto(&self, url: &str) {
            self.call(
                "POST",
                &self.session_path("/url"),
                Some(json!({ "url": url })),
            );
        }

        /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
        pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
            self.call(
                "POST",
                &self.session_path("/execute/sync"),
                Some(json!({ "script": script, "args": args })),
            )
        }

        /// Polls `script` until it returns true, or panics after `timeout` with `what`.
        pub fn wait_until(&self, script: &str, timeout: Duration, what: &str) {
            let deadline = Instant::now() + timeout;
            loop {
                if self.execute(script, vec![]) == Value::Bool(true) {
                    return;
                }
                if Instant::now() > deadline {
                    panic!(
                        "timed out after {timeout:?} waiting for {what}; console: {:?}",
                        self.console_messages()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }

        /// The reference of the first element matching a CSS selector.
        pub fn find(&self, css: &str) -> String {
            let found = self.call(
                "POST",
                &self.session_path("/element"),
                Some(json!({ "using": "css selector", "value": css })),
            );
            found[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css:?}: {found}"))
                .to_string()
        }

        pub fn click(&self, css: &str) {
            let element = self.find(css);
            self.call(
                "POST",
                &self.session_path(&format!("/element/{element}/click")),
                Some(json!({})),
            );
        }

        /// Types into an element (WebDriver key codes such as `\u{E004}` for Tab work).
        pub fn type_into(&self, css: &str, text: &str) {
            let element = self.find(css);
            self.call(
                "POST",
                &self.session_path(&format!("/element/{element}/value")),
                Some(json!({ "text": text })),
            );
        }

        pub fn clear(&self, css: &str) {
            let element = self.find(css);
            self.call(
                "POST",
                &self.session_path(&format!("/element/{element}/clear")),
                Some(json!({})),
            );
        }

        /// Presses the mouse at `from_x` pixels from the centre of the element, moves to
        /// `to_x` and releases: a drag, as a person selects a range on a chart.
        pub fn drag_horizontally(&self, css: &str, from_x: i64, to_x: i64) {
            let element = self.find(css);
            let origin = json!({ ELEMENT_KEY: element });
            let actions = json!({ "actions": [{
                "type": "pointer",
                "id": "mouse",
                "parameters": { "pointerType": "mouse" },
                "actions": [
                    { "type": "pointerMove", "duration": 0, "origin": origin, "x": from_x, "y": 0 },
                    { "type": "pointerDown", "button": 0 },
                    { "type": "pointerMove", "duration": 150, "origin": origin, "x": (from_x + to_x) / 2, "y": 0 },
                    { "type": "pointerMove", "duration": 150, "origin": origin, "x": to_x, "y": 0 },
                    { "type": "pointerUp", "button": 0 },
                ]
            }]});
            self.call("POST", &self.session_path("/actions"), Some(actions));
            self.call("DELETE", &self.session_path("/actions"), None);
        }

        pub fn set_window_size(&self, width: u32, height: u32) {
            self.call(
                "POST",
                &self.session_path("/window/rect"),
                Some(json!({ "width": width, "height": height })),
            );
        }

        /// A PNG of the viewport.
        pub fn screenshot(&self) -> Vec<u8> {
            let encoded = self.call("GET", &self.session_path("/screenshot"), None);
            decode_base64(encoded.as_str().unwrap_or_default())
                .unwrap_or_else(|| panic!("the screenshot is not base64"))
        }

        /// A PNG of the whole page at `width`: the window is made as tall as the page first.
        pub fn full_page_screenshot(&self, width: u32) -> Vec<u8> {
            let height = self
                .execute(
                    "return Math.ceil(document.documentElement.scrollHeight);",
                    vec![],
                )
                .as_u64()
                .unwrap_or(900)
                .clamp(400, 8000) as u32;
            self.set_window_size(width, height);
            std::thread::sleep(Duration::from_millis(400));
            self.screenshot()
        }

        /// Everything the page wrote to the console (and every failed load), as "LEVEL message".
        pub fn console_messages(&self) -> Vec<String> {
            let Ok(entries) = self.try_call(
                "POST",
                &self.session_path("/se/log"),
                Some(json!({ "type": "browser" })),
            ) else {
                return Vec::new();
            };
            entries
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .map(|e| {
                            format!(
                                "{} {}",
                                e["level"].as_str().unwrap_or("?"),
                                e["message"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            if !self.session.is_empty() {
                let _ = self.try_call("DELETE", &self.session_path(""), None);
            }
            let _ = self.driver.kill();
            let _ = self.driver.wait();
        }
    }

    /// Decodes standard base64 (with or without padding); `None` on any other character.
    pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(text.len() / 4 * 3);
        let mut buffer: u32 = 0;
        let mut bits = 0;
        for byte in text.bytes() {
            let value = match byte {
                b'A'..=b'Z' => byte - b'A',
                b'a'..=b'z' => byte - b'a' + 26,
                b'0'..=b'9' => byte - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' | b'\n' | b'\r' => continue,
                _ => return None,
            };
            buffer = (buffer << 6) | u32::from(value);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        Some(out)
    }

    /// Saves a screenshot under the test's target directory and, when
    /// `TALLY_UPDATE_SCREENSHOTS=1`, into `docs/images/` (the pictures docs/dashboard.md shows).
    pub fn save_screenshot(name: &str, png: &[u8], target_dir: &Path) -> PathBuf {
        assert!(
            png.starts_with(b"\x89PNG"),
            "the screenshot {name} is not a PNG"
        );
        let dir = target_dir.join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        if std::env::var("TALLY_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
            let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/images");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(name), png).unwrap();
        }
        path
    }

    #[cfg(test)]
    mod tests {
        use super::decode_base64;

        #[test]
        fn base64_decodes_with_and_without_padding() {
            assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
            assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
            assert_eq!(decode_base64("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
            assert!(decode_base64("a*b").is_none());
        }
    }
}
