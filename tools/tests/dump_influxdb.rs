//! Exported line protocol loads into a real InfluxDB 1.6 (Debian package `influxdb`, started
//! by the test on free ports with a temporary configuration) and the same points read back.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[path = "dump_common.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const INFLUXD: &str = "/usr/bin/influxd";

struct Influxd {
    child: Child,
    port: u16,
}

impl Drop for Influxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_influxd(dir: &Path) -> Influxd {
    assert!(
        Path::new(INFLUXD).exists(),
        "{INFLUXD} is missing: install Debian's influxdb package (InfluxDB 1.6)"
    );
    let port = free_port();
    let rpc_port = free_port();
    let config = dir.join("influxdb.conf");
    std::fs::write(
        &config,
        format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc_port}\"\n\
             [meta]\n  dir = \"{0}/meta\"\n\
             [data]\n  dir = \"{0}/data\"\n  wal-dir = \"{0}/wal\"\n  query-log-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [ifql]\n  enabled = false\n",
            dir.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("influxd.log")).unwrap();
    let child = Command::new(INFLUXD)
        .arg("-config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let influxd = Influxd { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = tally_tests::request(port, "GET", "/ping", &[], b"")
            && r.status == 204
        {
            return influxd;
        }
        assert!(
            Instant::now() < deadline,
            "influxd did not start:\n{}",
            std::fs::read_to_string(dir.join("influxd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn query(port: u16, db: &str, q: &str) -> serde_json::Value {
    let path = format!(
        "/query?db={}&epoch=ns&q={}",
        tally_tests::encode(db),
        tally_tests::encode(q)
    );
    let r = tally_tests::request(port, "POST", &path, &[], b"").unwrap();
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    r.json()
}

/// What InfluxDB holds: "db|measurement|tags|field|time" -> "type:value".
fn influx_points(port: u16, databases: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for db in databases {
        let mut types: BTreeMap<(String, String), String> = BTreeMap::new();
        let keys = query(port, db, "SHOW FIELD KEYS");
        for series in keys["results"][0]["series"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let name = series["name"].as_str().unwrap().to_string();
            for row in series["values"].as_array().unwrap() {
                types.insert(
                    (name.clone(), row[0].as_str().unwrap().to_string()),
                    row[1].as_str().unwrap().to_string(),
                );
            }
        }
        let answer = query(port, db, "SELECT * FROM /.*/ GROUP BY *");
        for series in answer["results"][0]["series"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let name = series["name"].as_str().unwrap();
            let mut tags: Vec<(String, String)> = series["tags"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .filter(|(_, v)| !v.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            tags.sort();
            let columns: Vec<String> = series["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            for row in series["values"].as_array().unwrap() {
                let t = row[0].as_i64().unwrap();
                for (i, column) in columns.iter().enumerate().skip(1) {
                    let value = &row[i];
                    if value.is_null() {
                        continue;
                    }
                    let text = match types
                        .get(&(name.to_string(), column.clone()))
                        .map(String::as_str)
                    {
                        Some("float") => format!("float:{:?}", value.as_f64().unwrap()),
                        Some("integer") => format!("integer:{}", value.as_i64().unwrap()),
                        Some("boolean") => format!("boolean:{}", value.as_bool().unwrap()),
                        Some("string") => format!("string:{:?}", value.as_str().unwrap()),
                        other => panic!("field {column} of {name} has type {other:?}"),
                    };
                    out.insert(format!("{db}|{name}|{tags:?}|{column}|{t}"), text);
                }
            }
        }
    }
    out
}

/// Tally's points as InfluxDB 1.x can hold them: finite floats (compared by value, as JSON
/// carries them), unsigned integers as integers where they fit.
fn as_influxdb_holds_them(points: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in finite_only(points) {
        let (kind, text) = value.split_once(':').unwrap();
        let converted = match kind {
            "float" => {
                let f = f64::from_bits(u64::from_str_radix(text, 16).unwrap());
                // JSON has no negative zero for InfluxDB: -0 reads back as 0.
                format!("float:{:?}", if f == 0.0 { 0.0 } else { f })
            }
            "unsigned" => match text.parse::<u64>().unwrap() {
                u if u <= i64::MAX as u64 => format!("integer:{u}"),
                _ => continue,
            },
            _ => value.clone(),
        };
        out.insert(key, converted);
    }
    out
}

#[test]
fn exported_line_protocol_loads_into_influxdb_1_6_and_reads_back_the_same_points() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    build_dataset(&data, 1, 300);
    let original = all_points(&data);
    let influx_dir = root.path().join("influxdb");
    std::fs::create_dir_all(&influx_dir).unwrap();
    let influxd = start_influxd(&influx_dir);
    for db in ["requests", "odd names ü"] {
        let create = query(influxd.port, "", &format!("CREATE DATABASE \"{db}\""));
        assert!(create["results"][0].get("error").is_none(), "{create}");
        let export = dump_ok(&[
            "export",
            "--data-dir",
            path_str(&data),
            "--db",
            db,
            "--unsigned-as-integer",
        ]);
        let response = tally_tests::request(
            influxd.port,
            "POST",
            &format!("/write?db={}&precision=ns", tally_tests::encode(db)),
            &[],
            export.stdout.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            response.status,
            204,
            "InfluxDB refused the export of {db}: {}",
            response.text()
        );
    }
    let loaded = influx_points(influxd.port, &["requests", "odd names ü"]);
    let expected = as_influxdb_holds_them(&original);
    // Normalise the float text of what InfluxDB answered the same way (-0 is 0 in JSON).
    let loaded: BTreeMap<String, String> = loaded
        .into_iter()
        .map(|(k, v)| match v.strip_prefix("float:") {
            Some(f) => {
                let f: f64 = f.parse().unwrap();
                (k, format!("float:{:?}", if f == 0.0 { 0.0 } else { f }))
            }
            None => (k, v),
        })
        .collect();
    assert_same_points(&loaded, &expected, "InfluxDB 1.6");
}
