//! `tally-dump import`: loads line protocol, CSV (the annotated layout `export` writes) or JSON
//! lines into a running server (HTTP `/write`, several batches in flight) or into a stopped
//! data directory (through the engine, under its lock). Input may be zstd- or gzip-compressed
//! (detected from its first bytes), from files or standard input.
//!
//! Every rejected line is reported with its file, line and column and the reason; valid lines
//! are kept, as the server keeps them. Line protocol goes to the server unparsed, cut into
//! batches at line boundaries (a string field may hold line breaks, so boundaries are found
//! by a scanner that follows quotes); CSV and JSON lines are converted to points here.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tally_engine::{Database, Engine, EngineError, FieldValue, PointBatch};
use tally_ingest::line_protocol::{ParseOptions, Precision, parse_lines, write_line};

use super::error::DumpError;
use super::http::Server;
use super::util::{Progress, parse_time};

/// The input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    Auto,
    LineProtocol,
    Csv,
    JsonLines,
}

#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Files to read; empty or `-` reads standard input.
    pub inputs: Vec<PathBuf>,
    pub host: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// The database to write into; when absent the input must name it (the
    /// `# CONTEXT-DATABASE:` comments, `#database` rows or `database` keys that export writes).
    pub database: Option<String>,
    pub format: InputFormat,
    /// The unit of line protocol timestamps.
    pub precision: Precision,
    /// Lines per batch.
    pub batch_lines: usize,
    /// Batches in flight to a server.
    pub concurrency: usize,
    /// Rejected lines listed in the report (all are counted).
    pub max_listed_errors: usize,
}

/// One rejected line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedLine {
    pub input: String,
    pub line: u64,
    pub column: u32,
    pub reason: String,
}

impl std::fmt::Display for RejectedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.input, self.line, self.column, self.reason
        )
    }
}

/// What an import did.
#[derive(Clone, Debug, Default)]
pub struct ImportSummary {
    pub lines: u64,
    pub points_written: u64,
    pub rejected: u64,
    /// Rejected lines in input order, at most `max_listed_errors`.
    pub listed: Vec<RejectedLine>,
    /// NaN or infinite values a server could not be sent (line protocol cannot carry them).
    pub non_finite_skipped: u64,
    pub batches: u64,
    pub bytes: u64,
}

/// A batch ready to send: line protocol for one database, and where its lines came from.
pub(crate) struct Batch {
    database: String,
    input: Arc<str>,
    body: Vec<u8>,
    /// Points converted from CSV or JSON lines for the offline engine (which, unlike a server,
    /// can store NaN and infinities); `body` is empty then.
    points: Option<PointBatch<'static>>,
    /// For line protocol read as is: the input line of the body's first line. For converted
    /// input: the input line of each body line.
    lines: LineMap,
    n_lines: u64,
}

pub(crate) enum LineMap {
    Offset(u64),
    Each(Vec<u64>),
}

impl LineMap {
    fn input_line(&self, batch_line: u32) -> u64 {
        match self {
            LineMap::Offset(first) => first + u64::from(batch_line.saturating_sub(1)),
            LineMap::Each(lines) => lines
                .get(batch_line.saturating_sub(1) as usize)
                .copied()
                .unwrap_or(0),
        }
    }
}

/// What storing a batch did: points written, and rejected lines as (batch line, column, reason).
type StoreOutcome = (u64, Vec<(u32, u32, String)>);

/// Where batches go.
trait Destination: Send + Sync {
    /// Stores a batch; returns (points written, rejected lines as (batch line, column, reason)).
    fn store(&self, batch: &Batch) -> Result<StoreOutcome, DumpError>;

    /// Called once after the last batch.
    fn finish(&self) -> Result<(), DumpError> {
        Ok(())
    }
}

struct ServerDestination {
    server: Server,
    precision: &'static str,
}

#[derive(serde::Deserialize)]
struct PartialWrite {
    #[serde(default)]
    written: u64,
    #[serde(default)]
    rejected: Vec<PartialLine>,
    #[serde(default)]
    rejected_omitted: u64,
}

#[derive(serde::Deserialize)]
struct PartialLine {
    line: u32,
    column: u32,
    reason: String,
}

