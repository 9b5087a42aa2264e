//! Reports: named sequences of sections (titles, text with computed figures, charts, tables,
//! comparisons with the previous period, per-series breakdowns, target checks) run over a
//! period and rendered to HTML, Markdown, CSV, JSON or PDF; on demand through
//! `/api/v1/reports` and `tally report`, or on a cron schedule delivered to a directory, a
//! webhook or email.
//!
//! Start reading at [`Reports`]. Definitions come from three places, in this order of
//! precedence for a name: the built-in templates (`templates.toml`, read-only), the custom
//! report file (`reports.reports_file`, read-only), and reports stored through the API under
//! `<data-dir>/reports/`. Every definition is validated before it is used or stored.

pub mod config;
mod cron;
mod figures;
mod format;
mod model;
mod output;
mod pdf;
mod period;
mod placeholders;
mod render;
mod run;
mod schedule;
mod store;
mod svg;
mod units;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use std::sync::RwLock;
use tally_engine::Engine;

pub(crate) use format::OutputFormat;
pub(crate) use model::ReportDefinition;

use config::{ReportsConfig, ScheduleConfig};
use period::{ReportPeriod, SchedulePeriod, parse_duration_ns, parse_instant, parse_zone};
use placeholders::Placeholders;
use run::{Parameters, RunRequest};

/// The templates every tallyd has.
const TEMPLATES: &str = include_str!("templates.toml");

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportsError {
    #[error("no report named {0:?}; GET /api/v1/reports lists them")]
    NotFound(String),
    #[error("a report named {0:?} already exists; update it with PUT")]
    Conflict(String),
    #[error("report {0:?} is {1} and cannot be changed through the API")]
    ReadOnly(String, &'static str),
    #[error("invalid report: {0}")]
    Invalid(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Pdf(String),
    #[error("delivery failed: {0}")]
    Delivery(String),
}

/// Where a definition comes from.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    Builtin,
    File,
    Api,
}

impl Source {
    fn read_only_reason(self) -> Option<&'static str> {
        match self {
            Source::Builtin => Some("a built-in template"),
            Source::File => Some("defined in the reports file"),
            Source::Api => None,
        }
    }
}

/// One entry of the report list.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ReportSummary {
    pub name: String,
    pub title: String,
    pub description: String,
    pub source: Source,
}

/// A rendered report.
pub(crate) struct Rendered {
    pub format: OutputFormat,
    pub bytes: Vec<u8>,
    /// A file name for it: `<name>-<from>-<to>.<ext>`.
    pub file_name: String,
    pub title: String,
    pub period_label: String,
}

/// What one render asks for.
#[derive(Clone, Debug, Default)]
pub(crate) struct RenderRequest {
    pub from: Option<String>,
    pub to: Option<String>,
    pub timezone: Option<String>,
    pub database: Option<String>,
    pub raw_only: bool,
}

/// The reports of one tallyd.
pub struct Reports {
    engine: Arc<Engine>,
    config: ReportsConfig,
    smtp: Option<crate::notify::smtp::SmtpSettings>,
    parameters: Parameters,
    definitions: RwLock<BTreeMap<String, (ReportDefinition, Source)>>,
    store: store::Store,
    scheduler: std::sync::Mutex<Option<schedule::Scheduler>>,
}

fn parameters_of(config: &ReportsConfig) -> Parameters {
    let mut values = BTreeMap::new();
    values.insert("gpu_hour_price".to_string(), config.gpu_hour_price);
    values.insert("idle_threshold_pct".to_string(), config.idle_threshold_pct);
    let defaults = config.latency_targets.defaults();
    let all_targets = [
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "ttft_p50_ms",
        "ttft_p95_ms",
        "ttft_p99_ms",
    ];
    let set: Vec<(&str, f64)> = defaults.entries();
    for (name, value) in &set {
        values.insert((*name).to_string(), *value);
    }
    let unset_targets = all_targets
        .iter()
        .filter(|name| !set.iter().any(|(n, _)| n == *name))
        .map(|n| (*n).to_string())
        .collect();
    let overrides = config
        .latency_targets
        .models
        .iter()
        .map(|(model, targets)| {
            (
                model.clone(),
                targets
                    .entries()
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v))
                    .collect(),
            )
        })
        .collect();
    Parameters {
        values,
        overrides,
        unset_targets,
        history_ns: i64::try_from(config.history.0.as_nanos()).unwrap_or(i64::MAX),
    }
}

