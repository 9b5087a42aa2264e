//! The real `influx` CLI (Debian package influxdb-client) against tallyd: it imports line
//! protocol through `/write` and runs SHOW and SELECT statements through `/query`, as it would
//! against InfluxDB.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use tally_tests::Tallyd;

fn influx() -> Command {
    let path = "/usr/bin/influx";
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: install Debian's influxdb-client package (.ci/run does)"
    );
    Command::new(path)
}

fn run(t: &Tallyd, args: &[&str]) -> (i32, String) {
    let out = influx()
        .args(["-host", "127.0.0.1", "-port", &t.port.to_string()])
        .args(args)
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_influx_cli_imports_and_queries_tallyd() {
    let t = Tallyd::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("import.txt");
    let mut body = String::from("# DML\n# CONTEXT-DATABASE: llmops\n");
    for i in 0..120i64 {
        body.push_str(&format!(
            "llm,model=m{},provider=p completion_tokens={}i,latency_ms={}.25 {}\n",
            i % 3,
            100 + i,
            i,
            1_796_083_200_000_000_000 + i * 1_000_000_000
        ));
    }
    std::fs::write(&file, body).unwrap();
    let (code, out) = run(
        &t,
        &[
            "-import",
            &format!("-path={}", file.display()),
            "-precision=ns",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Processed 120 inserts") && out.contains("Failed 0 inserts"),
        "{out}"
    );

    let (code, out) = run(&t, &["-execute", "SHOW DATABASES"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("llmops"), "{out}");

    let (code, out) = run(
        &t,
        &[
            "-database",
            "llmops",
            "-execute",
            "SHOW TAG VALUES WITH KEY = \"model\"",
        ],
    );
    assert_eq!(code, 0, "{out}");
    for m in ["m0", "m1", "m2"] {
        assert!(out.contains(m), "{out}");
    }

    let (code, out) = run(
        &t,
        &[
            "-database",
            "llmops",
            "-format",
            "csv",
            "-execute",
            "SELECT sum(completion_tokens), count(latency_ms) FROM llm GROUP BY model",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let expected_m1: i64 = (0..120).filter(|i| i % 3 == 1).map(|i| 100 + i).sum();
    assert!(
        out.contains(&format!("llm,model=m1,0,{expected_m1},40")),
        "{out}"
    );

    let (code, out) = run(
        &t,
        &[
            "-database",
            "llmops",
            "-execute",
            "SHOW FIELD KEYS FROM llm",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("completion_tokens integer")
            && out.contains("latency_ms")
            && out.contains("float"),
        "{out}"
    );

    // A parse error reaches the CLI as an error with its position, and a non-zero exit.
    let (code, out) = run(
        &t,
        &[
            "-database",
            "llmops",
            "-execute",
            "SELECT mean(latency_ms FROM llm",
        ],
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("error parsing query") && out.contains("column"),
        "{out}"
    );
    t.stop();
}