impl ServerDestination {
    fn send(&self, database: &str, body: &[u8], depth: u32) -> Result<StoreOutcome, DumpError> {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let answer = self.server.post(
                "/write",
                &[("db", database), ("precision", self.precision)],
                body,
                "text/plain; charset=utf-8",
            )?;
            match answer.status {
                204 => {
                    let lines = count_points_estimate(body);
                    return Ok((lines, Vec::new()));
                }
                400 => {
                    let partial: PartialWrite =
                        serde_json::from_str(&answer.body).map_err(|_| {
                            DumpError::http(
                                self.server.url("/write"),
                                format!("status 400: {}", answer.body.trim()),
                            )
                        })?;
                    if partial.rejected.is_empty() && partial.written == 0 {
                        return Err(DumpError::http(
                            self.server.url("/write"),
                            format!("status 400: {}", answer.body.trim()),
                        ));
                    }
                    let mut rejected: Vec<(u32, u32, String)> = partial
                        .rejected
                        .into_iter()
                        .map(|r| (r.line, r.column, r.reason))
                        .collect();
                    if partial.rejected_omitted > 0 {
                        rejected.push((
                            0,
                            0,
                            format!(
                                "{} more lines rejected (the server lists at most 100 per batch)",
                                partial.rejected_omitted
                            ),
                        ));
                    }
                    return Ok((partial.written, rejected));
                }
                404 if attempts == 1 => {
                    let create = format!(
                        "CREATE DATABASE \"{}\"",
                        database.replace('\\', "\\\\").replace('"', "\\\"")
                    );
                    let created = self
                        .server
                        .post_empty("/query", &[("q", create.as_str())])?;
                    if created.status != 200 {
                        return Err(DumpError::http(
                            self.server.url("/query"),
                            format!(
                                "cannot create database {database:?}: status {}: {}",
                                created.status,
                                created.body.trim()
                            ),
                        ));
                    }
                }
                413 if depth < 16 => {
                    // Too large for the server's body limit: halve at a line boundary.
                    let Some(cut) = split_point(body) else {
                        return Err(DumpError::http(
                            self.server.url("/write"),
                            "a single line exceeds the server's body limit",
                        ));
                    };
                    let (first, second) = body.split_at(cut);
                    let first_lines = physical_lines(first);
                    let (a_points, a_rejected) = self.send(database, first, depth + 1)?;
                    let (b_points, b_rejected) = self.send(database, second, depth + 1)?;
                    let mut rejected = a_rejected;
                    rejected.extend(b_rejected.into_iter().map(|(line, column, reason)| {
                        (line.saturating_add(first_lines), column, reason)
                    }));
                    return Ok((a_points + b_points, rejected));
                }
                503 if attempts < 60 => {
                    std::thread::sleep(answer.retry_after.unwrap_or(Duration::from_secs(1)));
                }
                status => {
                    return Err(DumpError::http(
                        self.server.url("/write"),
                        format!("status {status}: {}", answer.body.trim()),
                    ));
                }
            }
        }
    }
}

/// Points in a body the server stored whole: its lines that are neither blank nor comments.
fn count_points_estimate(body: &[u8]) -> u64 {
    let mut n = 0u64;
    let mut at = 0usize;
    while at < body.len() {
        let end = line_end(body, at);
        let line = &body[at..end];
        let trimmed = line.iter().position(|b| !b.is_ascii_whitespace());
        if let Some(first) = trimmed
            && line[first] != b'#'
        {
            n += 1;
        }
        at = end;
    }
    n
}

impl Destination for ServerDestination {
    fn store(&self, batch: &Batch) -> Result<StoreOutcome, DumpError> {
        self.send(&batch.database, &batch.body, 0)
    }
}

struct OfflineDestination {
    engine: Engine,
    precision: Precision,
}

impl OfflineDestination {
    fn database(&self, name: &str) -> Result<Arc<Database>, DumpError> {
        Ok(self.engine.create_database(name)?)
    }
}

impl Destination for OfflineDestination {
    /// Flushes everything into segments, so the directory opens without replaying a WAL.
    fn finish(&self) -> Result<(), DumpError> {
        Ok(self.engine.close()?)
    }

