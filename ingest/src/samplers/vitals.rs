//! The `self` sampler: Tally's own vitals as the `tally` measurement. What only the server knows
//! (points written, WAL size, queries and their latencies) comes through [`VitalsSource`], which
//! tallyd implements; the process figures (RSS, CPU, threads, open files) are read here.

use std::path::PathBuf;
use std::sync::Arc;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tally_engine::PointBatch;

use super::{SampleContext, Sampler, SamplerError, float, integer, named, push_point};

/// Query latencies over one sampling interval, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueryLatency {
    /// Queries that finished in the interval.
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What the server reports about itself.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Vitals {
    /// Points stored since start, all databases.
    pub points_written: u64,
    /// Points the engine refused since start.
    pub points_rejected: u64,
    pub series: u64,
    /// Bytes of WAL files on disk.
    pub wal_bytes: u64,
    /// Bytes of segment files on disk.
    pub segment_bytes: u64,
    /// Bytes held by the in-memory heads.
    pub head_bytes: u64,
    /// Query statements run since start, and those that failed.
    pub queries: u64,
    pub query_errors: u64,
    /// Latencies of the queries since the previous call, if any ran.
    pub query_latency: Option<QueryLatency>,
}

impl Vitals {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        points_written: u64,
        points_rejected: u64,
        series: u64,
        wal_bytes: u64,
        segment_bytes: u64,
        head_bytes: u64,
        queries: u64,
        query_errors: u64,
        query_latency: Option<QueryLatency>,
    ) -> Vitals {
        Vitals {
            points_written,
            points_rejected,
            series,
            wal_bytes,
            segment_bytes,
            head_bytes,
            queries,
            query_errors,
            query_latency,
        }
    }
}

/// The server side of the `self` sampler. Called once per run, on the sampler's thread.
pub trait VitalsSource: Send + Sync {
    fn vitals(&self) -> Vitals;
}

/// The `self` sampler.
pub struct SelfSampler {
    source: Arc<dyn VitalsSource>,
    system: System,
    pid: Option<Pid>,
    proc_root: PathBuf,
    previous: Option<(i64, Vitals)>,
}

fn refresh_kind() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing()
        .with_cpu()
        .with_memory()
        .without_tasks()
}

impl SelfSampler {
    pub fn new(source: Arc<dyn VitalsSource>) -> SelfSampler {
        super::process::keep_no_proc_files_open();
        let pid = sysinfo::get_current_pid().ok();
        let mut system = System::new();
        if let Some(pid) = pid {
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                refresh_kind(),
            );
        }
        SelfSampler {
            source,
            system,
            pid,
            proc_root: PathBuf::from("/proc"),
            previous: None,
        }
    }
}

/// Per-second rate of a counter between two readings; `None` without a previous reading or when
/// the counter went back.
fn rate(now: u64, before: u64, seconds: f64) -> Option<f64> {
    if seconds <= 0.0 || now < before {
        return None;
    }
    Some((now - before) as f64 / seconds)
}

/// The `tally` point's fields from a vitals reading and the previous one.
pub(crate) fn vitals_fields(
    now: &Vitals,
    previous: Option<(&Vitals, f64)>,
) -> Vec<(
    std::borrow::Cow<'static, str>,
    tally_engine::FieldValue<'static>,
)> {
    let mut fields = named([
        ("points_written", integer(now.points_written)),
        ("points_rejected", integer(now.points_rejected)),
        ("series", integer(now.series)),
        ("wal_bytes", integer(now.wal_bytes)),
        ("segment_bytes", integer(now.segment_bytes)),
        ("head_bytes", integer(now.head_bytes)),
        ("queries", integer(now.queries)),
        ("query_errors", integer(now.query_errors)),
    ]);
    if let Some((before, seconds)) = previous {
        if let Some(r) = rate(now.points_written, before.points_written, seconds) {
            fields.extend(named([("points_per_second", float(r))]));
        }
        if let Some(r) = rate(now.queries, before.queries, seconds) {
            fields.extend(named([("queries_per_second", float(r))]));
        }
    }
    if let Some(latency) = now.query_latency.filter(|l| l.count > 0) {
        fields.extend(named([
            ("query_latency_ms_p50", float(latency.p50_ms)),
            ("query_latency_ms_p99", float(latency.p99_ms)),
            ("query_latency_ms_max", float(latency.max_ms)),
        ]));
    }
    fields
}

impl Sampler for SelfSampler {
    fn sample(
        &mut self,
        ctx: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
    ) -> Result<(), SamplerError> {
        let vitals = self.source.vitals();
        let previous = self
            .previous
            .as_ref()
            .map(|(at, v)| (v, ctx.timestamp_ns.saturating_sub(*at) as f64 / 1e9));
        let mut fields = vitals_fields(&vitals, previous);
        if let Some(pid) = self.pid {
            self.system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                refresh_kind(),
            );
            if let Some(process) = self.system.process(pid) {
                fields.extend(named([
                    ("cpu_usage", float(f64::from(process.cpu_usage()))),
                    ("memory_rss", integer(process.memory())),
                    ("memory_vms", integer(process.virtual_memory())),
                ]));
                if let Some(fds) = process.open_files() {
                    fields.extend(named([("num_fds", integer(fds as u64))]));
                }
            }
            let status = self.proc_root.join(pid.as_u32().to_string()).join("status");
            if let Some(threads) = std::fs::read_to_string(status)
                .ok()
                .and_then(|s| super::procfs::parse_threads(&s))
            {
                fields.extend(named([("num_threads", integer(threads))]));
            }
        }
        self.previous = Some((ctx.timestamp_ns, vitals));
        push_point(
            batch,
            "tally",
            &[("host", ctx.host)],
            fields,
            ctx.timestamp_ns,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_need_a_previous_reading_and_a_counter_that_did_not_go_back() {
        let before = Vitals {
            points_written: 100,
            queries: 10,
            ..Vitals::default()
        };
        let now = Vitals {
            points_written: 600,
            queries: 5,
            query_latency: Some(QueryLatency {
                count: 3,
                p50_ms: 1.5,
                p99_ms: 9.0,
                max_ms: 12.0,
            }),
            ..Vitals::default()
        };
        let fields = vitals_fields(&now, Some((&before, 10.0)));
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("points_per_second"), Some(float(50.0)));
        assert_eq!(get("queries_per_second"), None, "the counter went back");
        assert_eq!(get("query_latency_ms_p99"), Some(float(9.0)));
        let first = vitals_fields(&now, None);
        assert!(first.iter().all(|(n, _)| n != "points_per_second"));
    }
}
