//! Alert rules end to end: a real tallyd evaluates rules over data written by the test and
//! notifies a real Alertmanager (`prometheus-alertmanager`), a webhook and a Slack-style
//! receiver run by the test, and a local SMTP server (Python's `aiosmtpd`) with STARTTLS and
//! AUTH; bad rules are rejected with their positions while the good ones keep running; rules
//! and alert state survive a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tally_tests::{Tallyd, free_port};

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Polls `probe` until it gives a value, or fails naming `what`.
fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fails (never skips) when a peer program is missing, naming the package that provides it.
fn require_program(program: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is not installed: install the Debian package `{package}` (apt-get install {package}); .ci/run does"
    );
}

/// A process the test started, killed when the test ends.
struct Peer {
    child: Child,
    log: PathBuf,
}

impl Peer {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_port(port: u16, peer: &mut Peer, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = peer.child.try_wait().unwrap() {
            panic!("{name} exited with {status}:\n{}", peer.log_text());
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not listen on {port}:\n{}",
            peer.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A rules file and a tallyd configuration file in `dir`; returns the configuration's path.
fn write_config(dir: &Path, rules: &str, config: &str) -> PathBuf {
    let rules_path = dir.join("rules.toml");
    std::fs::write(&rules_path, rules).unwrap();
    let config_path = dir.join("tally.toml");
    let text = format!(
        "[alerts]\nrules_file = {:?}\nevaluation_interval = \"1s\"\nnotify_backoff = \"100ms\"\n{config}",
        rules_path.display().to_string()
    );
    std::fs::write(&config_path, text).unwrap();
    config_path
}

fn start_tallyd(config: &Path, args: &[&str]) -> Tallyd {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    Tallyd::start(&all)
}

fn gpu_point(tallyd: &Tallyd, host: &str, temperature: f64) {
    let r = tallyd.write(
        "telemetry",
        &format!(
            "nvidia_smi,host={host},index=0 temperature_gpu={temperature} {}",
            now_ns()
        ),
    );
    assert_eq!(r.status, 204, "write failed: {}", r.text());
}

const GPU_RULE: &str = r#"
[[rule]]
name = "gpu_temperature_high"
database = "telemetry"
query = "SELECT last(temperature_gpu) FROM nvidia_smi WHERE time > now() - 1h AND time <= now() GROUP BY host, index"
condition = "> 85"
interval = "1s"
severity = "critical"
[rule.labels]
team = "infra"
[rule.annotations]
summary = "GPU {{ $labels.index }} on {{ $labels.host }} is at {{ $value }} °C"
"#;

fn api_alerts(tallyd: &Tallyd) -> Vec<Value> {
    let r = tallyd.request("GET", "/api/v1/alerts", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["alerts"].as_array().cloned().unwrap_or_default()
}

fn alert_in_state(tallyd: &Tallyd, rule: &str, host: &str, state: &str) -> Option<Value> {
    api_alerts(tallyd)
        .into_iter()
        .find(|a| a["rule"] == rule && a["labels"]["host"] == host && a["state"] == state)
}

// ---------------------------------------------------------------- Alertmanager

fn start_alertmanager(dir: &Path) -> (Peer, u16) {
    require_program("prometheus-alertmanager", "prometheus-alertmanager");
    let port = free_port();
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let log = dir.join("alertmanager.log");
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut peer = Peer { child, log };
    wait_port(port, &mut peer, "prometheus-alertmanager");
    wait_for("Alertmanager to be ready", Duration::from_secs(30), || {
        tally_tests::request(port, "GET", "/-/ready", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    (peer, port)
}

fn alertmanager_alerts(port: u16) -> Vec<Value> {
    let r = tally_tests::request(port, "GET", "/api/v2/alerts", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().cloned().unwrap_or_default()
}

#[test]
fn a_firing_alert_reaches_alertmanager_with_labels_and_annotations_and_resolves_there() {
    let dir = tempfile::tempdir().unwrap();
    let (alertmanager, am_port) = start_alertmanager(dir.path());
    let config = write_config(dir.path(), GPU_RULE, "");
    let am_url = format!("http://127.0.0.1:{am_port}");
    let tallyd = start_tallyd(
        &config,
        &[
            "--alerts-alertmanager-url",
            &am_url,
            "--alerts-external-url",
            "http://tally.example:8086",
        ],
    );
    gpu_point(&tallyd, "gpu-1", 91.0);
    gpu_point(&tallyd, "gpu-2", 60.0);

    let alert = wait_for("the alert in Alertmanager", Duration::from_secs(30), || {
        alertmanager_alerts(am_port)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "gpu_temperature_high")
    });
    assert_eq!(alert["labels"]["host"], "gpu-1", "{alert}");
    assert_eq!(alert["labels"]["index"], "0");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["team"], "infra");
    assert_eq!(
        alert["annotations"]["summary"],
        "GPU 0 on gpu-1 is at 91 °C"
    );
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("http://tally.example:8086/"),
        "{alert}"
    );
    // Only the hot GPU fires.
    let hosts: Vec<Value> = alertmanager_alerts(am_port)
        .iter()
        .map(|a| a["labels"]["host"].clone())
        .collect();
    assert_eq!(hosts, vec![json!("gpu-1")], "{}", alertmanager.log_text());

    gpu_point(&tallyd, "gpu-1", 70.0);
    wait_for(
        "the alert to resolve in Alertmanager",
        Duration::from_secs(30),
        || {
            let now = SystemTime::now();
            let still_active = alertmanager_alerts(am_port).into_iter().any(|a| {
                a["labels"]["alertname"] == "gpu_temperature_high"
                    && a["endsAt"]
                        .as_str()
                        .and_then(parse_rfc3339)
                        .is_none_or(|end| end > now)
            });
            (!still_active).then_some(())
        },
    );
    assert!(alert_in_state(&tallyd, "gpu_temperature_high", "gpu-1", "resolved").is_some());
    tallyd.stop();
}

/// Enough of RFC 3339 for Alertmanager's times (`2026-12-04T19:00:00.123Z`).
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let time = time.trim_end_matches('Z');
    let (clock, offset) = match time.rfind(['+', '-']) {
        Some(i) => (&time[..i], &time[i..]),
        None => (time, "+00:00"),
    };
    let mut c = clock.split(':');
    let (h, min) = (
        c.next()?.parse::<i64>().ok()?,
        c.next()?.parse::<i64>().ok()?,
    );
    let secs: f64 = c.next()?.parse().ok()?;
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let mut o = offset[1..].split(':');
    let off = sign * (o.next()?.parse::<i64>().ok()? * 3600 + o.next()?.parse::<i64>().ok()? * 60);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let total = days * 86_400 + h * 3600 + min * 60 - off;
    Some(UNIX_EPOCH + Duration::from_secs_f64(total as f64 + secs))
}

// ---------------------------------------------------------------- webhooks

/// An HTTP server run by the test: every request's path and JSON body goes to the channel.
fn webhook_server() -> (u16, mpsc::Receiver<(String, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let _ = tx.send((path, json));
                    if stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

/// What the webhook server received, in order; a notification is taken out once it is matched.
struct Inbox {
    rx: mpsc::Receiver<(String, Value)>,
    unmatched: Vec<(String, Value)>,
}

impl Inbox {
    fn new(rx: mpsc::Receiver<(String, Value)>) -> Inbox {
        Inbox {
            rx,
            unmatched: Vec::new(),
        }
    }

    /// The first notification at `path` whose status is `status` (`FIRING` or `RESOLVED`).
    fn take(&mut self, path: &str, status: &str) -> Value {
        let matches = |p: &str, body: &Value| {
            p == path
                && if path == "/slack" {
                    body["text"].as_str().unwrap_or("").contains(status)
                } else {
                    body["status"] == status.to_lowercase()
                }
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(i) = self.unmatched.iter().position(|(p, b)| matches(p, b)) {
                return self.unmatched.remove(i).1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let received = self.rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no {status} notification at {path} within 30 s; got {:?}",
                    self.unmatched
                )
            });
            self.unmatched.push(received);
        }
    }

    fn is_empty(&mut self) -> bool {
        while let Ok(received) = self.rx.try_recv() {
            self.unmatched.push(received);
        }
        self.unmatched.is_empty()
    }
}

#[test]
fn webhook_and_slack_receivers_get_firing_and_resolved_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let (port, rx) = webhook_server();
    let mut inbox = Inbox::new(rx);
    let receivers = format!(
        "default_receivers = [\"hook\", \"chat\"]\n\
         [[alerts.receiver]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n\
         headers = {{ Authorization = \"Bearer s3cret\" }}\n\
         [[alerts.receiver]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"http://127.0.0.1:{port}/slack\"\n"
    );
    let config = write_config(dir.path(), GPU_RULE, &receivers);
    let tallyd = start_tallyd(&config, &[]);
    let written = Instant::now();
    gpu_point(&tallyd, "gpu-7", 93.5);

    let firing = inbox.take("/hook", "FIRING");
    let latency = written.elapsed();
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["receiver"], "hook");
    assert_eq!(firing["groupLabels"]["alertname"], "gpu_temperature_high");
    let alert = &firing["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["host"], "gpu-7");
    assert_eq!(alert["labels"]["team"], "infra");
    assert_eq!(
        alert["annotations"]["summary"],
        "GPU 0 on gpu-7 is at 93.5 °C"
    );
    assert_eq!(alert["value"], 93.5);
    assert!(
        alert["fingerprint"].as_str().is_some_and(|f| !f.is_empty()),
        "{alert}"
    );
    eprintln!("condition to webhook receipt: {latency:?} (1 s rule interval)");

    let slack = inbox.take("/slack", "FIRING");
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.starts_with("[FIRING:1] gpu_temperature_high"),
        "{text}"
    );
    assert!(text.contains("GPU 0 on gpu-7 is at 93.5 °C"), "{text}");
    let blocks = slack["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(
        blocks.iter().any(|b| b["type"] == "section"
            && b["text"]["text"]
                .as_str()
                .unwrap_or("")
                .contains("`host=gpu-7`")),
        "{slack}"
    );

    gpu_point(&tallyd, "gpu-7", 50.0);
    let resolved = inbox.take("/hook", "RESOLVED");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    let slack = inbox.take("/slack", "RESOLVED");
    assert!(
        slack["text"].as_str().unwrap().starts_with("[RESOLVED]"),
        "{slack}"
    );

    // The transitions are series in `_alerts`.
    let answer = tallyd.query(
        "_alerts",
        "SELECT state, previous, value FROM alerts WHERE rule = 'gpu_temperature_high' AND host = 'gpu-7'",
    );
    let states: Vec<Value> = tally_tests::rows(&answer)
        .iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(states, vec![json!("firing"), json!("resolved")], "{answer}");

    let metrics = tallyd.request("GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains("tally_rule_evaluations_total{rule=\"gpu_temperature_high\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tally_notifications_total{receiver=\"hook\"} 2"),
        "{metrics}"
    );
    tallyd.stop();
}

#[test]
fn a_silence_keeps_receivers_quiet_while_the_alert_still_fires() {
    let dir = tempfile::tempdir().unwrap();
    let (port, rx) = webhook_server();
    let mut inbox = Inbox::new(rx);
    let receivers = format!(
        "default_receivers = [\"hook\"]\n\
         [[alerts.receiver]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n"
    );
    let config = write_config(dir.path(), GPU_RULE, &receivers);
    let tallyd = start_tallyd(&config, &[]);
    let silence = json!({
        "matchers": [{"name": "host", "value": "gpu-[0-9]+", "isRegex": true}],
        "duration": "1h",
        "createdBy": "test",
        "comment": "maintenance"
    });
    let r = tallyd.request(
        "POST",
        "/api/v1/silences",
        &[],
        silence.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    gpu_point(&tallyd, "gpu-3", 95.0);
    let alert = wait_for("a silenced firing alert", Duration::from_secs(30), || {
        alert_in_state(&tallyd, "gpu_temperature_high", "gpu-3", "firing")
    });
    assert_eq!(alert["silenced"], true);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        inbox.is_empty(),
        "a silenced alert was notified: {:?}",
        inbox.unmatched
    );

    let r = tallyd.request("DELETE", &format!("/api/v1/silences/{id}"), &[], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let firing = inbox.take("/hook", "FIRING");
    assert_eq!(firing["alerts"][0]["labels"]["host"], "gpu-3");
    tallyd.stop();
}

// ---------------------------------------------------------------- email

const SMTP_SERVER: &str = r#"
import asyncio, email, email.policy, json, ssl, sys, time
from pathlib import Path
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"tally" and auth_data.password == b"pa55word"
    return AuthResult(success=ok)

class Handler:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "authenticated": session.authenticated,
            "subject": str(message["subject"]),
            "raw_subject": message.get("subject").__class__.__name__,
            "from": str(message["from"]),
            "to": str(message["to"]),
            "content_type": message.get_content_type(),
            "text": message.get_body(("plain",)).get_content(),
            "html": message.get_body(("html",)).get_content(),
        }
        Handler.count += 1
        (out / f"{Handler.count:03}.json").write_text(json.dumps(record))
        return "250 OK"

controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context,
                        require_starttls=True, auth_required=True, auth_require_tls=True,
                        authenticator=authenticator)
controller.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

/// A private CA and a certificate for `localhost` / 127.0.0.1 signed by it, made with openssl.
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    require_program("openssl", "openssl");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Tally test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

fn start_smtp_server(dir: &Path, cert: &Path, key: &Path, out: &Path) -> (Peer, u16) {
    require_program("python3", "python3");
    let probe = Command::new("python3")
        .arg("-c")
        .arg("import aiosmtpd")
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "Python's aiosmtpd is missing: `python3 -m pip install aiosmtpd` (.ci/run does): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let script = dir.join("smtp_server.py");
    std::fs::write(&script, SMTP_SERVER).unwrap();
    std::fs::create_dir_all(out).unwrap();
    let port = free_port();
    let log = dir.join("smtp.log");
    let child = Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .arg(cert)
        .arg(key)
        .arg(out)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut peer = Peer { child, log };
    wait_port(port, &mut peer, "aiosmtpd");
    (peer, port)
}

fn received_mail(out: &Path, subject_start: &str, smtp: &Peer) -> Value {
    wait_for(
        &format!(
            "an email with subject {subject_start:?} ({})",
            smtp.log_text()
        ),
        Duration::from_secs(30),
        || {
            let mut files: Vec<PathBuf> = std::fs::read_dir(out)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            files.sort();
            files.into_iter().find_map(|f| {
                let mail: Value = serde_json::from_str(&std::fs::read_to_string(f).ok()?).ok()?;
                mail["subject"]
                    .as_str()?
                    .starts_with(subject_start)
                    .then_some(mail)
            })
        },
    )
}

#[test]
fn email_goes_through_starttls_and_auth_to_a_real_smtp_server() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certificates(dir.path());
    let out = dir.path().join("mail");
    let (smtp, smtp_port) = start_smtp_server(dir.path(), &cert, &key, &out);
    let receivers = format!(
        "default_receivers = [\"oncall\"]\n\
         [[alerts.receiver]]\nname = \"oncall\"\nkind = \"email\"\nto = [\"oncall@example.com\"]\n\
         [smtp]\nhost = \"localhost\"\nport = {smtp_port}\nstarttls = true\nusername = \"tally\"\n\
         from = \"tally@example.com\"\nca_file = {:?}\ntimeout = \"10s\"\n",
        ca.display().to_string()
    );
    // A non-ASCII annotation checks the base64 bodies and their charset.
    let rule = GPU_RULE.replace("is at {{ $value }} °C", "is at {{ $value }} °C — überhitzt");
    let config = write_config(dir.path(), &rule, &receivers);
    // The password comes from the environment, as documented.
    let tallyd = Tallyd::start_with_env(
        &["--config", config.to_str().unwrap()],
        &[("TALLY_SMTP_PASSWORD", "pa55word")],
    );
    gpu_point(&tallyd, "gpu-9", 88.0);

