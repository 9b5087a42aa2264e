//! The dashboard in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! through WebDriver) against a real tallyd fed with `../shared/bench/gen.py` data shifted to
//! end now, plus inference-server processes in the process sampler's schema, next to what
//! tallyd's own samplers write about the machine running the test:
//! - the overview draws every panel with data, asks for at most one point per pixel, loads
//!   nothing from another origin and logs no console error;
//! - the time picker (presets, absolute times, drag-to-zoom, zoom out), auto-refresh and the
//!   tag filters change the queries the panels send;
//! - the explorer completes names, shows parse errors with a caret and copies CSV;
//! - a custom dashboard built in the page (panels added, previewed, reordered, removed)
//!   survives a restart of tallyd.
//!
//! Each test saves screenshots under the target directory; with `TALLY_UPDATE_SCREENSHOTS=1`
//! they also replace the pictures in `docs/images/` that docs/dashboard.md shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tally_tests::Tallyd;
use tally_tests::browser::{Browser, save_screenshot};
use tally_tests::gen_data::{self, GenOptions};

const WAIT: Duration = Duration::from_secs(90);
const ENTER: &str = "\u{E007}";
const TAB: &str = "\u{E004}";
const ESCAPE: &str = "\u{E00C}";
/// Control+Enter, then every modifier released: runs the explorer's query.
const CONTROL_ENTER: &str = "\u{E009}\u{E007}\u{E000}";

/// Every panel of the overview (summary stats included).
const OVERVIEW_PANELS: [&str; 23] = [
    "stat-requests",
    "stat-tokens",
    "stat-cost",
    "stat-errors",
    "stat-latency",
    "stat-gpu",
    "host-cpu",
    "host-memory",
    "host-load",
    "host-network",
    "gpu-utilisation",
    "gpu-memory",
    "gpu-power",
    "gpu-temperature",
    "process-cpu",
    "process-memory",
    "llm-requests",
    "llm-tokens",
    "llm-latency",
    "llm-ttft",
    "llm-errors",
    "llm-cost",
    "llm-cost-table",
];

fn target_dir() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// Six hours of gen.py data ending now (two hosts with two GPUs each, about one LLM request a
/// second) and the processes of an inference server, in database `telemetry`.
fn feed(tallyd: &Tallyd) {
    let end = gen_data::now_ns_aligned();
    let lines = gen_data::generate(
        GenOptions {
            days: 1,
            hosts: 2,
            gpus: 2,
            llm_rate: 1.0,
            keep_hours: 6.0,
        },
        end,
    );
    gen_data::write_lines(tallyd, "telemetry", &lines);
    gen_data::write_lines(tallyd, "telemetry", &gen_data::procstat_lines(2, 6.0, end));
}

fn render_seq(browser: &Browser) -> u64 {
    browser
        .execute(
            "return Number(document.body.dataset.renderSeq || 0);",
            vec![],
        )
        .as_u64()
        .unwrap_or(0)
}

/// Waits until a render pass after `after` has drawn every panel.
fn wait_drawn(browser: &Browser, after: u64, what: &str) -> u64 {
    browser.wait_until(
        &format!(
            "return document.body.dataset.ready === 'true' && Number(document.body.dataset.renderSeq) > {after};"
        ),
        WAIT,
        what,
    );
    render_seq(browser)
}

/// Panel id → (state, query, series, points, width in pixels).
fn panels(browser: &Browser) -> Vec<(String, String, String, u64, u64, u64)> {
    let found = browser.execute(
        "return Array.from(document.querySelectorAll('.panel[data-panel-id]')).map(p => [
            p.dataset.panelId, p.dataset.state, p.dataset.query || '',
            Number(p.dataset.series || 0), Number(p.dataset.points || 0), Number(p.dataset.widthPx || 0)]);",
        vec![],
    );
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
                p[2].as_str().unwrap().to_string(),
                p[3].as_u64().unwrap(),
                p[4].as_u64().unwrap(),
                p[5].as_u64().unwrap(),
            )
        })
        .collect()
}

fn query_of(browser: &Browser, id: &str) -> String {
    panels(browser)
        .into_iter()
        .find(|p| p.0 == id)
        .unwrap_or_else(|| panic!("no panel {id}"))
        .2
}

fn severe_console_messages(browser: &Browser) -> Vec<String> {
    browser
        .console_messages()
        .into_iter()
        .filter(|m| m.starts_with("SEVERE"))
        .collect()
}

