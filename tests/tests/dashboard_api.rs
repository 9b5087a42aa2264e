//! The dashboard's HTTP side against a real tallyd: `/api/v1/dashboards` (create, list, get,
//! replace, delete, export, import; validation errors; limits; persistence across restarts),
//! `/api/v1/complete`, and the embedded page and assets at `/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use tally_tests::{Tallyd, encode};

fn post_json(tallyd: &Tallyd, path: &str, body: &str) -> tally_tests::Response {
    tallyd.request(
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn put_json(tallyd: &Tallyd, path: &str, body: &str) -> tally_tests::Response {
    tallyd.request(
        "PUT",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn gpu_dashboard(title: &str) -> Value {
    json!({
        "title": title,
        "description": "GPU fleet",
        "database": "telemetry",
        "panels": [
            {"title": "Utilisation", "type": "line", "unit": "percent",
             "queries": ["SELECT mean(util_pct) FROM gpu WHERE $timeFilter $tagFilter GROUP BY time($interval), host, gpu"]},
            {"title": "Power", "type": "area", "unit": "watts", "span": 2,
             "queries": ["SELECT mean(power_w) FROM gpu WHERE $timeFilter GROUP BY time($interval), gpu"]}
        ]
    })
}

#[test]
fn dashboards_are_created_listed_replaced_and_deleted() {
    let tallyd = Tallyd::start(&[]);
    let created = post_json(
        &tallyd,
        "/api/v1/dashboards",
        &gpu_dashboard("GPU fleet").to_string(),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(
        created.header("location"),
        Some("/api/v1/dashboards/gpu-fleet")
    );
    let body = created.json();
    assert_eq!(body["id"], "gpu-fleet");
    assert_eq!(body["version"], 1);
    assert_eq!(body["panels"][0]["id"], "panel-1");
    assert_eq!(body["panels"][1]["span"], 2);

    let list = tallyd.request("GET", "/api/v1/dashboards", &[], b"").json();
    assert_eq!(list["dashboards"][0]["id"], "gpu-fleet");
    assert_eq!(list["dashboards"][0]["n_panels"], 2);
    assert_eq!(list["limits"]["max_count"], 1000);

    let mut edited = body.clone();
    edited["title"] = json!("GPU fleet (prod)");
    edited["panels"].as_array_mut().unwrap().reverse();
    let replaced = put_json(&tallyd, "/api/v1/dashboards/gpu-fleet", &edited.to_string());
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    assert_eq!(replaced.json()["version"], 2);
    assert_eq!(replaced.json()["panels"][0]["title"], "Power");

    // The same edit again started from version 1: someone else saved meanwhile.
    let stale = put_json(&tallyd, "/api/v1/dashboards/gpu-fleet", &edited.to_string());
    assert_eq!(stale.status, 409, "{}", stale.text());
    assert_eq!(stale.json()["current_version"], 2);
    assert!(stale.json()["error"].as_str().unwrap().contains("reload"));

    let fetched = tallyd.request("GET", "/api/v1/dashboards/gpu-fleet", &[], b"");
    assert_eq!(fetched.json()["title"], "GPU fleet (prod)");

    let duplicate = post_json(
        &tallyd,
        "/api/v1/dashboards",
        &json!({"id": "gpu-fleet", "title": "Again"}).to_string(),
    );
    assert_eq!(duplicate.status, 409, "{}", duplicate.text());

    let deleted = tallyd.request("DELETE", "/api/v1/dashboards/gpu-fleet", &[], b"");
    assert_eq!(deleted.status, 204);
    let gone = tallyd.request("GET", "/api/v1/dashboards/gpu-fleet", &[], b"");
    assert_eq!(gone.status, 404);
    assert!(gone.json()["error"].as_str().unwrap().contains("gpu-fleet"));
    let again = tallyd.request("DELETE", "/api/v1/dashboards/gpu-fleet", &[], b"");
    assert_eq!(again.status, 404);
}

#[test]
fn json_syntax_errors_name_the_line_and_column() {
    let tallyd = Tallyd::start(&[]);
    let response = post_json(
        &tallyd,
        "/api/v1/dashboards",
        "{\"title\": \"x\",\n  \"panels\": [}\n",
    );
    assert_eq!(response.status, 400, "{}", response.text());
    let body = response.json();
    assert_eq!(body["line"], 2);
    assert_eq!(body["column"], 14);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("line 2, column 14"),
        "{body}"
    );
    let empty = post_json(&tallyd, "/api/v1/dashboards", "  ");
    assert_eq!(empty.status, 400);
    assert!(empty.json()["error"].as_str().unwrap().contains("empty"));
}

#[test]
fn invalid_dashboards_are_refused_naming_the_field() {
    let tallyd = Tallyd::start(&[]);
    let mut document = gpu_dashboard("x");
    document["panels"][1]["type"] = json!("pie");
    let response = post_json(&tallyd, "/api/v1/dashboards", &document.to_string());
    assert_eq!(response.status, 400, "{}", response.text());
    assert_eq!(response.json()["path"], "panels[1].type");
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains("line, area, bar, stat, table, heatmap")
    );

    let mut document = gpu_dashboard("x");
    document["panels"][0]["queries"][0] = json!("SELECT mean(util_pct) WHERE $timeFilter");
    let response = post_json(&tallyd, "/api/v1/dashboards", &document.to_string());
    assert_eq!(response.status, 400, "{}", response.text());
    assert_eq!(response.json()["path"], "panels[0].queries[0]");
    let error = response.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("expected FROM") && error.contains('^'),
        "{error}"
    );

    let response = post_json(
        &tallyd,
        "/api/v1/dashboards",
        &json!({"title": "x", "panels": [{"type": "table", "queries": ["DROP DATABASE telemetry"]}]})
            .to_string(),
    );
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["path"], "panels[0].queries[0]");

    let response = put_json(
        &tallyd,
        "/api/v1/dashboards/..%2Fetc",
        &json!({"title": "x"}).to_string(),
    );
    assert_eq!(response.status, 400, "{}", response.text());
    let nothing = tallyd.request("GET", "/api/v1/dashboards", &[], b"").json();
    assert_eq!(nothing["dashboards"], json!([]));
}

#[test]
fn size_and_count_limits_are_enforced_as_configured() {
    let tallyd = Tallyd::start(&[
        "--dashboards-max-count",
        "2",
        "--dashboards-max-size",
        "4KiB",
    ]);
    for title in ["one", "two"] {
        let created = post_json(
            &tallyd,
            "/api/v1/dashboards",
            &gpu_dashboard(title).to_string(),
        );
        assert_eq!(created.status, 201, "{}", created.text());
    }
    let third = post_json(
        &tallyd,
        "/api/v1/dashboards",
        &gpu_dashboard("three").to_string(),
    );
    assert_eq!(third.status, 409, "{}", third.text());
    assert_eq!(third.json()["limit"], 2);
    assert!(
        third.json()["error"]
            .as_str()
            .unwrap()
            .contains("dashboards.max_count")
    );

    let mut big = gpu_dashboard("one");
    big["description"] = json!("d".repeat(3_900));
    big["id"] = json!("one");
    let too_big = put_json(&tallyd, "/api/v1/dashboards/one", &big.to_string());
    assert_eq!(too_big.status, 413, "{}", too_big.text());
    assert_eq!(too_big.json()["limit"], 4096);
    assert!(
        too_big.json()["error"]
            .as_str()
            .unwrap()
            .contains("dashboards.max_size")
    );
    let still = tallyd.request("GET", "/api/v1/dashboards/one", &[], b"");
    assert_eq!(
        still.json()["version"],
        1,
        "a refused update changes nothing"
    );
}

#[test]
fn export_and_import_carry_dashboards_between_servers() {
    let source = Tallyd::start(&[]);
    for title in ["GPU fleet", "LLM costs"] {
        let created = post_json(
            &source,
            "/api/v1/dashboards",
            &gpu_dashboard(title).to_string(),
        );
        assert_eq!(created.status, 201);
    }
    let export = source.request("GET", "/api/v1/dashboards/export", &[], b"");
    assert_eq!(export.status, 200);
    assert!(
        export
            .header("content-disposition")
            .unwrap()
            .contains("attachment")
    );
    let document = export.json();
    assert_eq!(document["tally_dashboards"], 1);
    assert_eq!(document["dashboards"].as_array().unwrap().len(), 2);
    let one = source.request("GET", "/api/v1/dashboards/llm-costs/export", &[], b"");
    assert_eq!(one.json()["dashboards"][0]["id"], "llm-costs");

    let target = Tallyd::start(&[]);
    let imported = post_json(&target, "/api/v1/dashboards/import", &export.text());
    assert_eq!(imported.status, 200, "{}", imported.text());
    assert_eq!(imported.json()["imported"].as_array().unwrap().len(), 2);
    let copied = target.request("GET", "/api/v1/dashboards/gpu-fleet", &[], b"");
    let original = source.request("GET", "/api/v1/dashboards/gpu-fleet", &[], b"");
    assert_eq!(copied.json()["panels"], original.json()["panels"]);

    let conflict = post_json(&target, "/api/v1/dashboards/import", &export.text());
    assert_eq!(conflict.status, 409, "{}", conflict.text());
    assert_eq!(conflict.json()["ids"], json!(["gpu-fleet", "llm-costs"]));
    let copies = post_json(
        &target,
        "/api/v1/dashboards/import?on_conflict=copy",
        &one.text(),
    );
    assert_eq!(copies.json()["imported"][0]["id"], "llm-costs-2");
    let replaced = post_json(
        &target,
        "/api/v1/dashboards/import?on_conflict=replace",
        &one.text(),
    );
    assert_eq!(replaced.json()["imported"][0]["version"], 2);

    // A bare dashboard imports too; a newer export format is refused with advice.
    let bare = post_json(
        &target,
        "/api/v1/dashboards/import",
        &gpu_dashboard("Bare").to_string(),
    );
    assert_eq!(bare.json()["imported"][0]["id"], "bare");
    let newer = post_json(
        &target,
        "/api/v1/dashboards/import",
        &json!({"tally_dashboards": 9, "dashboards": []}).to_string(),
    );
    assert_eq!(newer.status, 400);
    assert!(newer.json()["error"].as_str().unwrap().contains("upgrade"));
    let mut broken = document.clone();
    broken["dashboards"][1]["panels"][0]["unit"] = json!("parsecs");
    let invalid = post_json(&target, "/api/v1/dashboards/import", &broken.to_string());
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.json()["path"], "dashboards[1].panels[0].unit");
}