    fn store(&self, batch: &Batch) -> Result<StoreOutcome, DumpError> {
        let database = self.database(&batch.database)?;
        if let Some(points) = &batch.points {
            let summary = write_with_retry(&database, points)?;
            let rejected = summary
                .rejected
                .iter()
                .map(|r| {
                    (
                        u32::try_from(r.point + 1).unwrap_or(u32::MAX),
                        1,
                        r.error.to_string(),
                    )
                })
                .collect();
            return Ok((summary.points_written as u64, rejected));
        }
        let options = ParseOptions::new(super::util::now_ns()).with_precision(self.precision);
        let mut points = PointBatch::new();
        let mut point_lines = Vec::new();
        let report = parse_lines(&batch.body, &options, &mut points, &mut point_lines);
        let mut rejected: Vec<(u32, u32, String)> = report
            .errors
            .iter()
            .map(|e| (e.line, e.column, e.kind.to_string()))
            .collect();
        let summary = write_with_retry(&database, &points)?;
        for r in &summary.rejected {
            rejected.push((
                point_lines.get(r.point).copied().unwrap_or(0),
                1,
                r.error.to_string(),
            ));
        }
        Ok((summary.points_written as u64, rejected))
    }
}

/// Writes a batch, flushing when the head is full (offline, nothing else flushes in time).
fn write_with_retry(
    database: &Database,
    points: &PointBatch<'_>,
) -> Result<tally_engine::WriteSummary, DumpError> {
    for _ in 0..100 {
        match database.write(points) {
            Err(EngineError::MemoryPressure { .. }) => {
                database.flush(true)?;
            }
            other => return Ok(other?),
        }
    }
    Err(DumpError::Failed(
        "the engine kept refusing writes under memory pressure".into(),
    ))
}

/// Where the line starting at `start` ends (just past its `\n`, or the end of the data). A
/// string field value (`="..."`) may hold line breaks; a backslash escapes the next byte.
pub(crate) fn line_end(data: &[u8], start: usize) -> usize {
    // Only a quote or a backslash can carry a line past its first line break: without either
    // before that break, the line ends there (found with vector instructions, byte by byte
    // scanning was a quarter of an import's time).
    let rest = &data[start.min(data.len())..];
    let break_at = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    if memchr::memchr2(b'"', b'\\', &rest[..break_at]).is_none() {
        return (start + break_at + 1).min(data.len());
    }
    line_end_scanning(data, start)
}

/// `line_end` for a line that holds a quote or a backslash: follows the syntax byte by byte.
fn line_end_scanning(data: &[u8], start: usize) -> usize {
    #[derive(PartialEq)]
    enum State {
        Series,
        FieldKey,
        FieldValue,
        Timestamp,
    }
    let mut state = State::Series;
    let mut at = start;
    // Comments and blank lines end at the first line break.
    let first = data[start..]
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .map(|p| start + p);
    if first.is_none_or(|p| data[p] == b'#' || data[p] == b'\n') {
        return memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |p| start + p + 1);
    }
    while at < data.len() {
        let b = data[at];
        match b {
            b'\\' => {
                at += 2;
                continue;
            }
            b'\n' => return at + 1,
            b' ' => {
                state = match state {
                    State::Series => State::FieldKey,
                    State::FieldKey | State::FieldValue => State::Timestamp,
                    State::Timestamp => State::Timestamp,
                };
            }
            b'=' if state == State::FieldKey => {
                state = State::FieldValue;
                if data.get(at + 1) == Some(&b'"') {
                    // A quoted string: runs to the next unescaped quote, line breaks included.
                    let mut k = at + 2;
                    loop {
                        match data.get(k) {
                            None => {
                                // Never closed: end the line at its first line break, as the
                                // parser does.
                                return memchr::memchr(b'\n', &data[at..])
                                    .map_or(data.len(), |p| at + p + 1);
                            }
                            Some(b'\\') => k += 2,
                            Some(b'"') => break,
                            Some(_) => k += 1,
                        }
                    }
                    at = k + 1;
                    continue;
                }
            }
            b',' if state == State::FieldValue => state = State::FieldKey,
            _ => {}
        }
        at += 1;
    }
    data.len()
}

/// Physical lines (line breaks) in `data`.
fn physical_lines(data: &[u8]) -> u32 {
    memchr::memchr_iter(b'\n', data).count() as u32
}