/// Resizes the window (the page redraws at the new width), waits for the redraw, then makes
/// the window as tall as the page and takes a picture of all of it.
fn full_page(browser: &Browser, width: u32) -> Vec<u8> {
    let seq = render_seq(browser);
    resize(browser, width, 1000);
    let seq = wait_drawn(browser, seq, "the redraw after a resize");
    let height = browser
        .execute(
            "return Math.ceil(document.documentElement.scrollHeight);",
            vec![],
        )
        .as_u64()
        .unwrap()
        .clamp(600, 7000) as u32;
    resize(browser, width, height);
    wait_drawn(browser, seq, "the redraw after making the window taller");
    std::thread::sleep(Duration::from_millis(300));
    browser.screenshot()
}

/// Resizes the window and makes sure the page hears of it even when the size did not change:
/// its resize handler waits 300 ms for more, so both events make one redraw.
fn resize(browser: &Browser, width: u32, height: u32) {
    browser.set_window_size(width, height);
    // The window may be taller than its viewport: grow it by the difference.
    let viewport = browser
        .execute("return window.innerHeight;", vec![])
        .as_u64()
        .unwrap_or(u64::from(height)) as u32;
    if viewport < height {
        browser.set_window_size(width, height + (height - viewport));
    }
    browser.execute("window.dispatchEvent(new Event('resize'));", vec![]);
}

/// The lower time bound a query asks for, as written in it.
fn lower_bound(query: &str) -> String {
    query
        .split("time >= '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no lower time bound in {query}"))
        .to_string()
}

/// The `host` tag tallyd's own samplers write in the overview test.
const SAMPLED_HOST: &str = "dashboard-test-host";

/// Waits until tallyd's host sampler has written `measurement` for [`SAMPLED_HOST`].
fn wait_for_sampler(tallyd: &Tallyd, measurement: &str) {
    let query = format!("SELECT * FROM {measurement} WHERE host = '{SAMPLED_HOST}' LIMIT 1");
    let deadline = std::time::Instant::now() + WAIT;
    while tally_tests::rows(&tallyd.query("telemetry", &query)).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "tallyd's host sampler wrote no {measurement} points for {SAMPLED_HOST}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn overview_draws_every_panel_with_data_and_no_console_errors() {
    // The host sampler writes this machine as a third host next to gen.py's two.
    let tallyd = Tallyd::start(&[
        "--samplers-hostname",
        SAMPLED_HOST,
        "--samplers-interval",
        "1s",
    ]);
    feed(&tallyd);
    for measurement in ["cpu", "mem", "system"] {
        wait_for_sampler(&tallyd, measurement);
    }
    let browser = Browser::start(1440, 900);
    browser.goto(&format!("{}/", tallyd.url()));
    wait_drawn(&browser, 0, "the overview");

    let drawn = panels(&browser);
    let ids: Vec<&str> = drawn.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(ids, OVERVIEW_PANELS);
    for (id, state, query, series, points, width) in &drawn {
        assert_eq!(
            state, "data",
            "panel {id} is {state}, not drawn with data; it asked: {query}"
        );
        assert!(*series >= 1, "panel {id} drew no series");
        assert!(
            points <= width,
            "panel {id} got {points} points per series for {width} pixels"
        );
    }
    let gpu = drawn.iter().find(|p| p.0 == "gpu-utilisation").unwrap();
    assert_eq!(gpu.3, 4, "one GPU utilisation series per GPU");
    // gen.py's hosts (measurement `hw`) and the sampled one (`cpu`, `mem`, `system`) together.
    for id in ["host-cpu", "host-memory", "host-load"] {
        let panel = drawn.iter().find(|p| p.0 == id).unwrap();
        assert_eq!(panel.3, 3, "{id}: two generated hosts and the sampled one");
    }
    let hosts = browser.execute(
        "return Array.from(document.querySelectorAll('#filter-host option')).map(o => o.value);",
        vec![],
    );
    assert!(
        hosts
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h.as_str() == Some(SAMPLED_HOST)),
        "the host filter lists the sampled host: {hosts}"
    );
    let charts = browser.execute(
        "return document.querySelectorAll('.panel canvas').length;",
        vec![],
    );
    assert!(
        charts.as_u64().unwrap() >= 16,
        "every chart panel drew a canvas"
    );
    let foreign = browser.execute(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin));",
        vec![],
    );
    assert_eq!(
        foreign,
        Value::Array(vec![]),
        "the page loads nothing from elsewhere"
    );
    assert_eq!(severe_console_messages(&browser), Vec::<String>::new());

    save_screenshot(
        "dashboard-overview.png",
        &full_page(&browser, 1440),
        target_dir(),
    );

    // Dark colours on a wide monitor: four panels a row.
    let seq = render_seq(&browser);
    browser.click("#theme");
    wait_drawn(&browser, seq, "the redraw in dark colours");
    assert_eq!(
        browser.execute("return document.documentElement.dataset.theme;", vec![]),
        "dark"
    );
    let png = full_page(&browser, 2560);
    let per_row = browser.execute(
        "const tops = Array.from(document.querySelectorAll('[data-panel-id^=\"gpu-\"]')).map(p => p.getBoundingClientRect().top);
         return new Set(tops).size;",
        vec![],
    );
    assert_eq!(per_row, 1, "the four GPU panels share one row at 2560 px");
    save_screenshot("dashboard-overview-dark-wide.png", &png, target_dir());
    assert_eq!(severe_console_messages(&browser), Vec::<String>::new());
}

