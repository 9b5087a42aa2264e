//! Tally's own metrics, rendered in the Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::sync::Mutex;

use tally_engine::Engine;

/// A per-database metric: name, type, help text and how to read it from the stats.
type DatabaseGauge = (
    &'static str,
    &'static str,
    &'static str,
    fn(&tally_engine::DatabaseStats) -> u64,
);

const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Lines rejected by the line protocol parser, per database.
    lines_rejected: Mutex<BTreeMap<String, u64>>,
    pub bytes_received: AtomicU64,
    pub queries: AtomicU64,
    pub query_errors: AtomicU64,
    /// Alert rule evaluations and notifications, set once alerting starts.
    pub alerts: std::sync::OnceLock<std::sync::Arc<crate::alerts::AlertMetrics>>,
}

impl Metrics {
    pub(crate) fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry((route.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut latency) = self.latency.lock() {
            let h = latency.entry(route.to_string()).or_default();
            let secs = elapsed.as_secs_f64();
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.buckets[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    pub(crate) fn lines_rejected(&self, database: &str, n: u64) {
        if n == 0 {
            return;
        }
        if let Ok(mut map) = self.lines_rejected.lock() {
            *map.entry(database.to_string()).or_default() += n;
        }
    }

    /// Renders every metric, reading the engine's per-database gauges.
    pub(crate) fn render(&self, engine: &Engine, uptime: Duration) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP tally_uptime_seconds Seconds since tallyd started."
        );
        let _ = writeln!(out, "# TYPE tally_uptime_seconds gauge");
        let _ = writeln!(out, "tally_uptime_seconds {}", uptime.as_secs_f64());
        let _ = writeln!(out, "# HELP tally_build_info Version of tallyd.");
        let _ = writeln!(out, "# TYPE tally_build_info gauge");
        let _ = writeln!(
            out,
            "tally_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );

        let dbs: Vec<(String, tally_engine::DatabaseStats)> = engine
            .database_names()
            .into_iter()
            .filter_map(|name| engine.database(&name).map(|db| (name, db.stats())))
            .collect();
        let gauges: [DatabaseGauge; 20] = [
            (
                "tally_compactions_total",
                "counter",
                "Blocks compacted.",
                |s| s.compactions,
            ),
            (
                "tally_compaction_failures_total",
                "counter",
                "Compactions that failed (retried later).",
                |s| s.compaction_failures,
            ),
            (
                "tally_compaction_written_bytes_total",
                "counter",
                "Bytes written by compaction.",
                |s| s.compaction_bytes_written,
            ),
            (
                "tally_retention_deleted_segments_total",
                "counter",
                "Segments deleted by retention.",
                |s| s.segments_expired,
            ),
            (
                "tally_retention_deleted_bytes_total",
                "counter",
                "Bytes deleted by retention.",
                |s| s.bytes_expired,
            ),
            (
                "tally_rollup_segments",
                "gauge",
                "Segment files holding rollup tiers.",
                |s| s.rollup_segments,
            ),
            (
                "tally_tombstones",
                "gauge",
                "Deletions not yet applied by compaction.",
                |s| s.tombstones,
            ),
            (
                "tally_points_written_total",
                "counter",
                "Points stored.",
                |s| s.points_written,
            ),
            (
                "tally_points_rejected_total",
                "counter",
                "Points refused by the engine (type conflicts, series limit).",
                |s| s.points_rejected,
            ),
            (
                "tally_wal_bytes_total",
                "counter",
                "Bytes appended to the WAL since start.",
                |s| s.wal_bytes_appended,
            ),
            (
                "tally_wal_preallocated_bytes_total",
                "counter",
                "Bytes of WAL files written zero-filled ahead of use since start.",
                |s| s.wal_bytes_preallocated,
            ),
            (
                "tally_wal_grown_bytes_total",
                "counter",
                "Bytes appended past the preallocated part of their WAL file (their fsyncs commit the file-system journal).",
                |s| s.wal_bytes_grown,
            ),
            ("tally_series", "gauge", "Series per database.", |s| {
                s.series
            }),
            (
                "tally_columns",
                "gauge",
                "Columns (series x field) per database.",
                |s| s.columns,
            ),
            (
                "tally_head_bytes",
                "gauge",
                "Bytes held by the in-memory head.",
                |s| s.head_bytes,
            ),
            (
                "tally_head_points",
                "gauge",
                "Points held by the in-memory head.",
                |s| s.head_points,
            ),
            (
                "tally_flushing_bytes",
                "gauge",
                "Bytes of head data being flushed.",
                |s| s.flushing_bytes,
            ),
            (
                "tally_segments",
                "gauge",
                "Segment files per database.",
                |s| s.segments,
            ),
            (
                "tally_segment_bytes",
                "gauge",
                "Bytes of segment files per database.",
                |s| s.segment_bytes,
            ),
            (
                "tally_flushes_total",
                "counter",
                "Head flushes since start.",
                |s| s.flushes,
            ),
        ];
        for (name, kind, help, get) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (db, stats) in &dbs {
                let _ = writeln!(out, "{name}{{db=\"{}\"}} {}", escape_label(db), get(stats));
            }
        }
        let _ = writeln!(
            out,
            "# HELP tally_lines_rejected_total Lines refused by the line protocol parser."
        );
        let _ = writeln!(out, "# TYPE tally_lines_rejected_total counter");
        if let Ok(map) = self.lines_rejected.lock() {
            for (db, n) in map.iter() {
                let _ = writeln!(
                    out,
                    "tally_lines_rejected_total{{db=\"{}\"}} {n}",
                    escape_label(db)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP tally_http_received_bytes_total Request body bytes received."
        );
        let _ = writeln!(out, "# TYPE tally_http_received_bytes_total counter");
        let _ = writeln!(
            out,
            "tally_http_received_bytes_total {}",
            self.bytes_received.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP tally_queries_total Query statements executed.");
        let _ = writeln!(out, "# TYPE tally_queries_total counter");
        let _ = writeln!(
            out,
            "tally_queries_total {}",
            self.queries.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tally_query_errors_total Query statements that failed."
        );
        let _ = writeln!(out, "# TYPE tally_query_errors_total counter");
        let _ = writeln!(
            out,
            "tally_query_errors_total {}",
            self.query_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tally_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE tally_http_requests_total counter");
        if let Ok(requests) = self.requests.lock() {
            for ((route, status), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "tally_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP tally_http_request_duration_seconds HTTP request latency by route."
        );
        let _ = writeln!(out, "# TYPE tally_http_request_duration_seconds histogram");
        if let Ok(latency) = self.latency.lock() {
            for (route, h) in latency.iter() {
                for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "tally_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                        h.buckets[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "tally_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "tally_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "tally_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        if let Some(alerts) = self.alerts.get() {
            alerts.render(&mut out);
        }
        out
    }
}

/// Escapes a label value for the text format: backslash, double quote and newline.
pub(crate) fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
