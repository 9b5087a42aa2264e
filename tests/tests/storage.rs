//! End to end: retention settings, deletion statements, compaction on demand and its
//! observability, through the real tallyd.
#![allow(clippy::unwrap_used)]

use tally_tests::{Tallyd, rows};

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn retention_deletion_and_compaction_work_through_the_api() {
    let t = Tallyd::start(&["--storage-retention-raw", "7d"]);
    let now = now_s();
    let mut body = String::new();
    for i in 0..600 {
        let ts = (now - 3600 + i * 5) * 1_000_000_000;
        body.push_str(&format!(
            "gpu,host=a util={}i {ts}\ngpu,host=b util={}i {ts}\nmem,host=a used=1i {ts}\n",
            i % 100,
            (i + 1) % 100
        ));
    }
    let r = t.write("ops", &body);
    assert_eq!(r.status, 204, "{}", r.text());
    // Too old for the raw retention: refused, with the reason.
    let r = t.write(
        "ops",
        &format!(
            "gpu,host=a util=1i {}\n",
            (now - 30 * 86_400) * 1_000_000_000
        ),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("older than the raw retention"),
        "{}",
        r.text()
    );

    // Retention as InfluxDB shows it, then changed by statement and by the admin API.
    let answer = t.query("ops", "SHOW RETENTION POLICIES ON ops");
    assert_eq!(rows(&answer)[0][1], "168h0m0s");
    assert_eq!(rows(&answer)[0][5], "1m=90d,1h=3y");
    t.query("ops", "ALTER RETENTION POLICY autogen ON ops DURATION 30d");
    let r = t.request("GET", "/api/v1/databases/ops/retention", &[], b"");
    assert_eq!(r.json()["raw"], "30d", "{}", r.text());
    let r = t.request(
        "PUT",
        "/api/v1/databases/ops/retention",
        &[],
        br#"{"raw":"14d","tiers":[{"resolution":"1h","retention":"inf"}]}"#,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let answer = t.query("ops", "SHOW RETENTION POLICIES ON ops");
    assert_eq!(rows(&answer)[0][1], "336h0m0s");
    assert_eq!(rows(&answer)[0][5], "1h=inf");
    let r = t.request(
        "PUT",
        "/api/v1/databases/ops/retention",
        &[],
        br#"{"raw":"14x"}"#,
    );
    assert_eq!(r.status, 400);

    // DELETE with tag and time conditions hides points at once; DROP MEASUREMENT drops.
    let cut = (now - 1800) * 1_000_000_000;
    let answer = t.query(
        "ops",
        &format!("DELETE FROM gpu WHERE host = 'a' AND time < {cut}"),
    );
    assert!(answer["results"][0]["error"].is_null(), "{answer}");
    let count = |q: &str| {
        rows(&t.query("ops", q))
            .first()
            .and_then(|r| r[1].as_i64())
            .unwrap_or(0)
    };
    assert_eq!(count("SELECT count(util) FROM gpu WHERE host = 'b'"), 600);
    assert_eq!(
        count("SELECT count(util) FROM gpu WHERE host = 'a'"),
        600 - 360
    );
    t.query("ops", "DROP MEASUREMENT mem");
    let measurements = t.query("ops", "SHOW MEASUREMENTS");
    assert_eq!(rows(&measurements), vec![vec![serde_json::json!("gpu")]]);
    let answer = t.query("ops", "DELETE FROM gpu WHERE util > 3");
    assert!(
        answer["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("tags and time only"),
        "{answer}"
    );

    // Compaction on demand, then SHOW COMPACTIONS and the metrics report it.
    let r = t.request("POST", "/api/v1/databases/ops/compact", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !r.json()["compactions"].as_array().unwrap().is_empty(),
        "{}",
        r.text()
    );
    assert_eq!(count("SELECT count(util) FROM gpu WHERE host = 'a'"), 240);
    let compactions = t.query("ops", "SHOW COMPACTIONS");
    assert!(
        rows(&compactions).iter().any(|r| r[10] == "done"),
        "{compactions}"
    );
    let explain = t.query(
        "ops",
        &format!(
            "EXPLAIN SELECT mean(util) FROM gpu WHERE time >= {}s AND time < {}s GROUP BY time(1h)",
            (now / 3600 - 3) * 3600,
            (now / 3600 - 1) * 3600
        ),
    );
    let plan: Vec<String> = rows(&explain)
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert!(
        plan.iter().any(|l| l.starts_with("tier: 1h rollups")),
        "{plan:?}"
    );
    let metrics = t.request("GET", "/metrics", &[], b"").text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tally_compactions_total{db=\"ops\"}") && !l.ends_with(" 0")),
        "{metrics}"
    );
    t.stop();
}
