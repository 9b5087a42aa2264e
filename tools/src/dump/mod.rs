//! `tally-dump`: backup, restore, verify, inspect, export and import of Tally data.
//!
//! Each subcommand lives in its own module; this one parses the command line and maps
//! outcomes to exit codes (0 ok, 1 problems found or failure, 2 usage). The operator's guide
//! and the backup format are in `docs/backup.md`.
//!
//! Invariants: nothing this tool writes looks complete before it is (backups, restores and
//! exports are built under a hidden temporary name and renamed at the end); a backup is never
//! overwritten; restore checks everything before it touches its target; progress goes to
//! stderr and only on a terminal.

mod backup;
mod error;
mod export;
mod http;
mod import;
mod import_text;
mod inspect;
mod manifest;
mod restore;
mod util;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tally_ingest::line_protocol::Precision;

pub use backup::{BackupOptions, BackupSummary, backup};
pub use error::{DumpError, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
pub use export::{Compression, ExportOptions, ExportSummary, Format, export};
pub use import::{ImportOptions, ImportSummary, InputFormat, import};
pub use inspect::inspect;
pub use manifest::{BackupFile, BackupManifest};
pub use restore::{RestoreOptions, RestoreSummary, restore};
pub use verify::{Finding, Report, verify_backup, verify_data_dir};

pub use util::Progress;
use util::{parse_rate, parse_time};

const AFTER_HELP: &str = "\
Examples:
  # Online backup of a running server into one archive, then an incremental one
  tally-dump backup --host http://127.0.0.1:8086 --output /backups/full-2026-11-30.tar.zst
  tally-dump backup --host http://127.0.0.1:8086 --incremental-from /backups/full-2026-11-30.tar.zst \\
      --output /backups/incr-2026-12-01.tar.zst
  # Backup of a stopped server's directory, one database, the last 7 days of segments
  tally-dump backup --data-dir /var/lib/tally --db telemetry --start now-7d --output /backups/telemetry-week
  # Check a backup, then restore it (with its chain) onto a new machine
  tally-dump verify /backups/incr-2026-12-01.tar.zst
  tally-dump restore /backups/incr-2026-12-01.tar.zst --data-dir /var/lib/tally
  # Structure of a data directory
  tally-dump inspect /var/lib/tally
  # Export LLM request metrics of November as compressed line protocol, and load them elsewhere
  tally-dump export --data-dir /var/lib/tally --db telemetry --measurement '^llm$' \\
      --start 2026-11-01 --end 2026-12-01 --output llm.lp.zst
  tally-dump import llm.lp.zst --host http://other:8086 --db telemetry

Exit codes:
  0  success
  1  problems found (verify), a damaged backup refused (restore), lines rejected (import, the
     valid lines are kept), or the operation failed
  2  the command line is wrong

Documentation: docs/backup.md";

/// Command line of `tally-dump`.
#[derive(Parser, Debug)]
#[command(
    name = "tally-dump",
    version,
    about = "Back up, restore, verify, inspect, export and import Tally data.",
    after_help = AFTER_HELP
)]
pub struct DumpArgs {
    /// No progress bars (they are drawn only when stderr is a terminal anyway).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Back up a running server (--host) or a stopped data directory (--data-dir).
    #[command(after_help = "\
Examples:
  tally-dump backup --host http://127.0.0.1:8086 --output /backups/full.tar.zst
  tally-dump backup --host http://127.0.0.1:8086 --incremental-from /backups/full.tar.zst --output /backups/incr-1.tar.zst
  tally-dump backup --data-dir /var/lib/tally --db telemetry --start 2026-11-01 --end 2026-12-01 --output /backups/nov

The output is a directory, or one archive when its name ends in .tar.zst. A time range keeps
whole segments whose time blocks overlap it, plus the whole WAL.")]
    Backup(BackupArgs),
    /// Restore a backup (and its incremental chain) into an empty data directory.
    #[command(after_help = "\
Examples:
  tally-dump restore /backups/incr-2.tar.zst --data-dir /var/lib/tally
  tally-dump restore /backups/full --data-dir /var/lib/tally --force

The backup is verified first (as `verify` does); a damaged one is refused with the report and
the data directory is left untouched.")]
    Restore(RestoreArgs),
    /// Verify a backup or a data directory: every checksum, every chunk, index and manifest.
    #[command(after_help = "\
Examples:
  tally-dump verify /backups/incr-2.tar.zst
  tally-dump verify /var/lib/tally

Exits 1 when any problem is found; each is named by file and byte offset.")]
    Verify(VerifyArgs),
    /// Print the structure of a data directory or a backup.
    #[command(after_help = "\
Examples:
  tally-dump inspect /var/lib/tally
  tally-dump inspect /backups/full.tar.zst --json")]
    Inspect(InspectArgs),
    /// Export points as line protocol, CSV or JSON lines.
    #[command(after_help = "\
Examples:
  tally-dump export --data-dir /var/lib/tally --db telemetry > all.lp
  tally-dump export --data-dir /var/lib/tally --measurement '^(cpu|mem)$' --start now-1d --format csv --output host.csv.gz
  tally-dump export --backup /backups/full.tar.zst --format jsonl --output dump.jsonl.zst

Line protocol cannot carry NaN or infinite floats: they are left out and counted; CSV and JSON
lines keep them. Use --unsigned-as-integer for InfluxDB 1.x, which does not read `u` integers.")]
    Export(ExportArgs),
    /// Import line protocol, CSV or JSON lines into a running server or a stopped data directory.
    #[command(after_help = "\
Examples:
  tally-dump import all.lp --host http://127.0.0.1:8086 --db telemetry
  zcat metrics.lp.gz | tally-dump import --host http://127.0.0.1:8086 --db telemetry --precision s
  tally-dump import dump.csv --data-dir /var/lib/tally

Rejected lines are reported with file, line and column; valid lines are kept (exit code 1
when any line was rejected).")]
    Import(ImportArgs),
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// A running tallyd (http://host:port): the backup reflects one instant.
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    pub host: Option<String>,
    /// A stopped tallyd's data directory (locked while it is read).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where to write the backup: a new directory, or a file ending in .tar.zst.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: PathBuf,
    /// Only this database (repeatable; default: all).
    #[arg(long = "db", value_name = "NAME")]
    pub databases: Vec<String>,
    /// Keep segments whose time blocks end after this time (ns, RFC 3339, date, now-7d).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Keep segments whose time blocks start at or before this time.
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Store only files not already in this backup's chain.
    #[arg(long, value_name = "BACKUP")]
    pub incremental_from: Option<PathBuf>,
    /// Limit reading and writing to this many bytes per second (e.g. 50MiB).
    #[arg(long, value_name = "RATE")]
    pub max_rate: Option<String>,
    /// Leave the server's snapshot in place (it expires after the server's snapshots.ttl).
    #[arg(long)]
    pub keep_snapshot: bool,
    /// zstd level of archives (1 fastest .. 19 smallest).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub compression_level: i32,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup: a directory or a .tar.zst file (the last of its chain).
    pub backup: PathBuf,
    /// The data directory to create (or an empty one).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Restore into a non-empty directory, replacing the databases the backup holds.
    #[arg(long)]
    pub force: bool,
    /// Limit reading and writing to this many bytes per second.
    #[arg(long, value_name = "RATE")]
    pub max_rate: Option<String>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// A backup (directory or .tar.zst) or a data directory.
    pub path: PathBuf,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A data directory or a backup.
    pub path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Lp,
    Csv,
    Jsonl,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum InputFormatArg {
    Auto,
    Lp,
    Csv,
    Jsonl,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CompressArg {
    None,
    Zstd,
    Gzip,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A stopped tallyd's data directory (or a restored backup).
    #[arg(long, value_name = "DIR", conflicts_with = "backup")]
    pub data_dir: Option<PathBuf>,
    /// A backup, restored to a scratch directory beside it first.
    #[arg(long, value_name = "PATH")]
    pub backup: Option<PathBuf>,
    /// Only this database (repeatable; default: all).
    #[arg(long = "db", value_name = "NAME")]
    pub databases: Vec<String>,
    /// Only measurements matching this regular expression (repeatable).
    #[arg(long = "measurement", short = 'm', value_name = "REGEX")]
    pub measurements: Vec<String>,
    /// First time exported (ns, RFC 3339, date, now-7d).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Last time exported.
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "lp")]
    pub format: FormatArg,
    /// Output file (default: standard output).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Compression (default: from the output's name, .zst or .gz; none on stdout).
    #[arg(long, value_enum)]
    pub compress: Option<CompressArg>,
    /// Write unsigned values as integers (InfluxDB 1.x does not read `u`).
    #[arg(long)]
    pub unsigned_as_integer: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Files to import (zstd or gzip compressed is fine); none or `-` reads standard input.
    pub inputs: Vec<PathBuf>,
    /// A running tallyd (http://host:port).
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    pub host: Option<String>,
    /// A stopped tallyd's data directory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database to write into (default: the one the input names).
    #[arg(long = "db", value_name = "NAME")]
    pub database: Option<String>,
    /// Input format (default: from the file name or its first line).
    #[arg(long, short = 'f', value_enum, default_value = "auto")]
    pub format: InputFormatArg,
    /// Unit of line protocol timestamps: ns, us, ms, s, m, h.
    #[arg(long, value_name = "UNIT", default_value = "ns")]
    pub precision: String,
    /// Lines per batch.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub batch_lines: usize,
    /// Batches in flight to a server.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub concurrency: usize,
    /// Rejected lines listed in the report (all are counted).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_errors: usize,
}