/// Placeholders with stand-in values, for validating definitions.
fn validation_placeholders(parameters: &Parameters, definition: &ReportDefinition) -> Placeholders {
    let period = ReportPeriod::new(
        1_796_083_200_000_000_000 - 7 * period::NANOS_PER_DAY,
        1_796_083_200_000_000_000,
        period::Zone::utc(),
        parameters.history_ns,
    );
    match period {
        Ok(period) => run::placeholders_for(&period, false, parameters, definition),
        Err(_) => Placeholders::default(),
    }
}

impl Reports {
    /// Loads the templates, the reports file and the stored reports; validates them all.
    pub fn open(
        engine: Arc<Engine>,
        config: &ReportsConfig,
        smtp: Option<crate::notify::smtp::SmtpSettings>,
        data_dir: &std::path::Path,
    ) -> Result<Reports, ReportsError> {
        let parameters = parameters_of(config);
        let mut definitions = BTreeMap::new();
        let templates = model::parse_report_file(TEMPLATES).map_err(|e| {
            ReportsError::Invalid(format!("BUG: the built-in templates do not parse: {e}"))
        })?;
        for definition in templates {
            definitions.insert(definition.name.clone(), (definition, Source::Builtin));
        }
        if let Some(path) = &config.reports_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ReportsError::Storage(format!(
                    "cannot read reports.reports_file {}: {e}",
                    path.display()
                ))
            })?;
            let file = model::parse_report_file(&text)
                .map_err(|e| ReportsError::Invalid(format!("{}: {e}", path.display())))?;
            for definition in file {
                if definitions.contains_key(&definition.name) {
                    return Err(ReportsError::Invalid(format!(
                        "{}: report {:?} is defined twice or shadows a built-in template",
                        path.display(),
                        definition.name
                    )));
                }
                definitions.insert(definition.name.clone(), (definition, Source::File));
            }
        }
        let (store, stored) =
            store::Store::open(&data_dir.join("reports")).map_err(ReportsError::Storage)?;
        for (name, definition) in stored {
            if definitions.contains_key(&name) {
                tracing::warn!(report = %name, "a stored report has the name of a built-in or file report; the stored one is ignored");
                continue;
            }
            definitions.insert(name, (definition, Source::Api));
        }
        for (name, (definition, source)) in &definitions {
            model::validate(
                definition,
                &validation_placeholders(&parameters, definition),
            )
            .map_err(|e| ReportsError::Invalid(format!("report {name:?} ({source:?}): {e}")))?;
        }
        for (index, schedule) in config.schedules.iter().enumerate() {
            if !definitions.contains_key(&schedule.name) {
                return Err(ReportsError::Invalid(format!(
                    "reports.schedules[{index}] names report {:?}, which does not exist; known: {}",
                    schedule.name,
                    definitions.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            if !schedule.email.is_empty() && smtp.is_none() {
                return Err(ReportsError::Invalid(format!(
                    "reports.schedules[{index}] mails the report, but tallyd has no [smtp] settings"
                )));
            }
        }
        Ok(Reports {
            engine,
            config: config.clone(),
            smtp,
            parameters,
            definitions: RwLock::new(definitions),
            store,
            scheduler: std::sync::Mutex::new(None),
        })
    }

    /// Starts the scheduler thread with `clock` (the system clock in tallyd).
    pub(crate) fn start_schedules(
        self: &Arc<Self>,
        clock: Arc<dyn schedule::Clock>,
    ) -> Result<(), ReportsError> {
        if self.config.schedules.is_empty() {
            return Ok(());
        }
        let plan = schedule::Plan::new(&self.config.schedules, clock.now_ns())
            .map_err(ReportsError::Invalid)?;
        let reports = Arc::downgrade(self);
        let fire = Arc::new(move |planned: &schedule::Planned, fired_at: i64| {
            if let Some(reports) = reports.upgrade() {
                match reports.run_schedule(&planned.config, fired_at) {
                    Ok(delivered) => {
                        tracing::info!(report = %planned.config.name, schedule = planned.index, delivered = delivered.join(", "), "scheduled report delivered")
                    }
                    Err(e) => {
                        tracing::warn!(report = %planned.config.name, schedule = planned.index, error = %e, "scheduled report failed")
                    }
                }
            }
        });
        let scheduler = schedule::Scheduler::start(plan, clock, fire);
        if let Ok(mut slot) = self.scheduler.lock() {
            *slot = Some(scheduler);
        }
        Ok(())
    }

    /// Starts the scheduler on the system clock (for tallyd's start-up).
    pub fn start(self: &Arc<Self>) -> Result<(), ReportsError> {
        self.start_schedules(Arc::new(schedule::SystemClock))
    }

    /// Stops the scheduler, waiting for a delivery in progress.
    pub fn stop(&self) {
        let scheduler = self.scheduler.lock().ok().and_then(|mut s| s.take());
        if let Some(scheduler) = scheduler {
            scheduler.stop();
        }
    }

    pub(crate) fn schedules(&self) -> &[ScheduleConfig] {
        &self.config.schedules
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, (ReportDefinition, Source)>> {
        self.definitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, (ReportDefinition, Source)>> {
        self.definitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn list(&self) -> Vec<ReportSummary> {
        self.read()
            .values()
            .map(|(d, source)| ReportSummary {
                name: d.name.clone(),
                title: d.title.clone(),
                description: d.description.clone(),
                source: *source,
            })
            .collect()
    }

    pub(crate) fn get(&self, name: &str) -> Result<(ReportDefinition, Source), ReportsError> {
        self.read()
            .get(name)
            .cloned()
            .ok_or_else(|| ReportsError::NotFound(name.to_string()))
    }

    fn check(&self, definition: &ReportDefinition) -> Result<(), ReportsError> {
        model::validate(
            definition,
            &validation_placeholders(&self.parameters, definition),
        )
        .map_err(|e| ReportsError::Invalid(e.to_string()))
    }

    pub(crate) fn create(&self, definition: ReportDefinition) -> Result<(), ReportsError> {
        self.check(&definition)?;
        let mut definitions = self.write();
        if definitions.contains_key(&definition.name) {
            return Err(ReportsError::Conflict(definition.name));
        }
        let stored = definitions
            .values()
            .filter(|(_, s)| *s == Source::Api)
            .count();
        if stored >= self.config.max_stored as usize {
            return Err(ReportsError::BadRequest(format!(
                "already {stored} stored reports, the limit (reports.max_stored); delete one first"
            )));
        }
        self.store
            .save(&definition)
            .map_err(ReportsError::Storage)?;
        definitions.insert(definition.name.clone(), (definition, Source::Api));
        Ok(())
    }

    pub(crate) fn update(
        &self,
        name: &str,
        definition: ReportDefinition,
    ) -> Result<(), ReportsError> {
        if definition.name != name {
            return Err(ReportsError::BadRequest(format!(
                "the body names report {:?} but the URL names {name:?}; a report cannot be renamed",
                definition.name
            )));
        }
        self.check(&definition)?;
        let mut definitions = self.write();
        match definitions.get(name) {
            None => return Err(ReportsError::NotFound(name.to_string())),
            Some((_, source)) => {
                if let Some(reason) = source.read_only_reason() {
                    return Err(ReportsError::ReadOnly(name.to_string(), reason));
                }
            }
        }
        self.store
            .save(&definition)
            .map_err(ReportsError::Storage)?;
        definitions.insert(name.to_string(), (definition, Source::Api));
        Ok(())
    }

    pub(crate) fn delete(&self, name: &str) -> Result<(), ReportsError> {
        let mut definitions = self.write();
        match definitions.get(name) {
            None => return Err(ReportsError::NotFound(name.to_string())),
            Some((_, source)) => {
                if let Some(reason) = source.read_only_reason() {
                    return Err(ReportsError::ReadOnly(name.to_string(), reason));
                }
            }
        }
        self.store.remove(name).map_err(ReportsError::Storage)?;
        definitions.remove(name);
        Ok(())
    }

    /// Runs a report over a period given as text (`from`, `to`: `now-7d`, RFC 3339, dates).
    pub(crate) fn run(
        &self,
        name: &str,
        request: &RenderRequest,
        now_ns: i64,
    ) -> Result<output::ReportOutput, ReportsError> {
        let (definition, _) = self.get(name)?;
        let zone = parse_zone(request.timezone.as_deref().unwrap_or("UTC"))
            .map_err(ReportsError::BadRequest)?;
        let to = match &request.to {
            Some(text) if !text.is_empty() => parse_instant(text, now_ns, &zone)
                .map_err(|e| ReportsError::BadRequest(format!("to: {e}")))?,
            _ => now_ns,
        };
        let from = match &request.from {
            Some(text) if !text.is_empty() => parse_instant(text, now_ns, &zone)
                .map_err(|e| ReportsError::BadRequest(format!("from: {e}")))?,
            _ => to.saturating_sub(
                parse_duration_ns(&definition.range).map_err(ReportsError::Invalid)?,
            ),
        };
        self.run_period(
            &definition,
            from,
            to,
            zone,
            request.database.clone(),
            request.raw_only,
            now_ns,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn run_period(
        &self,
        definition: &ReportDefinition,
        from: i64,
        to: i64,
        zone: period::Zone,
        database: Option<String>,
        raw_only: bool,
        now_ns: i64,
    ) -> Result<output::ReportOutput, ReportsError> {
        let period = ReportPeriod::new(from, to, zone, self.parameters.history_ns)
            .map_err(ReportsError::BadRequest)?;
        let request = RunRequest {
            definition,
            period,
            database,
            raw_only,
            generated_at_ns: now_ns,
        };
        Ok(run::run_report(&self.engine, &request, &self.parameters))
    }

    /// Runs report `name` over `[from_ns, to_ns)` (times printed in UTC) and renders it to
    /// `format` (`html`, `md`, `csv`, `json` or `pdf`): for embedding and benchmarks.
    /// `raw_only` reads raw data only, never rollup tiers.
    pub fn render_period(
        &self,
        name: &str,
        from_ns: i64,
        to_ns: i64,
        format: &str,
        raw_only: bool,
    ) -> Result<Vec<u8>, ReportsError> {
        let format = OutputFormat::parse(format).map_err(ReportsError::BadRequest)?;
        let (definition, _) = self.get(name)?;
        let report = self.run_period(
            &definition,
            from_ns,
            to_ns,
            period::Zone::utc(),
            None,
            raw_only,
            to_ns,
        )?;
        Ok(self.render_output(&report, format)?.bytes)
    }

    /// Runs and renders a report.
    pub(crate) fn render(
        &self,
        name: &str,
        request: &RenderRequest,
        format: OutputFormat,
        now_ns: i64,
    ) -> Result<Rendered, ReportsError> {
        let report = self.run(name, request, now_ns)?;
        self.render_output(&report, format)
    }

    fn render_output(
        &self,
        report: &output::ReportOutput,
        format: OutputFormat,
    ) -> Result<Rendered, ReportsError> {
        let bytes = match format {
            OutputFormat::Html => render::to_html(report).into_bytes(),
            OutputFormat::Markdown => render::to_markdown(report).into_bytes(),
            OutputFormat::Csv => render::to_csv(report).into_bytes(),
            OutputFormat::Json => render::to_json(report).into_bytes(),
            OutputFormat::Pdf => {
                pdf::html_to_pdf(&render::to_html(report), self.config.chromium.as_deref())
                    .map_err(|e| ReportsError::Pdf(e.to_string()))?
            }
        };
        Ok(Rendered {
            format,
            bytes,
            file_name: format!(
                "{}-{}-{}.{}",
                report.name,
                period::file_stamp(report.period.from_ns),
                period::file_stamp(report.period.to_ns),
                format.extension()
            ),
            title: report.title.clone(),
            period_label: report.period.label.clone(),
        })
    }

    /// Renders the report of a schedule for a firing at `fired_at` and delivers it to every
    /// destination; returns where it went. Every destination is tried even when one fails.
    pub(crate) fn run_schedule(
        &self,
        schedule: &ScheduleConfig,
        fired_at: i64,
    ) -> Result<Vec<String>, ReportsError> {
        let (definition, _) = self.get(&schedule.name)?;
        let zone = parse_zone(&schedule.timezone).map_err(ReportsError::Invalid)?;
        let (from, to) = match &schedule.period {
            Some(text) => SchedulePeriod::parse(text)
                .and_then(|p| p.resolve(fired_at, &zone))
                .map_err(ReportsError::Invalid)?,
            None => {
                let range = parse_duration_ns(&definition.range).map_err(ReportsError::Invalid)?;
                (fired_at.saturating_sub(range), fired_at)
            }
        };
        let format = OutputFormat::parse(&schedule.format).map_err(ReportsError::Invalid)?;
        let report = self.run_period(
            &definition,
            from,
            to,
            zone,
            schedule.database.clone(),
            false,
            fired_at,
        )?;
        let rendered = self.render_output(&report, format)?;
        let mut delivered = Vec::new();
        let mut failures = Vec::new();
        if let Some(dir) = &schedule.dir {
            match deliver_to_dir(dir, &rendered) {
                Ok(path) => delivered.push(path.display().to_string()),
                Err(e) => failures.push(e),
            }
        }
        if let Some(url) = &schedule.webhook {
            let body = webhook_body(&report, &rendered);
            let headers: Vec<(String, String)> = schedule
                .webhook_headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let outcome = crate::notify::webhook::with_retries(3, Duration::from_secs(2), || {
                crate::notify::webhook::post_json(url, &body, &headers, Duration::from_secs(30))
            });
            match outcome {
                Ok(()) => delivered.push(url.clone()),
                Err(e) => failures.push(format!("webhook {url}: {e}")),
            }
        }
        if !schedule.email.is_empty() {
            match &self.smtp {
                None => failures.push("email: tallyd has no [smtp] settings".to_string()),
                Some(settings) => {
                    let email = email_of(schedule, &report, &rendered);
                    let outcome =
                        crate::notify::webhook::with_retries(3, Duration::from_secs(5), || {
                            crate::notify::smtp::send_mail(settings, &email)
                        });
                    match outcome {
                        Ok(()) => delivered.push(format!("mailto:{}", schedule.email.join(","))),
                        Err(e) => failures.push(format!("email: {e}")),
                    }
                }
            }
        }
        if failures.is_empty() {
            Ok(delivered)
        } else {
            Err(ReportsError::Delivery(format!(
                "{}{}",
                failures.join("; "),
                if delivered.is_empty() {
                    String::new()
                } else {
                    format!(" (delivered to {})", delivered.join(", "))
                }
            )))
        }
    }
}

fn deliver_to_dir(dir: &std::path::Path, rendered: &Rendered) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(&rendered.file_name);
    store::write_atomically(&path, &rendered.bytes)?;
    Ok(path)
}

/// The webhook payload: what the report is, and its content (text formats as text, PDF in
/// base64), plus the figures as JSON for receivers that only want numbers.
fn webhook_body(report: &output::ReportOutput, rendered: &Rendered) -> serde_json::Value {
    let mut body = serde_json::json!({
        "report": report.name,
        "title": report.title,
        "from": report.period.from,
        "to": report.period.to,
        "format": rendered.format.extension(),
        "file_name": rendered.file_name,
        "content_type": rendered.format.content_type(),
        "figures": report.figures.iter().map(|f| (f.name.clone(), f.value.map_or(serde_json::Value::Null, |v| v.to_json()))).collect::<serde_json::Map<_, _>>(),
        "errors": report.errors,
    });
    if let Some(map) = body.as_object_mut() {
        if rendered.format.is_text() {
            map.insert(
                "content".into(),
                String::from_utf8_lossy(&rendered.bytes).into_owned().into(),
            );
        } else {
            map.insert("content_base64".into(), base64(&rendered.bytes).into());
        }
    }
    body
}

fn email_of(
    schedule: &ScheduleConfig,
    report: &output::ReportOutput,
    rendered: &Rendered,
) -> crate::notify::smtp::Email {
    // ASCII only, so that the subject reads the same in clients that show encoded words raw.
    let subject = format!("{}: {}", rendered.title, rendered.period_label);
    let text = render::to_markdown(report);
    let (html, attachments) = match rendered.format {
        OutputFormat::Html => (
            Some(String::from_utf8_lossy(&rendered.bytes).into_owned()),
            Vec::new(),
        ),
        _ => (
            Some(render::to_html(report)),
            vec![crate::notify::smtp::Attachment {
                filename: rendered.file_name.clone(),
                content_type: rendered.format.content_type().to_string(),
                bytes: rendered.bytes.clone(),
            }],
        ),
    };
    crate::notify::smtp::Email {
        to: schedule.email.clone(),
        subject,
        text,
        html,
        attachments,
    }
}

/// Standard base64 with padding (RFC 4648), for PDF bytes in webhook payloads.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn the_built_in_templates_parse_and_validate_with_the_default_configuration() {
        let parameters = parameters_of(&ReportsConfig::default());
        let templates = model::parse_report_file(TEMPLATES).unwrap();
        let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["llm-usage", "gpu-utilisation", "latency", "trends"]);
        for template in &templates {
            model::validate(template, &validation_placeholders(&parameters, template))
                .unwrap_or_else(|e| panic!("{}: {e}", template.name));
        }
    }
}