    let mail = received_mail(&out, "[FIRING:1] gpu_temperature_high", &smtp);
    assert_eq!(mail["tls"], true, "{mail}");
    assert_eq!(mail["authenticated"], true, "{mail}");
    assert_eq!(mail["mail_from"], "tally@example.com");
    assert_eq!(mail["rcpt_tos"], json!(["oncall@example.com"]));
    assert_eq!(mail["to"], "oncall@example.com");
    assert_eq!(mail["content_type"], "multipart/alternative", "{mail}");
    let text = mail["text"].as_str().unwrap();
    assert!(
        text.contains("GPU 0 on gpu-9 is at 88 °C — überhitzt"),
        "{text}"
    );
    assert!(text.contains("host=gpu-9"), "{text}");
    let html = mail["html"].as_str().unwrap();
    assert!(html.contains("<table"), "{html}");

    gpu_point(&tallyd, "gpu-9", 40.0);
    let resolved = received_mail(&out, "[RESOLVED] gpu_temperature_high", &smtp);
    assert!(
        resolved["text"].as_str().unwrap().contains("resolved: "),
        "{resolved}"
    );
    tallyd.stop();
}

// ---------------------------------------------------------------- bad rules, API, restarts

const BAD_RULES: &str = r#"
[[rule]]
name = "broken_syntax"
query = """SELECT max(temperature_gpu)
FROM nvidia_smi GROUP host"""
condition = "> 85"