/// One hour of points with the names tallyd's samplers (and Telegraf) write: cpu, mem, system,
/// net, nvidia_smi; a 10 s interval, two hosts, two GPUs each.
fn sampler_lines(end_ns: i64) -> Vec<String> {
    let mut lines = Vec::new();
    for sample in 0..360_i64 {
        let time = end_ns - sample * 10_000_000_000;
        let wave = (sample % 30) as f64;
        for host in ["node-a", "node-b"] {
            lines.push(format!(
                "cpu,cpu=cpu-total,host={host} usage_user={},usage_system=4.5,usage_idle={},usage_iowait=0.5 {time}",
                30.0 + wave,
                65.0 - wave
            ));
            lines.push(format!(
                "mem,host={host} total=540000000000i,used={}i,available=240000000000i,free=200000000000i,used_percent=55.5 {time}",
                300_000_000_000_i64 + sample * 10_000_000
            ));
            lines.push(format!(
                "system,host={host} load1={},load5=10.5,load15=9.5,n_cpus=64i {time}",
                8.0 + wave / 3.0
            ));
            for interface in ["eth0", "lo"] {
                lines.push(format!(
                    "net,host={host},interface={interface} bytes_recv={}i,bytes_sent={}i {time}",
                    1_000_000_000_000_i64 - sample * 50_000_000,
                    2_000_000_000_000_i64 - sample * 20_000_000
                ));
            }
            for index in 0..2 {
                lines.push(format!(
                    "nvidia_smi,host={host},index={index},name=NVIDIA\\ H200,uuid=GPU-{host}-{index} utilization_gpu={}i,memory_used={}i,memory_total=143771i,power_draw={},temperature_gpu={}i {time}",
                    (sample * 7 + index * 40) % 100,
                    60_000 + index * 1000,
                    350.0 + wave,
                    55 + index
                ));
            }
        }
    }
    lines
}

#[test]
fn overview_reads_the_samplers_measurements_when_they_exist() {
    let tallyd = Tallyd::start(&[]);
    let end = gen_data::now_ns_aligned();
    gen_data::write_lines(&tallyd, "telemetry", &sampler_lines(end));
    gen_data::write_lines(&tallyd, "telemetry", &gen_data::procstat_lines(2, 1.0, end));
    let llm: Vec<String> = gen_data::generate(
        GenOptions {
            days: 1,
            hosts: 1,
            gpus: 1,
            llm_rate: 1.0,
            keep_hours: 1.0,
        },
        end,
    )
    .into_iter()
    .filter(|line| line.starts_with("llm,"))
    .collect();
    gen_data::write_lines(&tallyd, "telemetry", &llm);
    let browser = Browser::start(1440, 900);
    browser.goto(&format!("{}/", tallyd.url()));
    let seq = wait_drawn(&browser, 0, "the overview");
    for (id, state, query, ..) in panels(&browser) {
        assert_eq!(state, "data", "panel {id}: {query}");
        if id.starts_with("gpu-") {
            assert!(query.contains("FROM nvidia_smi"), "{id}: {query}");
        }
    }
    assert!(query_of(&browser, "host-cpu").contains("FROM cpu"));
    assert!(query_of(&browser, "host-network").contains("interface != 'lo'"));
    // The gpu filter reaches nvidia_smi through its `index` tag.
    browser.click("#filter-gpu option[value='1']");
    wait_drawn(&browser, seq, "the overview filtered to GPU 1");
    let power = panels(&browser)
        .into_iter()
        .find(|p| p.0 == "gpu-power")
        .unwrap();
    assert!(power.2.contains("\"index\" = '1'"), "{}", power.2);
    assert_eq!(power.3, 2, "GPU 1 of each of the two hosts");
    assert_eq!(severe_console_messages(&browser), Vec::<String>::new());
}