/// A line boundary near the middle of `body`, for splitting a batch the server found too large.
fn split_point(body: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    let middle = body.len() / 2;
    while at < body.len() {
        let end = line_end(body, at);
        if end >= middle && end < body.len() {
            return Some(end);
        }
        at = end;
    }
    None
}

/// Opens an input: a file or standard input, decompressed when it starts with a zstd or gzip
/// magic number.
fn open_input(path: &Path) -> Result<(Box<dyn BufRead + Send>, Option<u64>), DumpError> {
    let (raw, size): (Box<dyn Read + Send>, Option<u64>) = if path.as_os_str() == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = File::open(path).map_err(|e| DumpError::io(path, e))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let mut buffered = BufReader::with_capacity(1 << 20, raw);
    let head = buffered.fill_buf().map_err(|e| DumpError::io(path, e))?;
    let reader: Box<dyn BufRead + Send> = if head.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        Box::new(BufReader::with_capacity(
            1 << 20,
            zstd::Decoder::with_buffer(buffered).map_err(|e| DumpError::io(path, e))?,
        ))
    } else if head.starts_with(&[0x1F, 0x8B]) {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    };
    Ok((reader, size))
}

/// Decides the format of an input from its name, or from its first line.
fn detect_format(path: &Path, reader: &mut dyn BufRead) -> Result<InputFormat, DumpError> {
    let name = path.to_string_lossy().to_lowercase();
    let name = name
        .trim_end_matches(".zst")
        .trim_end_matches(".gz")
        .to_string();
    if name.ends_with(".csv") {
        return Ok(InputFormat::Csv);
    }
    if name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json") {
        return Ok(InputFormat::JsonLines);
    }
    if name.ends_with(".lp") || name.ends_with(".line") || name.ends_with(".txt") {
        return Ok(InputFormat::LineProtocol);
    }
    let head = reader.fill_buf().map_err(|e| DumpError::io(path, e))?;
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    Ok(if first.starts_with('{') {
        InputFormat::JsonLines
    } else if first.starts_with("#database,") || first.starts_with("#measurement,") {
        InputFormat::Csv
    } else {
        InputFormat::LineProtocol
    })
}

/// Collects results from the workers.
#[derive(Default)]
struct Results {
    summary: ImportSummary,
    /// Rejected lines by (input order, line) so the report is in input order.
    rejected: BTreeMap<(usize, u64, u32), RejectedLine>,
    failure: Option<DumpError>,
}