[[rule]]
name = "unknown_function"
query = "SELECT maxx(temperature_gpu) FROM nvidia_smi"
condition = "> 85"

[[rule]]
name = "template_missing_tag"
query = "SELECT max(temperature_gpu) FROM nvidia_smi GROUP BY host"
condition = "> 85"
[rule.annotations]
summary = "GPU {{ $labels.index }} is hot"

[[rule]]
name = "missing_database"
database = "no_such_database"
query = "SELECT max(temperature_gpu) FROM nvidia_smi GROUP BY host"
condition = "> 85"
interval = "1s"
"#;

fn rule_entry(tallyd: &Tallyd, name: &str) -> Value {
    let r = tallyd.request("GET", &format!("/api/v1/rules/{name}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn bad_rules_are_rejected_with_positions_and_never_stop_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &format!("{GPU_RULE}\n{BAD_RULES}"), "");
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let tallyd = Tallyd::start_in(&data, &args);
    gpu_point(&tallyd, "gpu-4", 99.0);

    let firing = wait_for("the good rule to fire", Duration::from_secs(30), || {
        alert_in_state(&tallyd, "gpu_temperature_high", "gpu-4", "firing")
    });

    let syntax = rule_entry(&tallyd, "broken_syntax");
    assert_eq!(syntax["health"], "invalid");
    let error = syntax["lastError"].as_str().unwrap();
    assert!(
        error.starts_with("rule broken_syntax: line 2, column 23: "),
        "{error}"
    );
    assert!(
        error.contains("FROM nvidia_smi GROUP host\n                      ^^^^"),
        "{error}"
    );
    let unknown = rule_entry(&tallyd, "unknown_function");
    let error = unknown["lastError"].as_str().unwrap();
    assert!(
        error.starts_with("rule unknown_function: line 1, column 8: "),
        "{error}"
    );
    assert!(error.contains("maxx"), "{error}");
    let template = rule_entry(&tallyd, "template_missing_tag");
    let error = template["lastError"].as_str().unwrap();
    assert!(error.starts_with("rule template_missing_tag: "), "{error}");
    assert!(error.contains("index"), "{error}");
    let unhealthy = wait_for(
        "the rule on a missing database to be unhealthy",
        Duration::from_secs(30),
        || {
            let rule = rule_entry(&tallyd, "missing_database");
            (rule["health"] == "unhealthy").then_some(rule)
        },
    );
    assert!(
        unhealthy["lastError"]
            .as_str()
            .unwrap()
            .contains("no_such_database"),
        "{unhealthy}"
    );
    assert!(
        tallyd.log_text().contains("broken_syntax"),
        "the invalid rule is not logged"
    );

    // Through the API: a bad rule is refused with its position, a good one is stored.
    let bad =
        json!({"name": "api_bad", "query": "SELECT mean(usage_idle FROM cpu", "condition": "< 5"});
    let r = tallyd.request("POST", "/api/v1/rules", &[], bad.to_string().as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    let error = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.starts_with("rule api_bad: line 1, column "),
        "{error}"
    );
    let good = json!({
        "name": "api_gpu_warm",
        "query": "SELECT last(temperature_gpu) FROM nvidia_smi WHERE time > now() - 1h AND time <= now() GROUP BY host",
        "condition": "> 90",
        "interval": "1s",
        "for": "1h",
        "annotations": {"summary": "{{ $labels.host }} at {{ $value }}"}
    });
    let r = tallyd.request("POST", "/api/v1/rules", &[], good.to_string().as_bytes());
    assert_eq!(r.status, 201, "{}", r.text());
    let r = tallyd.request("POST", "/api/v1/rules", &[], good.to_string().as_bytes());
    assert_eq!(r.status, 409, "{}", r.text());
    let r = tallyd.request("DELETE", "/api/v1/rules/gpu_temperature_high", &[], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("read-only"), "{}", r.text());
    let pending = wait_for(
        "the API rule's alert to be pending",
        Duration::from_secs(30),
        || alert_in_state(&tallyd, "api_gpu_warm", "gpu-4", "pending"),
    );
    assert_eq!(pending["annotations"]["summary"], "gpu-4 at 99");

    // Testing a rule over past data notifies nothing and reports each evaluation.
    let test = json!({
        "rule": {"name": "probe", "query": good["query"], "condition": "> 90", "for": "2s"},
        "times": [now_ns(), now_ns() + 1_000_000_000, now_ns() + 3_000_000_000_i64]
    });
    let r = tallyd.request(
        "POST",
        "/api/v1/rules/test",
        &[],
        test.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let steps = r.json()["steps"].as_array().cloned().unwrap();
    let states: Vec<Value> = steps
        .iter()
        .map(|s| s["alerts"][0]["state"].clone())
        .collect();
    assert_eq!(
        states,
        vec![json!("pending"), json!("pending"), json!("firing")],
        "{steps:?}"
    );
    assert!(api_alerts(&tallyd).iter().all(|a| a["rule"] != "probe"));

    // SHOW RULES and SHOW ALERTS through /query.
    let rules = tallyd.query("telemetry", "SHOW RULES");
    let columns = &rules["results"][0]["series"][0]["columns"];
    let health = columns
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == "health")
        .unwrap();
    let rows = tally_tests::rows(&rules);
    let row = |name: &str| {
        rows.iter()
            .find(|r| r[0] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {rules}"))
    };
    assert_eq!(row("broken_syntax")[health], "invalid");
    assert_eq!(row("gpu_temperature_high")[health], "ok");
    assert_eq!(row("missing_database")[health], "unhealthy");
    let alerts = tally_tests::rows(&tallyd.query("telemetry", "SHOW ALERTS"));
    assert!(
        alerts
            .iter()
            .any(|r| r[1] == "gpu_temperature_high" && r[2] == "firing"),
        "{alerts:?}"
    );

    // A restart keeps the API's rules and every alert's state.
    tallyd.stop();
    let tallyd = Tallyd::start_in(&data, &args);
    assert_eq!(rule_entry(&tallyd, "api_gpu_warm")["source"], "api");
    let after = alert_in_state(&tallyd, "gpu_temperature_high", "gpu-4", "firing")
        .unwrap_or_else(|| panic!("the firing alert was lost: {:?}", api_alerts(&tallyd)));
    assert_eq!(after["firedAt"], firing["firedAt"]);
    let still_pending = alert_in_state(&tallyd, "api_gpu_warm", "gpu-4", "pending")
        .unwrap_or_else(|| panic!("the pending alert was lost: {:?}", api_alerts(&tallyd)));
    assert_eq!(still_pending["activeAt"], pending["activeAt"]);
    let r = tallyd.request("DELETE", "/api/v1/rules/api_gpu_warm", &[], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    tallyd.stop();
}