#[test]
fn time_picker_refresh_and_tag_filters_change_the_queries() {
    let tallyd = Tallyd::start(&[]);
    feed(&tallyd);
    let browser = Browser::start(1440, 900);
    browser.goto(&format!("{}/#/overview", tallyd.url()));
    let mut seq = wait_drawn(&browser, 0, "the overview");
    let one_hour = query_of(&browser, "host-cpu");

    // A preset: the last 6 hours.
    browser.click("#time-button");
    browser.click("#time-presets button[data-from='now-6h']");
    seq = wait_drawn(&browser, seq, "the overview over 6 hours");
    let six_hours = query_of(&browser, "host-cpu");
    assert_ne!(six_hours, one_hour);
    assert!(
        lower_bound(&six_hours) < lower_bound(&one_hour),
        "{six_hours}"
    );
    let hash = browser.execute("return location.hash;", vec![]);
    assert!(hash.as_str().unwrap().contains("from=now-6h"), "{hash}");
    let fetched = browser.execute(
        "return performance.getEntriesByType('resource').filter(e => e.name.includes('/query?')).map(e => decodeURIComponent(e.name.replace(/\\+/g, ' ')));",
        vec![],
    );
    let bound = lower_bound(&six_hours);
    assert!(
        fetched
            .as_array()
            .unwrap()
            .iter()
            .any(|url| url.as_str().unwrap().contains(&bound)),
        "the browser fetched a query with the new range"
    );

    // The host filter narrows panels that have a host tag and leaves the others alone.
    browser.click("#filter-host option[value='gpu-node-01']");
    seq = wait_drawn(&browser, seq, "the overview filtered to one host");
    let by_panel = panels(&browser);
    let cpu = by_panel.iter().find(|p| p.0 == "host-cpu").unwrap();
    assert!(cpu.2.contains("\"host\" = 'gpu-node-01'"), "{}", cpu.2);
    assert_eq!(cpu.3, 1, "one host left");
    let requests = by_panel.iter().find(|p| p.0 == "llm-requests").unwrap();
    assert!(!requests.2.contains("host"), "{}", requests.2);
    assert_eq!(requests.1, "data");

    // The gpu filter reaches the GPU panels through gen.py's `gpu` tag; model the llm ones.
    browser.click("#filter-gpu option[value='1']");
    seq = wait_drawn(&browser, seq, "the overview filtered to one GPU");
    let gpu = query_of(&browser, "gpu-power");
    assert!(
        gpu.contains("\"gpu\" = '1'") && gpu.contains("\"host\" = 'gpu-node-01'"),
        "{gpu}"
    );
    browser.click("#filter-model option[value='gpt-4o']");
    seq = wait_drawn(&browser, seq, "the overview filtered to one model");
    let latency = query_of(&browser, "llm-latency");
    assert!(latency.contains("\"model\" = 'gpt-4o'"), "{latency}");
    assert!(!query_of(&browser, "gpu-power").contains("model"));
    for (id, state, query, ..) in panels(&browser) {
        assert_eq!(state, "data", "panel {id} after filtering: {query}");
    }
    let hash = browser.execute("return location.hash;", vec![]);
    assert!(
        hash.as_str().unwrap().contains("host=gpu-node-01")
            && hash.as_str().unwrap().contains("model=gpt-4o"),
        "{hash}"
    );
    save_screenshot("dashboard-filters.png", &browser.screenshot(), target_dir());
    browser.click("#filter-model option[value='']");
    seq = wait_drawn(&browser, seq, "the model filter cleared");

    // Absolute times typed into the picker.
    let now_ms = gen_data::now_ns_aligned() / 1_000_000;
    let from = iso(now_ms - 3 * 3_600_000);
    let to = iso(now_ms - 2 * 3_600_000);
    browser.click("#time-button");
    save_screenshot(
        "dashboard-time-picker.png",
        &browser.screenshot(),
        target_dir(),
    );
    browser.clear("#time-from");
    browser.type_into("#time-from", &from);
    browser.clear("#time-to");
    browser.type_into("#time-to", &to);
    browser.click("#time-apply");
    seq = wait_drawn(&browser, seq, "the overview over an absolute range");
    let absolute = query_of(&browser, "host-load");
    assert!(
        absolute.contains(&format!("time < '{}'", to.replace('Z', ".000Z"))),
        "{absolute}"
    );
    assert!(lower_bound(&absolute) <= from.replace('Z', ".000Z"));

    // Dragging across a chart zooms in to the selected part.
    let before = browser.execute("return location.hash;", vec![]);
    browser.drag_horizontally("[data-panel-id='host-cpu'] .u-over", -120, 60);
    seq = wait_drawn(&browser, seq, "the overview after a drag-to-zoom");
    let zoomed = query_of(&browser, "host-load");
    assert!(lower_bound(&zoomed) > lower_bound(&absolute), "{zoomed}");
    assert_ne!(browser.execute("return location.hash;", vec![]), before);
    browser.click("#zoom-out");
    seq = wait_drawn(&browser, seq, "the overview zoomed out");
    assert!(lower_bound(&query_of(&browser, "host-load")) < lower_bound(&zoomed));

    // Auto-refresh redraws a relative range by itself.
    browser.click("#time-button");
    browser.click("#time-presets button[data-from='now-1h']");
    seq = wait_drawn(&browser, seq, "the last hour again");
    browser.click("#refresh option[value='5s']");
    wait_drawn(&browser, seq, "an automatic refresh");
    assert_eq!(severe_console_messages(&browser), Vec::<String>::new());
}