/// Runs `import`.
pub fn import(options: &ImportOptions, progress: &Progress) -> Result<ImportSummary, DumpError> {
    let destination: Arc<dyn Destination> = match (&options.host, &options.data_dir) {
        (Some(host), None) => Arc::new(ServerDestination {
            server: Server::new(host)?,
            precision: match options.precision {
                Precision::Nanoseconds => "ns",
                Precision::Microseconds => "u",
                Precision::Milliseconds => "ms",
                Precision::Seconds => "s",
                Precision::Minutes => "m",
                Precision::Hours => "h",
            },
        }),
        (None, Some(dir)) => {
            let engine = Engine::open(dir, super::util::offline_engine_options()).map_err(|e| match e {
                EngineError::Locked { holder, .. } => DumpError::Failed(format!(
                    "{} is in use by a running tallyd ({holder}): import through it with --host URL, or stop it",
                    dir.display()
                )),
                other => DumpError::Engine(other),
            })?;
            Arc::new(OfflineDestination {
                engine,
                precision: options.precision,
            })
        }
        _ => {
            return Err(DumpError::Usage(
                "import needs exactly one destination: --host URL (a running tallyd) or --data-dir DIR (a stopped one)".into(),
            ));
        }
    };
    let offline = options.data_dir.is_some();
    let inputs: Vec<PathBuf> = if options.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        options.inputs.clone()
    };
    let results = Arc::new(Mutex::new(Results::default()));
    let workers = options.concurrency.max(1);
    let (sender, receiver) = sync_channel::<(usize, Batch)>(workers * 2);
    let receiver = Arc::new(Mutex::new(receiver));
    let mut handles = Vec::new();
    for _ in 0..workers {
        let receiver: Arc<Mutex<Receiver<(usize, Batch)>>> = receiver.clone();
        let destination = destination.clone();
        let results = results.clone();
        handles.push(std::thread::spawn(move || {
            loop {
                let next = match receiver.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                let Ok((input_index, batch)) = next else {
                    return;
                };
                let outcome = destination.store(&batch);
                let Ok(mut results) = results.lock() else {
                    return;
                };
                match outcome {
                    Ok((points, rejected)) => {
                        results.summary.points_written += points;
                        results.summary.batches += 1;
                        results.summary.lines += batch.n_lines;
                        for (line, column, reason) in rejected {
                            let input_line = if line == 0 {
                                0
                            } else {
                                batch.lines.input_line(line)
                            };
                            results.summary.rejected += 1;
                            results.rejected.insert(
                                (input_index, input_line, column),
                                RejectedLine {
                                    input: batch.input.to_string(),
                                    line: input_line,
                                    column,
                                    reason,
                                },
                            );
                        }
                    }
                    Err(e) => {
                        if results.failure.is_none() {
                            results.failure = Some(e);
                        }
                    }
                }
            }
        }));
    }
    let produce = (|| -> Result<(), DumpError> {
        for (index, path) in inputs.iter().enumerate() {
            let (mut reader, size) = open_input(path)?;
            let format = match options.format {
                InputFormat::Auto => detect_format(path, &mut *reader)?,
                other => other,
            };
            let shown: Arc<str> = Arc::from(if path.as_os_str() == "-" {
                "<stdin>".to_string()
            } else {
                path.display().to_string()
            });
            let bar = match size {
                Some(size) => progress.bytes("import", size),
                None => progress.counter("import"),
            };
            let send = |batch: Batch| -> Result<(), DumpError> {
                if let Ok(results) = results.lock()
                    && let Some(e) = &results.failure
                {
                    return Err(DumpError::Failed(format!("stopping: {e}")));
                }
                sender
                    .send((index, batch))
                    .map_err(|_| DumpError::Failed("the import workers stopped".into()))
            };
            let mut skipped = 0u64;
            match format {
                InputFormat::LineProtocol | InputFormat::Auto => {
                    read_line_protocol(&mut *reader, &shown, options, &bar, &send)?
                }
                InputFormat::Csv => {
                    skipped += super::import_text::read_csv(
                        &mut *reader,
                        &shown,
                        options,
                        offline,
                        &bar,
                        &send,
                        &results_sink(&results, index, &shown),
                    )?
                }
                InputFormat::JsonLines => {
                    skipped += super::import_text::read_json_lines(
                        &mut *reader,
                        &shown,
                        options,
                        offline,
                        &bar,
                        &send,
                        &results_sink(&results, index, &shown),
                    )?
                }
            }
            if let Ok(mut results) = results.lock() {
                results.summary.non_finite_skipped += skipped;
            }
            bar.finish_and_clear();
        }
        Ok(())
    })();
    drop(sender);
    for handle in handles {
        let _ = handle.join();
    }
    let mut results = match Arc::try_unwrap(results) {
        Ok(mutex) => mutex.into_inner().unwrap_or_default(),
        Err(shared) => std::mem::take(
            &mut *shared
                .lock()
                .map_err(|_| DumpError::Failed("an import worker panicked".into()))?,
        ),
    };
    let finished = destination.finish();
    produce?;
    finished?;
    if let Some(failure) = results.failure.take() {
        return Err(failure);
    }
    let mut summary = results.summary;
    summary.listed = results
        .rejected
        .into_values()
        .take(options.max_listed_errors)
        .collect();
    Ok(summary)
}

/// Reports rejections found while converting input (before anything is sent).
pub(crate) type RejectSink<'a> = dyn Fn(u64, u32, String) + 'a;

fn results_sink<'a>(
    results: &'a Arc<Mutex<Results>>,
    index: usize,
    shown: &'a Arc<str>,
) -> impl Fn(u64, u32, String) + 'a {
    move |line, column, reason| {
        if let Ok(mut results) = results.lock() {
            results.summary.rejected += 1;
            results.summary.lines += 1;
            results.rejected.insert(
                (index, line, column),
                RejectedLine {
                    input: shown.to_string(),
                    line,
                    column,
                    reason,
                },
            );
        }
    }
}

