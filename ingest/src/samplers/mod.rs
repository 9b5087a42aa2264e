//! Built-in samplers: `host`, `process`, `gpu`, `scrape` and `self`, and the small framework
//! that runs them.
//!
//! Each sampler runs on its own thread, woken at wall-clock multiples of its interval (a 10 s
//! sampler runs at :00, :10, :20, …), stamps its points with that tick time and a `host` tag,
//! and writes them through a [`PointSink`]: in tallyd the engine's `Database::write`, the path
//! external writes take. Missed ticks are skipped, not queued.
//!
//! Invariants: a sampler's failure, panic or slowness touches only its own thread: the others
//! keep their schedule and keep writing; points a sampler produced before an error are still
//! written; every run updates the sampler's [`SamplerStatus`] (last run, duration, last error),
//! which tallyd shows in `/health` and `/metrics`.

mod gpu;
mod host;
mod presets;
mod process;
mod procfs;
mod scrape;
mod vitals;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tally_engine::{Engine, EngineError, PointBatch};

pub use gpu::{GpuDevice, GpuOptions, GpuProcessMemory, GpuSampler, gpu_points};
pub use host::{HostOptions, HostSampler};
pub use presets::{Preset, histogram_quantile};
pub use process::{DEFAULT_PROCESS_PATTERNS, ProcessOptions, ProcessSampler, validate_patterns};
pub use scrape::{ScrapeSampler, ScrapeTarget};
pub use vitals::{QueryLatency, SelfSampler, Vitals, VitalsSource};

/// The database samplers write to unless configured otherwise.
pub const DEFAULT_DATABASE: &str = "telemetry";
/// The interval of the default samplers.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// The shortest interval a sampler may have; shorter ones are raised to it.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// What a sampler gets for one run.
#[derive(Clone, Copy, Debug)]
pub struct SampleContext<'c> {
    /// The tick time in nanoseconds since the epoch: the timestamp of the run's points.
    pub timestamp_ns: i64,
    /// The value of the `host` tag.
    pub host: &'c str,
    /// The sampler's interval (rates are per second whatever it is).
    pub interval: Duration,
}

/// Why a sampler run failed or a sampler cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SamplerError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unexpected content at line {line}: {reason}")]
    Format {
        path: String,
        line: u32,
        reason: String,
    },
    #[error("cannot scrape {url}: {reason}")]
    Scrape { url: String, reason: String },
    #[error("{url} answered HTTP {status}; expected 200")]
    HttpStatus { url: String, status: u16 },
    #[error("{url}: {rejected} exposition lines rejected (the others were stored); first: {first}")]
    Exposition {
        url: String,
        rejected: u32,
        first: String,
    },
    #[error("invalid process pattern {pattern:?}: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    #[error("{0}")]
    Gpu(String),
    #[error("{sampler} is disabled: {reason}")]
    Unavailable { sampler: String, reason: String },
    #[error("{count} points were refused by the database; first: {first}")]
    Rejected { count: usize, first: String },
    #[error("writing to database {database:?} failed: {source}")]
    Write {
        database: String,
        #[source]
        source: EngineError,
    },
    #[error("{0}")]
    Several(String),
}

impl SamplerError {
    /// Joins the errors of independent parts of one run into one error (or none).
    pub(crate) fn combine(errors: Vec<SamplerError>) -> Result<(), SamplerError> {
        let mut errors = errors.into_iter();
        let Some(first) = errors.next() else {
            return Ok(());
        };
        let rest: Vec<String> = errors.map(|e| e.to_string()).collect();
        if rest.is_empty() {
            return Err(first);
        }
        Err(SamplerError::Several(format!(
            "{first}; and {} more: {}",
            rest.len(),
            rest.join("; ")
        )))
    }
}

/// A source of points, run once per tick by a [`SamplerSet`].
pub trait Sampler: Send {
    /// Adds this run's points to `batch`. Points added before an error are still written.
    fn sample(
        &mut self,
        context: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
    ) -> Result<(), SamplerError>;
}