/// Milliseconds since the epoch as RFC 3339 in UTC, to the second.
fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn explorer_completes_shows_parse_errors_with_a_caret_and_copies_csv() {
    let tallyd = Tallyd::start(&[]);
    feed(&tallyd);
    let browser = Browser::start(1440, 900);
    browser.goto(&format!("{}/#/explore", tallyd.url()));
    let seq = wait_drawn(&browser, 0, "the explorer");

    browser.type_into("#query-input", "SELECT mean(util_pct) FROM g");
    browser.wait_until(
        "const list = document.getElementById('completions');
         return !list.hidden && Array.from(list.querySelectorAll('.completion-label')).some(l => l.textContent === 'gpu');",
        WAIT,
        "the completion list offering the measurement gpu",
    );
    browser.type_into("#query-input", TAB);
    let text = browser.execute(
        "return document.getElementById('query-input').value;",
        vec![],
    );
    assert_eq!(text, "SELECT mean(util_pct) FROM gpu");
    browser.type_into(
        "#query-input",
        " WHERE $timeFilter $tagFilter GROUP BY time($interval), gpu",
    );
    browser.type_into("#query-input", CONTROL_ENTER);
    browser.wait_until(
        "return document.querySelectorAll('#explorer-table tbody tr').length > 0 && !document.getElementById('explorer-chart').hidden;",
        WAIT,
        "the explorer's table and chart",
    );
    let status = browser.execute(
        "return document.getElementById('explorer-status').textContent;",
        vec![],
    );
    assert!(status.as_str().unwrap().starts_with("2 series"), "{status}");
    let sent = browser.execute(
        "return document.getElementById('expanded-query').textContent;",
        vec![],
    );
    assert!(
        sent.as_str().unwrap().contains("time >= '"),
        "the macros were expanded: {sent}"
    );
    save_screenshot(
        "dashboard-explorer.png",
        &full_page(&browser, 1440),
        target_dir(),
    );

    browser.click("#copy-csv");
    browser.wait_until(
        "return document.getElementById('explorer-status').textContent.startsWith('Copied');",
        WAIT,
        "the CSV copy",
    );
    let lines = browser.execute(
        "return Number(document.getElementById('explorer-status').dataset.csvLines);",
        vec![],
    );
    assert!(
        lines.as_u64().unwrap() > 100,
        "the CSV holds every row: {lines}"
    );

    browser.clear("#query-input");
    browser.type_into(
        "#query-input",
        "SELECT mean(util_pct) WHERE time > now() - 1h",
    );
    // The Run button, this time, once the completion list (which can cover it) is closed
    // with Escape, as a person would.
    std::thread::sleep(Duration::from_millis(600));
    browser.type_into("#query-input", ESCAPE);
    browser.wait_until(
        "return document.getElementById('completions').hidden;",
        WAIT,
        "the completion list to close",
    );
    browser.click("#run-query");
    browser.wait_until(
        "return !document.getElementById('query-error').hidden;",
        WAIT,
        "the parse error",
    );
    let rendered = browser
        .execute(
            "return document.getElementById('query-error').textContent;",
            vec![],
        )
        .as_str()
        .unwrap()
        .to_string();
    assert!(rendered.contains("expected FROM"), "{rendered}");
    let lines: Vec<&str> = rendered.lines().collect();
    let query_line = lines
        .iter()
        .position(|l| l.contains("SELECT mean(util_pct) WHERE"))
        .unwrap();
    let caret_line = lines[query_line + 1];
    assert_eq!(
        caret_line.find('^'),
        lines[query_line].find("WHERE"),
        "the caret is under WHERE:\n{rendered}"
    );
    save_screenshot(
        "dashboard-explorer-error.png",
        &browser.screenshot(),
        target_dir(),
    );
    // The query is kept in the URL, so the view can be shared.
    let hash = browser.execute("return decodeURIComponent(location.hash);", vec![]);
    assert!(hash.as_str().unwrap().contains("q=SELECT"), "{hash}");
    assert!(render_seq(&browser) >= seq);
    // Chromium logs every 4xx answer; the only one expected is the query that does not parse.
    let unexpected: Vec<String> = severe_console_messages(&browser)
        .into_iter()
        .filter(|m| !(m.contains("/query?q=SELECT+mean%28util_pct%29+WHERE") && m.contains("400")))
        .collect();
    assert_eq!(unexpected, Vec::<String>::new());
}