/// Cuts line protocol into batches of whole lines and sends them.
fn read_line_protocol(
    reader: &mut dyn BufRead,
    shown: &Arc<str>,
    options: &ImportOptions,
    bar: &indicatif::ProgressBar,
    send: &dyn Fn(Batch) -> Result<(), DumpError>,
) -> Result<(), DumpError> {
    const CONTEXT: &[u8] = b"# CONTEXT-DATABASE:";
    let mut database = options.database.clone();
    // `pending[head..]` is read but not yet sent. Consumed bytes are dropped only when the
    // buffer is refilled, and refills go from below half the batch limit to above it, so each
    // input byte is moved at most about once (dropping them batch by batch moved the whole
    // buffer for every batch).
    let mut pending: Vec<u8> = Vec::with_capacity(20 << 20);
    let mut head = 0usize;
    let mut filling = false;
    let mut next_line: u64 = 1;
    let mut eof = false;
    let mut chunk = vec![0u8; 4 << 20];
    let max_batch_bytes: usize = 16 << 20;
    while !eof || head < pending.len() {
        if !eof && (filling || pending.len() - head < max_batch_bytes / 2) {
            if !filling {
                pending.drain(..head);
                head = 0;
            }
            let n = reader
                .read(&mut chunk)
                .map_err(|e| DumpError::io(&**shown, e))?;
            if n == 0 {
                eof = true;
                filling = false;
            } else {
                pending.extend_from_slice(&chunk[..n]);
                bar.inc(n as u64);
                filling = pending.len() - head < max_batch_bytes;
            }
            continue;
        }
        // Cut a batch of whole lines from `pending`.
        let mut at = head;
        let mut lines = 0usize;
        let mut physical = 0u64;
        let mut switch_to: Option<(usize, String)> = None;
        while at < pending.len() && lines < options.batch_lines {
            let end = line_end(&pending, at);
            if end == pending.len() && !eof && pending.last() != Some(&b'\n') {
                break;
            }
            let line = &pending[at..end];
            if line.starts_with(CONTEXT) {
                let name = String::from_utf8_lossy(&line[CONTEXT.len()..])
                    .trim()
                    .to_string();
                switch_to = Some((end, name));
                break;
            }
            physical += memchr::memchr_iter(b'\n', line).count() as u64;
            lines += 1;
            at = end;
        }
        let cut_nothing = at == head;
        if at > head {
            let body = pending[head..at].to_vec();
            let Some(db) = database.clone() else {
                return Err(DumpError::Usage(format!(
                    "{shown}: no database: pass --db NAME (the input names none before its first line)"
                )));
            };
            send(Batch {
                database: db,
                input: shown.clone(),
                body,
                points: None,
                lines: LineMap::Offset(next_line),
                n_lines: lines as u64,
            })?;
            next_line += physical;
            head = at;
        }
        if let Some((end, name)) = switch_to {
            head = end;
            next_line += 1;
            if options.database.is_none() {
                database = Some(name);
            }
            continue;
        }
        if cut_nothing && !eof && head < pending.len() {
            // An unfinished line longer than what is buffered: read more.
            pending.drain(..head);
            head = 0;
            if pending.len() >= max_batch_bytes * 4 {
                return Err(DumpError::Failed(format!(
                    "{shown}: line {next_line} is longer than {} MiB",
                    (max_batch_bytes * 4) >> 20
                )));
            }
            let n = reader
                .read(&mut chunk)
                .map_err(|e| DumpError::io(&**shown, e))?;
            if n == 0 {
                eof = true;
            } else {
                pending.extend_from_slice(&chunk[..n]);
                bar.inc(n as u64);
            }
        }
    }
    Ok(())
}

/// Points converted from CSV or JSON lines, collected into a batch: line protocol for a server
/// (NaN and infinities cannot travel and are counted), engine points for a data directory.
pub(crate) struct Converted {
    offline: bool,
    body: String,
    points: PointBatch<'static>,
    lines: Vec<u64>,
    pub(crate) database: Option<String>,
}