/// Where samplers' points go.
pub trait PointSink: Send + Sync {
    /// Stores a batch; returns how many points were stored.
    fn write(&self, batch: &PointBatch<'_>) -> Result<usize, SamplerError>;
}

/// Writes into one database of an engine, creating it on first use: the path of external
/// writes.
pub struct EngineSink {
    engine: Arc<Engine>,
    database: String,
}

impl EngineSink {
    pub fn new(engine: Arc<Engine>, database: impl Into<String>) -> EngineSink {
        EngineSink {
            engine,
            database: database.into(),
        }
    }
}

impl PointSink for EngineSink {
    fn write(&self, batch: &PointBatch<'_>) -> Result<usize, SamplerError> {
        let write_error = |source| SamplerError::Write {
            database: self.database.clone(),
            source,
        };
        let database = match self.engine.database(&self.database) {
            Some(db) => db,
            None => match self.engine.create_database(&self.database) {
                Ok(db) => db,
                // Another writer created it between the two calls.
                Err(EngineError::DatabaseExists { .. }) => {
                    self.engine.database(&self.database).ok_or_else(|| {
                        write_error(EngineError::DatabaseNotFound {
                            name: self.database.clone(),
                        })
                    })?
                }
                Err(e) => return Err(write_error(e)),
            },
        };
        let summary = database.write(batch).map_err(write_error)?;
        if let Some(first) = summary.rejected.first() {
            return Err(SamplerError::Rejected {
                count: summary.rejected.len(),
                first: first.error.to_string(),
            });
        }
        Ok(summary.points_written)
    }
}

/// The state of a sampler, as `/health` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SamplerState {
    /// Started, no run finished yet.
    Starting,
    /// The last run succeeded.
    Ok,
    /// The last run failed (its points up to the error were still written).
    Failing,
    /// Not running: turned off in the configuration, or unavailable on this machine.
    Disabled,
}

impl SamplerState {
    pub fn name(self) -> &'static str {
        match self {
            SamplerState::Starting => "starting",
            SamplerState::Ok => "ok",
            SamplerState::Failing => "failing",
            SamplerState::Disabled => "disabled",
        }
    }
}

/// A sampler's health: what its last run did and totals since start.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerStatus {
    /// `host`, `process`, `gpu`, `self`, or `scrape:<url>`.
    pub name: String,
    pub interval: Duration,
    pub state: SamplerState,
    /// Why a disabled sampler is disabled.
    pub disabled_reason: Option<String>,
    /// Tick time of the last finished run, in nanoseconds since the epoch.
    pub last_run_ns: Option<i64>,
    /// How long the last run took, writing included.
    pub last_duration: Option<Duration>,
    /// The last run's error, if it failed.
    pub last_error: Option<String>,
    pub runs: u64,
    pub failures: u64,
    pub points_written: u64,
}

impl SamplerStatus {
    fn new(name: &str, interval: Duration, state: SamplerState) -> SamplerStatus {
        SamplerStatus {
            name: name.to_string(),
            interval,
            state,
            disabled_reason: None,
            last_run_ns: None,
            last_duration: None,
            last_error: None,
            runs: 0,
            failures: 0,
            points_written: 0,
        }
    }
}