const HEATMAP_QUERIES: &str = "SELECT count(latency_ms) AS \"0 to 500 ms\" FROM llm WHERE latency_ms < 500 AND $timeFilter GROUP BY time($interval) fill(0);\n\
SELECT count(latency_ms) AS \"500 ms to 2 s\" FROM llm WHERE latency_ms >= 500 AND latency_ms < 2000 AND $timeFilter GROUP BY time($interval) fill(0);\n\
SELECT count(latency_ms) AS \"2000 ms to 8 s\" FROM llm WHERE latency_ms >= 2000 AND latency_ms < 8000 AND $timeFilter GROUP BY time($interval) fill(0);\n\
SELECT count(latency_ms) AS \"8000 ms and more\" FROM llm WHERE latency_ms >= 8000 AND $timeFilter GROUP BY time($interval) fill(0)";

/// Fills the panel editor and adds the panel.
fn add_panel(
    browser: &Browser,
    title: &str,
    chart: &str,
    unit: &str,
    queries: &str,
    preview: bool,
) {
    browser.click("#add-panel");
    browser.wait_until(
        "return !!document.querySelector('#panel-editor[open]');",
        WAIT,
        "the panel editor",
    );
    browser.type_into("#panel-title", title);
    browser.click(&format!("#panel-type option[value='{chart}']"));
    browser.click(&format!("#panel-unit option[value='{unit}']"));
    browser.clear("#panel-queries");
    browser.type_into("#panel-queries", queries);
    if preview {
        browser.click("#panel-preview");
        browser.wait_until(
            "const p = document.querySelector('#panel-editor .panel'); return !!p && p.dataset.state === 'data';",
            WAIT,
            "the panel preview",
        );
        save_screenshot(
            "dashboard-panel-editor.png",
            &browser.screenshot(),
            target_dir(),
        );
    }
    browser.click("#panel-apply");
    browser.wait_until(
        "return !document.querySelector('#panel-editor');",
        WAIT,
        "the panel editor to close",
    );
}