impl Converted {
    pub(crate) fn new(offline: bool) -> Converted {
        Converted {
            offline,
            body: String::new(),
            points: PointBatch::new(),
            lines: Vec::new(),
            database: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    /// Appends a point; returns the number of non-finite values left out, or why the point
    /// cannot be stored.
    pub(crate) fn push(
        &mut self,
        line: u64,
        measurement: &str,
        tags: &[(&str, &str)],
        fields: &[(&str, FieldValue<'_>)],
        time: i64,
    ) -> Result<u64, String> {
        if self.offline {
            self.points.start_point(measurement.to_string().into());
            for (k, v) in tags {
                self.points
                    .add_tag(k.to_string().into(), v.to_string().into());
            }
            for (k, v) in fields {
                self.points
                    .add_field(k.to_string().into(), v.clone().into_owned());
            }
            self.points.finish_point(time).map_err(|e| e.to_string())?;
            self.lines.push(line);
            return Ok(0);
        }
        let non_finite = fields
            .iter()
            .filter(|(_, v)| matches!(v, FieldValue::Float(f) if !f.is_finite()))
            .count() as u64;
        write_line(&mut self.body, measurement, tags, fields, Some(time))
            .map_err(|e| e.to_string())?;
        self.lines.push(line);
        Ok(non_finite)
    }

    /// The collected points as a batch, if any; `None` as well when no database is known.
    pub(crate) fn take_batch(
        &mut self,
        default_database: Option<&str>,
        shown: &Arc<str>,
    ) -> Result<Option<Batch>, DumpError> {
        if self.lines.is_empty() {
            return Ok(None);
        }
        let Some(database) = self
            .database
            .clone()
            .or(default_database.map(str::to_string))
        else {
            return Err(DumpError::Usage(format!(
                "{shown}: no database: pass --db NAME (the input names none)"
            )));
        };
        let lines = std::mem::take(&mut self.lines);
        Ok(Some(Batch {
            database,
            input: shown.clone(),
            body: std::mem::take(&mut self.body).into_bytes(),
            points: self.offline.then(|| std::mem::take(&mut self.points)),
            n_lines: lines.len() as u64,
            lines: LineMap::Each(lines),
        }))
    }
}

/// The time of a CSV or JSON row: nanoseconds, or an RFC 3339 time.
pub(crate) fn parse_row_time(text: &str) -> Result<i64, String> {
    if text.starts_with("now") {
        return Err(format!("invalid time {text:?}"));
    }
    parse_time(text)
}

pub(crate) fn describe(summary: &ImportSummary, destination: &str) -> String {
    let mut text = format!(
        "imported {} of {} lines ({} points) into {destination} in {} batches",
        summary.lines - summary.rejected.min(summary.lines),
        summary.lines,
        summary.points_written,
        summary.batches
    );
    if summary.non_finite_skipped > 0 {
        text.push_str(&format!(
            "; {} NaN or infinite values left out: line protocol cannot carry them to a server (import into a stopped data directory with --data-dir to keep them)",
            summary.non_finite_skipped
        ));
    }
    if summary.rejected > 0 {
        text.push_str(&format!(
            "; {} lines rejected, the valid ones kept:",
            summary.rejected
        ));
        for line in &summary.listed {
            text.push_str(&format!("\n  {line}"));
        }
        if summary.rejected > summary.listed.len() as u64 {
            text.push_str(&format!(
                "\n  ... and {} more",
                summary.rejected - summary.listed.len() as u64
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &str) -> Vec<&str> {
        let bytes = data.as_bytes();
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let end = line_end(bytes, at);
            out.push(&data[at..end]);
            at = end;
        }
        out
    }

    #[test]
    fn line_boundaries_follow_quoted_strings_across_line_breaks() {
        let data =
            "m,t=a s=\"two\nlines\",v=1 5\nm v=2 6\n# a \"comment\nm\\ x,k=\"q v=\"x\\\"\ny\" 7\n";
        assert_eq!(
            lines(data),
            vec![
                "m,t=a s=\"two\nlines\",v=1 5\n",
                "m v=2 6\n",
                "# a \"comment\n",
                "m\\ x,k=\"q v=\"x\\\"\ny\" 7\n",
            ]
        );
    }

    #[test]
    fn an_unclosed_string_ends_its_line_at_the_first_break() {
        assert_eq!(
            lines("m s=\"open\nm v=1 2\n"),
            vec!["m s=\"open\n", "m v=1 2\n"]
        );
    }

    proptest::proptest! {
        #[test]
        fn the_quick_line_end_agrees_with_the_byte_by_byte_one(
            text in "[m =,\"\\\\\n#x\t]{0,60}"
        ) {
            let data = text.as_bytes();
            for start in 0..=data.len() {
                proptest::prop_assert_eq!(
                    line_end(data, start),
                    line_end_scanning(data, start),
                    "start {} of {:?}", start, text
                );
            }
        }
    }

    /// Counts the bytes read from it.
    struct CountingReader {
        inner: std::io::Cursor<Vec<u8>>,
        read: std::rc::Rc<std::cell::Cell<usize>>,
    }

    impl std::io::Read for CountingReader {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buffer)?;
            self.read.set(self.read.get() + n);
            Ok(n)
        }
    }

    #[test]
    fn a_large_input_is_cut_into_batches_holding_every_line_once_in_bounded_memory() {
        // Large enough for several refills of the reading buffer, with strings that hold line
        // breaks and a database switch in the middle.
        let mut input = String::new();
        let mut first_lines = Vec::new();
        let mut physical_line = 1u64;
        for i in 0..400_000u64 {
            if i == 200_000 {
                input.push_str("# CONTEXT-DATABASE: second\n");
                physical_line += 1;
            }
            first_lines.push(physical_line);
            if i % 7 == 0 {
                input.push_str(&format!(
                    "llm,model=m{} note=\"two\nlines \\\"q\\\"\",v={i}i {i}\n",
                    i % 3
                ));
                physical_line += 2;
            } else {
                input.push_str(&format!(
                    "llm,model=m{},provider=openai latency_ms={}.5,prompt_tokens={i}i {i}\n",
                    i % 3,
                    i % 1000
                ));
                physical_line += 1;
            }
        }
        assert!(input.len() > 20 << 20, "{} bytes", input.len());
        let options = ImportOptions {
            inputs: Vec::new(),
            host: None,
            data_dir: None,
            database: None,
            format: InputFormat::LineProtocol,
            precision: Precision::Nanoseconds,
            batch_lines: 5000,
            concurrency: 1,
            max_listed_errors: 10,
        };
        let batches = std::cell::RefCell::new(Vec::new());
        let shown: Arc<str> = Arc::from("input.lp");
        let read = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let mut reader = std::io::BufReader::new(CountingReader {
            inner: std::io::Cursor::new(format!("# CONTEXT-DATABASE: first\n{input}").into_bytes()),
            read: read.clone(),
        });
        let sent = std::cell::Cell::new(0usize);
        read_line_protocol(
            &mut reader,
            &shown,
            &options,
            &indicatif::ProgressBar::hidden(),
            &|batch| {
                sent.set(sent.get() + batch.body.len());
                // Memory stays bounded: what was read and not yet sent is at most the batch
                // limit, one read and the reader's own buffer (switch lines are not counted).
                let ahead = read.get() - sent.get();
                assert!(
                    ahead <= (16 << 20) + (4 << 20) + 8192 + 64,
                    "{ahead} bytes read ahead"
                );
                batches.borrow_mut().push(batch);
                Ok(())
            },
        )
        .unwrap();
        let batches = batches.into_inner();
        let mut rebuilt = String::new();
        let mut point = 0usize;
        for batch in &batches {
            assert!(batch.n_lines as usize <= options.batch_lines);
            let LineMap::Offset(first) = batch.lines else {
                panic!("line protocol batches are numbered by offset");
            };
            // The input given to the reader starts with one more line (the first switch).
            assert_eq!(first, first_lines[point] + 1, "batch at point {point}");
            let expected_database = if point < 200_000 { "first" } else { "second" };
            assert_eq!(batch.database, expected_database, "batch at point {point}");
            if point == 200_000 {
                rebuilt.push_str("# CONTEXT-DATABASE: second\n");
            }
            rebuilt.push_str(std::str::from_utf8(&batch.body).unwrap());
            point += batch.n_lines as usize;
        }
        assert_eq!(point, 400_000);
        assert!(rebuilt == input, "the batches do not add up to the input");
    }

    #[test]
    fn a_split_point_is_a_line_boundary_near_the_middle() {
        let body = b"m v=1 1\nm v=2 2\nm v=3 3\nm v=4 4\n";
        let cut = split_point(body).unwrap();
        assert_eq!(&body[..cut], b"m v=1 1\nm v=2 2\n");
    }
}