fn optional_time(flag: &str, text: &Option<String>) -> Result<Option<i64>, DumpError> {
    text.as_deref()
        .map(|t| parse_time(t).map_err(|e| DumpError::Usage(format!("--{flag}: {e}"))))
        .transpose()
}

fn optional_rate(text: &Option<String>) -> Result<Option<u64>, DumpError> {
    text.as_deref()
        .map(|t| parse_rate(t).map_err(|e| DumpError::Usage(format!("--max-rate: {e}"))))
        .transpose()
}

/// Runs a parsed command line; returns the exit code.
pub fn run(args: DumpArgs) -> ExitCode {
    let progress = Progress::new(args.quiet);
    match run_command(args.command, &progress) {
        Ok(code) => ExitCode::from(code),
        Err(DumpError::Problems(report)) => {
            eprint!("{report}");
            if !report.ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(EXIT_FAILED)
        }
        Err(e) => {
            eprintln!("tally-dump: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run_command(command: Command, progress: &Progress) -> Result<u8, DumpError> {
    match command {
        Command::Backup(a) => {
            let options = BackupOptions {
                host: a.host,
                data_dir: a.data_dir,
                output: a.output.clone(),
                databases: a.databases,
                start_ns: optional_time("start", &a.start)?,
                end_ns: optional_time("end", &a.end)?,
                incremental_from: a.incremental_from,
                max_rate: optional_rate(&a.max_rate)?,
                keep_snapshot: a.keep_snapshot,
                compression_level: a.compression_level,
            };
            let summary = backup(&options, progress)?;
            eprintln!("{}", backup::describe(&summary, &a.output));
            Ok(EXIT_OK)
        }
        Command::Restore(a) => {
            let options = RestoreOptions {
                backup: a.backup,
                data_dir: a.data_dir.clone(),
                force: a.force,
                max_rate: optional_rate(&a.max_rate)?,
            };
            let summary = restore(&options, progress)?;
            eprintln!("{}", restore::describe(&summary, &a.data_dir));
            Ok(EXIT_OK)
        }
        Command::Verify(a) => {
            let report = if verify::is_data_dir(&a.path) {
                verify_data_dir(&a.path, progress)?
            } else {
                verify_backup(&a.path, progress)?
            };
            print!("{}", report.render());
            Ok(if report.is_clean() {
                EXIT_OK
            } else {
                EXIT_FAILED
            })
        }
        Command::Inspect(a) => {
            let text = inspect(&a.path, a.json, progress)?;
            println!("{}", text.trim_end());
            Ok(EXIT_OK)
        }
        Command::Export(a) => {
            let measurements = a
                .measurements
                .iter()
                .map(|m| {
                    regex::Regex::new(m)
                        .map_err(|e| DumpError::Usage(format!("--measurement {m:?}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let compression = match a.compress {
                Some(CompressArg::None) => Compression::None,
                Some(CompressArg::Zstd) => Compression::Zstd,
                Some(CompressArg::Gzip) => Compression::Gzip,
                None => {
                    let name = a
                        .output
                        .as_ref()
                        .map(|p| p.to_string_lossy().to_lowercase())
                        .unwrap_or_default();
                    if name.ends_with(".zst") {
                        Compression::Zstd
                    } else if name.ends_with(".gz") {
                        Compression::Gzip
                    } else {
                        Compression::None
                    }
                }
            };
            let format = match a.format {
                FormatArg::Lp => Format::LineProtocol,
                FormatArg::Csv => Format::Csv,
                FormatArg::Jsonl => Format::JsonLines,
            };
            let options = ExportOptions {
                data_dir: a.data_dir,
                backup: a.backup,
                databases: a.databases,
                measurements,
                start_ns: optional_time("start", &a.start)?,
                end_ns: optional_time("end", &a.end)?,
                format,
                output: a.output,
                compression,
                unsigned_as_integer: a.unsigned_as_integer,
            };
            let summary = export(&options, progress)?;
            eprintln!("{}", export::describe(&summary));
            Ok(EXIT_OK)
        }
        Command::Import(a) => {
            let precision = Precision::from_v1(&a.precision).ok_or_else(|| {
                DumpError::Usage(format!(
                    "--precision {:?}: expected ns, us, ms, s, m or h",
                    a.precision
                ))
            })?;
            if a.batch_lines == 0 {
                return Err(DumpError::Usage("--batch-lines must be at least 1".into()));
            }
            let destination = a
                .host
                .clone()
                .or_else(|| a.data_dir.as_ref().map(|d| d.display().to_string()))
                .unwrap_or_default();
            let options = ImportOptions {
                inputs: a.inputs,
                host: a.host,
                data_dir: a.data_dir,
                database: a.database,
                format: match a.format {
                    InputFormatArg::Auto => InputFormat::Auto,
                    InputFormatArg::Lp => InputFormat::LineProtocol,
                    InputFormatArg::Csv => InputFormat::Csv,
                    InputFormatArg::Jsonl => InputFormat::JsonLines,
                },
                precision,
                batch_lines: a.batch_lines,
                concurrency: a.concurrency,
                max_listed_errors: a.max_errors,
            };
            let summary = import(&options, progress)?;
            eprintln!("{}", import::describe(&summary, &destination));
            Ok(if summary.rejected == 0 {
                EXIT_OK
            } else {
                EXIT_FAILED
            })
        }
    }
}