/// Shared, cheaply cloned view of every sampler's status.
#[derive(Clone, Default)]
pub struct SamplerStatuses {
    entries: Arc<Mutex<Vec<Arc<Mutex<SamplerStatus>>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a status lock leaves plain data behind; reading it is safe.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SamplerStatuses {
    /// A copy of every status, in the order the samplers were added.
    pub fn snapshot(&self) -> Vec<SamplerStatus> {
        lock(&self.entries)
            .iter()
            .map(|s| lock(s).clone())
            .collect()
    }

    fn add(&self, status: SamplerStatus) -> Arc<Mutex<SamplerStatus>> {
        let entry = Arc::new(Mutex::new(status));
        lock(&self.entries).push(entry.clone());
        entry
    }
}

struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    /// Sleeps until the wall clock reaches `target_ns`; false when stopped first.
    fn sleep_until(&self, target_ns: i64) -> bool {
        let mut stopped = lock(&self.stopped);
        loop {
            if *stopped {
                return false;
            }
            let now = now_ns();
            if now >= target_ns {
                return true;
            }
            let wait = Duration::from_nanos(u64::try_from(target_ns - now).unwrap_or(0));
            stopped = match self.wake.wait_timeout(stopped, wait) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// Wall-clock time in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The first multiple of `interval_ns` strictly after `now_ns`.
fn next_tick(now_ns: i64, interval_ns: i64) -> i64 {
    (now_ns.div_euclid(interval_ns) + 1).saturating_mul(interval_ns)
}

/// The running samplers: one thread each, stopped together.
pub struct SamplerSet {
    sink: Arc<dyn PointSink>,
    host: Arc<str>,
    stop: Arc<StopSignal>,
    threads: Vec<JoinHandle<()>>,
    statuses: SamplerStatuses,
}

impl SamplerSet {
    /// A set writing to `sink`, tagging every point with `host`.
    pub fn new(sink: Arc<dyn PointSink>, host: &str) -> SamplerSet {
        SamplerSet {
            sink,
            host: Arc::from(host),
            stop: Arc::new(StopSignal {
                stopped: Mutex::new(false),
                wake: Condvar::new(),
            }),
            threads: Vec::new(),
            statuses: SamplerStatuses::default(),
        }
    }

    /// The statuses of every sampler added, live.
    pub fn statuses(&self) -> SamplerStatuses {
        self.statuses.clone()
    }

    /// Lists a sampler that does not run, with the reason, so that `/health` shows it.
    pub fn add_disabled(&mut self, name: &str, interval: Duration, reason: &str) {
        let mut status = SamplerStatus::new(name, interval, SamplerState::Disabled);
        status.disabled_reason = Some(reason.to_string());
        self.statuses.add(status);
    }

    /// Starts `sampler` on its own thread, running every `interval` (at least
    /// [`MIN_INTERVAL`]) at wall-clock multiples of it.
    pub fn spawn(
        &mut self,
        name: &str,
        interval: Duration,
        mut sampler: Box<dyn Sampler>,
    ) -> std::io::Result<()> {
        let interval = interval.max(MIN_INTERVAL);
        let status = self
            .statuses
            .add(SamplerStatus::new(name, interval, SamplerState::Starting));
        let sink = self.sink.clone();
        let stop = self.stop.clone();
        let host = self.host.clone();
        let interval_ns = i64::try_from(interval.as_nanos()).unwrap_or(i64::MAX);
        let thread_name: String = format!("sampler-{name}").chars().take(15).collect();
        let handle = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let mut batch = PointBatch::new();
                loop {
                    let tick = next_tick(now_ns(), interval_ns);
                    if !stop.sleep_until(tick) {
                        return;
                    }
                    let context = SampleContext {
                        timestamp_ns: tick,
                        host: &host,
                        interval,
                    };
                    run_once(
                        sampler.as_mut(),
                        &context,
                        &mut batch,
                        sink.as_ref(),
                        &status,
                    );
                }
            })?;
        self.threads.push(handle);
        Ok(())
    }

    /// Stops every sampler and waits up to `wait` for their threads; a thread still inside a
    /// slow call after that is left to finish on its own (it writes nothing more that matters
    /// to shutdown: the engine refuses writes once closed).
    pub fn stop(mut self, wait: Duration) {
        self.signal_stop();
        let deadline = Instant::now() + wait;
        for handle in std::mem::take(&mut self.threads) {
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }

    fn signal_stop(&self) {
        *lock(&self.stop.stopped) = true;
        self.stop.wake.notify_all();
    }
}

impl Drop for SamplerSet {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// One run: sample, write what was sampled, record the outcome. A panicking sampler is a bug;
/// it is caught so that it costs only this run.
pub fn run_once(
    sampler: &mut dyn Sampler,
    context: &SampleContext<'_>,
    batch: &mut PointBatch<'static>,
    sink: &dyn PointSink,
    status: &Mutex<SamplerStatus>,
) {
    let started = Instant::now();
    batch.clear();
    let sampled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sampler.sample(context, batch)
    }))
    .unwrap_or_else(|_| {
        Err(SamplerError::Several(
            "BUG: the sampler panicked; its next run starts afresh".to_string(),
        ))
    });
    let mut written = 0;
    let mut errors = Vec::new();
    if let Err(e) = sampled {
        errors.push(e);
    }
    if !batch.is_empty() {
        match sink.write(batch) {
            Ok(n) => written = n,
            Err(e) => errors.push(e),
        }
    }
    let outcome = SamplerError::combine(errors);
    let mut status = lock(status);
    status.runs += 1;
    status.last_run_ns = Some(context.timestamp_ns);
    status.last_duration = Some(started.elapsed());
    status.points_written += written as u64;
    match outcome {
        Ok(()) => {
            if status.state == SamplerState::Failing {
                tracing::info!(sampler = status.name.as_str(), "sampler recovered");
            }
            status.state = SamplerState::Ok;
            status.last_error = None;
        }
        Err(e) => {
            let message = e.to_string();
            // Log a failure when it starts or changes, not on every run of a lasting one.
            if status.last_error.as_deref() != Some(message.as_str()) {
                tracing::warn!(sampler = status.name.as_str(), error = %message, "sampler run failed");
            }
            status.state = SamplerState::Failing;
            status.failures += 1;
            status.last_error = Some(message);
        }
    }
}

/// A float field, or an integer field saturated from an unsigned count, the two kinds of value
/// samplers write.
pub(crate) fn float(v: f64) -> tally_engine::FieldValue<'static> {
    tally_engine::FieldValue::Float(v)
}

pub(crate) fn integer(v: u64) -> tally_engine::FieldValue<'static> {
    tally_engine::FieldValue::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