#[test]
fn dashboards_survive_a_restart_as_files_and_unreadable_files_are_reported() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let tallyd = Tallyd::start_in(&data_dir, &[]);
    let created = post_json(
        &tallyd,
        "/api/v1/dashboards",
        &gpu_dashboard("GPU fleet").to_string(),
    );
    assert_eq!(created.status, 201);
    tallyd.stop();

    let dir = data_dir.join("dashboards");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["gpu-fleet.json"], "no temporary file is left");
    let stored: Value =
        serde_json::from_slice(&std::fs::read(dir.join("gpu-fleet.json")).unwrap()).unwrap();
    assert_eq!(stored["title"], "GPU fleet");
    std::fs::write(dir.join("broken.json"), b"{\"title\": ").unwrap();

    let restarted = Tallyd::start_in(&data_dir, &[]);
    let fetched = restarted.request("GET", "/api/v1/dashboards/gpu-fleet", &[], b"");
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.json(), created.json());
    let list = restarted
        .request("GET", "/api/v1/dashboards", &[], b"")
        .json();
    assert_eq!(list["dashboards"].as_array().unwrap().len(), 1);
    assert!(
        list["unreadable"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("broken.json")
    );
    assert!(
        restarted.log_text().contains("broken.json"),
        "the skipped file is logged"
    );
}

