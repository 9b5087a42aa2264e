//! Delivery of scheduled reports to a directory, a webhook receiver run by this test, and a
//! real local SMTP server (Python's aiosmtpd, `pip install aiosmtpd`), through
//! `POST /api/v1/reports/schedules/{index}/run`, which runs a configured schedule at once.
//! Fails with a clear message when python3 or aiosmtpd is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tally_tests::{Tallyd, free_port};

/// Accepts one HTTP request, answers 200, and sends the body on `bodies`.
fn webhook_receiver() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, bodies) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = sender.send(String::from_utf8_lossy(&body).into_owned());
        }
    });
    (port, bodies)
}

struct SmtpServer {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// aiosmtpd printing every message it receives.
fn smtp_server(port: u16, dir: &std::path::Path) -> SmtpServer {
    let check = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .output();
    assert!(
        check.map(|o| o.status.success()).unwrap_or(false),
        "python3 with aiosmtpd is needed for the delivery tests: pip install aiosmtpd"
    );
    let log = dir.join("smtp.log");
    let child = Command::new("python3")
        .args([
            "-u",
            "-m",
            "aiosmtpd",
            "-n",
            "-c",
            "aiosmtpd.handlers.Debugging",
            "stdout",
            "-l",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "aiosmtpd did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    SmtpServer { child, log }
}

#[test]
fn a_schedule_delivers_to_a_directory_a_webhook_and_a_real_smtp_server() {
    let temp = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let smtp = smtp_server(smtp_port, temp.path());
    let (webhook_port, bodies) = webhook_receiver();
    let out_dir = temp.path().join("out");
    let config = temp.path().join("tally.toml");
    std::fs::write(
        &config,
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\nstarttls = false\nfrom = \"tally@example.com\"\ntimeout = \"10s\"\n\n\
             [[reports.schedules]]\nname = \"llm-usage\"\ncron = \"0 8 * * MON\"\ntimezone = \"Europe/Paris\"\nformat = \"md\"\nperiod = \"previous_week\"\n\
             dir = \"{}\"\nwebhook = \"http://127.0.0.1:{webhook_port}/hook\"\nemail = [\"team@example.com\"]\n",
            out_dir.display()
        ),
    )
    .unwrap();
    let tallyd = Tallyd::start(&["--config", config.to_str().unwrap()]);
    // Within the previous week of any Monday firing from 2026-11-30 to 2026-12-06.
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let week = 7 * 86_400_000_000_000;
    let monday_ns =
        1_796_000_400_000_000_000 + (now_ns - 1_796_000_400_000_000_000).div_euclid(week) * week;
    tallyd.write(
        "telemetry",
        &format!("llm,model=m,provider=p,endpoint=chat,status=ok cost_usd=0.5,latency_ms=10,prompt_tokens=3i,completion_tokens=4i {}", monday_ns - 3 * 86_400_000_000_000),
    );
    let schedules = tallyd
        .request("GET", "/api/v1/reports/schedules", &[], b"")
        .json();
    assert_eq!(schedules["schedules"][0]["name"], "llm-usage");
    let response = tallyd.request("POST", "/api/v1/reports/schedules/0/run", &[], b"");
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.text(),
        tallyd.log_text()
    );
    let delivered = response.json()["delivered"].as_array().unwrap().len();
    assert_eq!(delivered, 3, "{}", response.text());

    let files: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let markdown = std::fs::read_to_string(&files[0]).unwrap();
    assert!(markdown.starts_with("# LLM usage and cost"), "{markdown}");
    assert!(
        markdown.contains("cost **$0.5000**"),
        "the point of the previous week is counted: {markdown}"
    );
    assert!(files[0].to_string_lossy().ends_with(".md"));

    let body: serde_json::Value =
        serde_json::from_str(&bodies.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    assert_eq!(body["report"], "llm-usage");
    assert_eq!(body["format"], "md");
    assert!(
        body["content"]
            .as_str()
            .unwrap()
            .starts_with("# LLM usage and cost")
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut mail = String::new();
    while Instant::now() < deadline {
        mail = std::fs::read_to_string(&smtp.log).unwrap_or_default();
        if mail.contains("team@example.com") && mail.contains("LLM usage and cost") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        mail.contains("Subject: LLM usage and cost"),
        "the SMTP server got: {mail}"
    );
    assert!(mail.contains("team@example.com"), "{mail}");
    // A Markdown report is attached; the mail's HTML part is the HTML rendering.
    assert!(mail.contains(".md"), "{mail}");
    tallyd.stop();
}
