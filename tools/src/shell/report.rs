//! `tally report NAME --from --to --format --output`: asks tallyd to render a report
//! (`GET /api/v1/reports/{name}`) and writes it to a file or standard output.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::client::Client;

/// Bytes of a rendered report the shell accepts at most.
const MAX_REPORT_BYTES: u64 = 256 * 1024 * 1024;

/// The formats tallyd renders reports to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum ReportFormat {
    Html,
    Md,
    Csv,
    Json,
    Pdf,
}

impl ReportFormat {
    fn name(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Md => "md",
            ReportFormat::Csv => "csv",
            ReportFormat::Json => "json",
            ReportFormat::Pdf => "pdf",
        }
    }
}

/// The subcommands of `tally` (without one, `tally` is the query shell).
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum ShellCommand {
    /// Render a report on tallyd (GET /api/v1/reports/NAME) and print or save it.
    Report(ReportArgs),
}

/// `tally report`: renders a report on the server.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The report: a built-in template (llm-usage, gpu-utilisation, latency, trends) or a
    /// custom report.
    pub name: String,
    /// Start of the period: now-7d, an RFC 3339 time, or a date [default: the report's range
    /// before --to].
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End of the period [default: now].
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// IANA time zone for dates without an offset and for printed times [default: UTC].
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Write the report to this file instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs `tally report`; exit code 0 on success, 1 when the server refused, 2 when it could
/// not be reached or the output could not be written.
pub(crate) fn run_report(
    host: &str,
    database: Option<&str>,
    timeout: Option<std::time::Duration>,
    args: &ReportArgs,
) -> ExitCode {
    let client = match Client::new(host, timeout) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("tally: {error}");
            return ExitCode::from(2);
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(timeout)
        .user_agent(concat!("tally/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let url = format!("{}/api/v1/reports/{}", client.base_url(), args.name);
    let mut request = agent.get(&url).query("format", args.format.name());
    for (key, value) in [
        ("from", &args.from),
        ("to", &args.to),
        ("tz", &args.timezone),
    ] {
        if let Some(value) = value {
            request = request.query(key, value);
        }
    }
    if let Some(database) = database {
        request = request.query("db", database);
    }
    let mut response = match request.call() {
        Ok(response) => response,
        Err(error) => {
            eprintln!("tally: cannot reach {}: {error}", client.base_url());
            return ExitCode::from(2);
        }
    };
    let status = response.status().as_u16();
    let body = match response
        .body_mut()
        .with_config()
        .limit(MAX_REPORT_BYTES)
        .read_to_vec()
    {
        Ok(body) => body,
        Err(error) => {
            eprintln!(
                "tally: cannot read the report from {}: {error}",
                client.base_url()
            );
            return ExitCode::from(2);
        }
    };
    if !(200..300).contains(&status) {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        eprintln!("tally: report {:?}: {message} (HTTP {status})", args.name);
        return ExitCode::from(1);
    }
    let written = match &args.output {
        Some(path) => {
            std::fs::write(path, &body).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => std::io::stdout()
            .write_all(&body)
            .and_then(|()| std::io::stdout().flush())
            .map_err(|e| format!("cannot write to standard output: {e}")),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tally: {message}");
            ExitCode::from(2)
        }
    }
}