fn complete(tallyd: &Tallyd, query: &str) -> Value {
    let path = format!(
        "/api/v1/complete?db=telemetry&q={}&cursor={}",
        encode(query),
        query.encode_utf16().count()
    );
    let response = tallyd.request("GET", &path, &[], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

fn labels(answer: &Value, kind: &str) -> Vec<String> {
    answer["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .map(|c| c["label"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn completion_offers_keywords_functions_and_the_databases_names() {
    let tallyd = Tallyd::start(&[]);
    let written = tallyd.write(
        "telemetry",
        "gpu,gpu=0,host=node-1 util_pct=97i,power_w=410.5 1796083200000000000\n\
         gpu_memory,gpu=0,host=node-1 used=5i 1796083200000000000\n\
         llm,model=gpt-4o,provider=openai latency_ms=812.5 1796083200000000000",
    );
    assert_eq!(written.status, 204, "{}", written.text());

    let answer = complete(&tallyd, "SELECT mean(util_pct) FROM gp");
    assert_eq!(answer["prefix"], "gp");
    assert_eq!(labels(&answer, "measurement"), ["gpu", "gpu_memory"]);
    assert_eq!(answer["start"], 27);
    assert_eq!(answer["end"], 29);

    let answer = complete(&tallyd, "SELECT mea");
    assert!(labels(&answer, "function").contains(&"mean".to_string()));
    let mean = answer["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == "mean")
        .unwrap();
    assert_eq!(mean["insert"], "mean(");

    let answer = complete(&tallyd, "SELECT mean(util_pct) FROM gpu WHERE h");
    assert_eq!(labels(&answer, "tag"), ["host"]);
    let answer = complete(&tallyd, "SELECT p");
    assert!(labels(&answer, "field").contains(&"power_w".to_string()));
    let answer = complete(&tallyd, "select mean(util_pct) fr");
    let from = answer["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == "FROM")
        .unwrap();
    assert_eq!(
        from["insert"], "from",
        "keywords follow the case being typed"
    );

    let bad = tallyd.request("GET", "/api/v1/complete?q=SELECT&cursor=x", &[], b"");
    assert_eq!(bad.status, 400);
}

#[test]
fn the_page_and_its_assets_are_served_from_the_binary() {
    let tallyd = Tallyd::start(&[]);
    let page = tallyd.request("GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.contains("default-src 'self'") && policy.contains("connect-src 'self'"));
    let html = page.text();
    assert!(!html.contains("http://") && !html.contains("https://"));

    // Every file the page and its modules reference is served, with its type.
    let mut pending: Vec<String> = html
        .split('"')
        .filter(|s| s.starts_with("/assets/"))
        .map(String::from)
        .collect();
    let mut seen = Vec::new();
    while let Some(path) = pending.pop() {
        if seen.contains(&path) {
            continue;
        }
        let response = tallyd.request("GET", &path, &[], b"");
        assert_eq!(response.status, 200, "{path}");
        let content_type = response.header("content-type").unwrap().to_string();
        if path.ends_with(".js") {
            assert!(content_type.starts_with("text/javascript"), "{path}");
            for import in response.text().lines().filter_map(|l| {
                l.strip_prefix("import ")
                    .and_then(|rest| rest.split('"').nth(1))
            }) {
                pending.push(format!("/assets/js/{}", import.trim_start_matches("./")));
            }
        }
        if path.ends_with(".css") {
            assert!(content_type.starts_with("text/css"), "{path}");
        }
        seen.push(path);
    }
    assert!(
        seen.len() >= 12,
        "the page loads its modules and uPlot: {seen:?}"
    );

    let plain = tallyd.request("GET", "/assets/vendor/uPlot.iife.min.js", &[], b"");
    let gzipped = tallyd.request(
        "GET",
        "/assets/vendor/uPlot.iife.min.js",
        &[("Accept-Encoding", "gzip")],
        b"",
    );
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert!(gzipped.body.len() * 2 < plain.body.len());
    let mut decoder = flate2::read::GzDecoder::new(&gzipped.body[..]);
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut decoder, &mut unzipped).unwrap();
    assert_eq!(unzipped, plain.body);

    let etag = plain.header("etag").unwrap().to_string();
    let cached = tallyd.request(
        "GET",
        "/assets/vendor/uPlot.iife.min.js",
        &[("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());

    let license = tallyd.request("GET", "/assets/vendor/uPlot-LICENSE.txt", &[], b"");
    assert!(license.text().contains("MIT License"));
    let missing = tallyd.request("GET", "/assets/nothing.js", &[], b"");
    assert_eq!(missing.status, 404);
}