fn panel_titles(browser: &Browser) -> Vec<String> {
    browser
        .execute(
            "return Array.from(document.querySelectorAll('.dashboard-view .panel-title')).map(t => t.textContent);",
            vec![],
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_custom_dashboard_built_in_the_page_survives_a_restart() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let tallyd = Tallyd::start_in(&data_dir, &[]);
    feed(&tallyd);
    let browser = Browser::start(1440, 900);
    browser.goto(&format!("{}/#/dashboards", tallyd.url()));
    let mut seq = wait_drawn(&browser, 0, "the dashboards list");
    browser.type_into("#new-dashboard-title", "LLM latency and cost");
    browser.type_into("#new-dashboard-title", ENTER);
    seq = wait_drawn(&browser, seq, "the new dashboard");
    let hash = browser.execute("return location.hash;", vec![]);
    assert!(
        hash.as_str()
            .unwrap()
            .starts_with("#/dashboards/llm-latency-and-cost"),
        "{hash}"
    );

    add_panel(
        &browser,
        "Requests per second by provider",
        "bar",
        "requests_per_second",
        "SELECT count(latency_ms) / $intervalSeconds FROM llm WHERE $timeFilter $tagFilter GROUP BY time($interval), provider fill(0)",
        true,
    );
    add_panel(
        &browser,
        "Latency distribution",
        "heatmap",
        "count",
        HEATMAP_QUERIES,
        false,
    );
    add_panel(
        &browser,
        "Cost",
        "stat",
        "usd",
        "SELECT sum(cost_usd) AS cost FROM llm WHERE $timeFilter $tagFilter",
        false,
    );
    add_panel(
        &browser,
        "Scratch",
        "table",
        "none",
        "SHOW TAG VALUES FROM llm WITH KEY = model",
        false,
    );
    assert_eq!(
        panel_titles(&browser),
        [
            "Requests per second by provider",
            "Latency distribution",
            "Cost",
            "Scratch"
        ]
    );
    // Remove the scratch panel, move Cost to the front.
    browser.click("[data-panel-id='panel-4'] [data-action='remove']");
    browser.click(".dashboard-view .panel:nth-child(3) [data-action='up']");
    browser.click(".dashboard-view .panel:nth-child(2) [data-action='up']");
    assert_eq!(
        panel_titles(&browser),
        [
            "Cost",
            "Requests per second by provider",
            "Latency distribution"
        ]
    );
    browser.clear("#dashboard-description");
    browser.type_into(
        "#dashboard-description",
        "Requests, latency and spend of every provider",
    );
    let before_save = render_seq(&browser);
    browser.click("#save-dashboard");
    browser.wait_until(
        "return (document.getElementById('dashboard-status') || {}).textContent === 'Saved (version 2)';",
        WAIT,
        "the save",
    );
    wait_drawn(&browser, before_save.max(seq), "the saved dashboard");
    let saved = panels(&browser);
    for (id, state, query, ..) in &saved {
        assert_eq!(state, "data", "panel {id}: {query}");
    }
    save_screenshot(
        "dashboard-custom.png",
        &full_page(&browser, 1440),
        target_dir(),
    );

    tallyd.stop();
    let restarted = Tallyd::start_in(&data_dir, &[]);
    browser.goto(&format!(
        "{}/#/dashboards/llm-latency-and-cost",
        restarted.url()
    ));
    browser.wait_until(
        "return document.body.dataset.ready === 'true' && !!document.querySelector('.dashboard-view');",
        WAIT,
        "the dashboard after a restart",
    );
    assert_eq!(
        panel_titles(&browser),
        [
            "Cost",
            "Requests per second by provider",
            "Latency distribution"
        ]
    );
    for (id, state, query, ..) in panels(&browser) {
        assert_eq!(state, "data", "panel {id} after the restart: {query}");
    }
    let description = browser.execute(
        "return document.querySelector('.dashboard-head .muted').textContent;",
        vec![],
    );
    assert_eq!(description, "Requests, latency and spend of every provider");

    browser.goto(&format!("{}/#/dashboards", restarted.url()));
    browser.wait_until(
        "return !!document.querySelector('tr[data-dashboard-id=\"llm-latency-and-cost\"]');",
        WAIT,
        "the dashboards list",
    );
    save_screenshot("dashboard-list.png", &browser.screenshot(), target_dir());
    browser.click("tr[data-dashboard-id='llm-latency-and-cost'] a");
    browser.wait_until(
        "return !!document.getElementById('delete-dashboard');",
        WAIT,
        "the dashboard",
    );
    browser.click("#delete-dashboard");
    browser.click("#delete-dashboard");
    browser.wait_until(
        "return location.hash.startsWith('#/dashboards') && !!document.querySelector('.dashboards .empty-list');",
        WAIT,
        "the empty list after deleting",
    );
    let gone = restarted.request("GET", "/api/v1/dashboards/llm-latency-and-cost", &[], b"");
    assert_eq!(gone.status, 404);
    assert_eq!(severe_console_messages(&browser), Vec::<String>::new());
}