/// Adds one point with owned tags and fields; skips points without fields. A point the batch
/// refuses (a name over the engine's limits) is an error naming the measurement.
pub(crate) fn push_point(
    batch: &mut PointBatch<'static>,
    measurement: &str,
    tags: &[(&str, &str)],
    fields: Vec<(
        std::borrow::Cow<'static, str>,
        tally_engine::FieldValue<'static>,
    )>,
    timestamp_ns: i64,
) -> Result<(), SamplerError> {
    use std::borrow::Cow;
    if fields.is_empty() {
        return Ok(());
    }
    batch
        .push(
            Cow::Owned(measurement.to_string()),
            tags.iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (Cow::Owned(k.to_string()), Cow::Owned(v.to_string()))),
            fields,
            timestamp_ns,
        )
        .map_err(|e| SamplerError::Rejected {
            count: 1,
            first: format!("{measurement}: {e}"),
        })
}

/// Fields with static names, as [`push_point`] takes them.
pub(crate) fn named(
    fields: impl IntoIterator<Item = (&'static str, tally_engine::FieldValue<'static>)>,
) -> Vec<(
    std::borrow::Cow<'static, str>,
    tally_engine::FieldValue<'static>,
)> {
    fields
        .into_iter()
        .map(|(k, v)| (std::borrow::Cow::Borrowed(k), v))
        .collect()
}

/// The name of this machine for the `host` tag: the kernel's host name, else `localhost`.
pub fn host_name() -> String {
    sysinfo::System::host_name()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fall_on_multiples_of_the_interval_strictly_after_now() {
        assert_eq!(next_tick(0, 10), 10);
        assert_eq!(next_tick(9, 10), 10);
        assert_eq!(next_tick(10, 10), 20);
        assert_eq!(next_tick(-5, 10), 0);
        assert_eq!(next_tick(i64::MAX - 1, 10), i64::MAX);
    }

    #[test]
    fn combined_errors_keep_the_first_and_count_the_rest() {
        assert!(SamplerError::combine(Vec::new()).is_ok());
        let one = SamplerError::combine(vec![SamplerError::Gpu("a".into())]).unwrap_err();
        assert_eq!(one.to_string(), "a");
        let two = SamplerError::combine(vec![
            SamplerError::Gpu("a".into()),
            SamplerError::Gpu("b".into()),
        ])
        .unwrap_err();
        assert_eq!(two.to_string(), "a; and 1 more: b");
    }

    /// Counts what it is given, so a test can see which points a run wrote.
    #[derive(Default)]
    struct CountingSink {
        points: Mutex<usize>,
    }

    impl PointSink for CountingSink {
        fn write(&self, batch: &PointBatch<'_>) -> Result<usize, SamplerError> {
            *lock(&self.points) += batch.len();
            Ok(batch.len())
        }
    }

    struct PanicsOnOddRuns {
        runs: u32,
    }

    impl Sampler for PanicsOnOddRuns {
        fn sample(
            &mut self,
            context: &SampleContext<'_>,
            batch: &mut PointBatch<'static>,
        ) -> Result<(), SamplerError> {
            self.runs += 1;
            if self.runs % 2 == 1 {
                panic!("deliberate panic in run {}", self.runs);
            }
            push_point(
                batch,
                "m",
                &[("host", context.host)],
                named([("f", float(1.0))]),
                context.timestamp_ns,
            )
        }
    }

    #[test]
    fn a_panicking_run_is_recorded_as_a_failure_and_the_next_run_still_writes() {
        let mut sampler = PanicsOnOddRuns { runs: 0 };
        let sink = CountingSink::default();
        let status = Mutex::new(SamplerStatus::new(
            "panicky",
            DEFAULT_INTERVAL,
            SamplerState::Starting,
        ));
        let mut batch = PointBatch::new();
        let context = SampleContext {
            timestamp_ns: 10,
            host: "node-1",
            interval: DEFAULT_INTERVAL,
        };
        run_once(&mut sampler, &context, &mut batch, &sink, &status);
        {
            let after_panic = lock(&status);
            assert_eq!(after_panic.state, SamplerState::Failing);
            assert_eq!(after_panic.failures, 1);
            let error = after_panic.last_error.clone().unwrap_or_default();
            assert!(error.contains("panicked"), "{error}");
        }
        run_once(&mut sampler, &context, &mut batch, &sink, &status);
        let recovered = lock(&status);
        assert_eq!(recovered.state, SamplerState::Ok);
        assert_eq!(recovered.runs, 2);
        assert_eq!(recovered.points_written, 1);
        assert_eq!(*lock(&sink.points), 1);
    }
}
