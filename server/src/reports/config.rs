//! The `[reports]` section of tallyd's configuration and its command-line flags: where custom
//! reports come from, the prices and targets the built-in templates use, and the schedules.
//! Reference: `docs/configuration.md` and `docs/reports.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::cron::CronSchedule;
use super::format::OutputFormat;
use super::period::{SchedulePeriod, parse_zone};

/// `[reports]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// A TOML file of custom reports (`[[report]]` tables), read at start; none when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reports_file: Option<PathBuf>,
    /// What one GPU-hour costs, in US dollars: idle GPU-hours are priced with it.
    pub gpu_hour_price: f64,
    /// A GPU-minute whose mean utilisation is below this (in percent) counts as idle.
    pub idle_threshold_pct: f64,
    /// How far back the trend and forecast sections look.
    pub history: crate::units::HumanDuration,
    /// The Chromium (or Chrome) program that prints PDFs; found on `PATH` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chromium: Option<PathBuf>,
    /// Most custom reports stored through the API.
    pub max_stored: u32,
    /// Latency and time-to-first-token targets of the latency template.
    pub latency_targets: LatencyTargets,
    /// Reports rendered and delivered on a schedule.
    pub schedules: Vec<ScheduleConfig>,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            reports_file: None,
            gpu_hour_price: 2.0,
            idle_threshold_pct: 5.0,
            history: crate::units::HumanDuration(std::time::Duration::from_secs(28 * 86_400)),
            chromium: None,
            max_stored: 1000,
            latency_targets: LatencyTargets::default(),
            schedules: Vec::new(),
        }
    }
}

/// Targets in milliseconds; a target left out is not checked. Per-model entries replace the
/// defaults for series whose `model` tag has that value.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyTargets {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p95_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_p95_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_p99_ms: Option<f64>,
    /// `[reports.latency_targets.models."gpt-4o"]`: targets for one model.
    pub models: BTreeMap<String, TargetValues>,
}

impl Default for LatencyTargets {
    fn default() -> Self {
        LatencyTargets {
            latency_p50_ms: Some(5_000.0),
            latency_p95_ms: Some(15_000.0),
            latency_p99_ms: Some(30_000.0),
            ttft_p50_ms: Some(500.0),
            ttft_p95_ms: Some(1_000.0),
            ttft_p99_ms: Some(2_000.0),
            models: BTreeMap::new(),
        }
    }
}

impl LatencyTargets {
    /// The targets that apply to every model without its own.
    pub(crate) fn defaults(&self) -> TargetValues {
        TargetValues {
            latency_p50_ms: self.latency_p50_ms,
            latency_p95_ms: self.latency_p95_ms,
            latency_p99_ms: self.latency_p99_ms,
            ttft_p50_ms: self.ttft_p50_ms,
            ttft_p95_ms: self.ttft_p95_ms,
            ttft_p99_ms: self.ttft_p99_ms,
        }
    }
}

/// One set of latency targets, in milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TargetValues {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p95_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_p95_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_p99_ms: Option<f64>,
}

impl TargetValues {
    /// The targets that are set, by parameter name.
    pub(crate) fn entries(&self) -> Vec<(&'static str, f64)> {
        [
            ("latency_p50_ms", self.latency_p50_ms),
            ("latency_p95_ms", self.latency_p95_ms),
            ("latency_p99_ms", self.latency_p99_ms),
            ("ttft_p50_ms", self.ttft_p50_ms),
            ("ttft_p95_ms", self.ttft_p95_ms),
            ("ttft_p99_ms", self.ttft_p99_ms),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
    }
}

/// `[[reports.schedules]]`: render report `name` when `cron` fires in `timezone` and deliver
/// it to every destination given (a directory, a webhook, email addresses).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// The report to render (a built-in template or a custom report).
    pub name: String,
    /// Five fields: minute hour day-of-month month day-of-week, as in crontab(5).
    pub cron: String,
    /// IANA time zone the cron fields are read in, such as `Europe/Paris`.
    #[serde(default = "utc")]
    pub timezone: String,
    /// html, md, csv, json or pdf.
    #[serde(default = "html")]
    pub format: String,
    /// The period covered: a duration ending at the firing time (`7d`), or `previous_day`,
    /// `previous_week` (Monday to Monday) or `previous_month` in `timezone`. Default: the
    /// report's own range ending at the firing time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// The database the report reads; default: the report's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Write the rendered report into this directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// POST the rendered report as JSON to this URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Extra headers of the webhook request, such as `Authorization`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub webhook_headers: BTreeMap<String, String>,
    /// Mail the report to these addresses (over the `[smtp]` settings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email: Vec<String>,
}

fn utc() -> String {
    "UTC".into()
}

fn html() -> String {
    "html".into()
}

impl ReportsConfig {
    /// Checks everything that can be checked without reading the reports file: numbers,
    /// cron expressions, time zones, formats and destinations.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.gpu_hour_price.is_finite() || self.gpu_hour_price < 0.0 {
            anyhow::bail!(
                "reports.gpu_hour_price must be a number of at least 0, not {}",
                self.gpu_hour_price
            );
        }
        if !self.idle_threshold_pct.is_finite() || !(0.0..=100.0).contains(&self.idle_threshold_pct)
        {
            anyhow::bail!(
                "reports.idle_threshold_pct must be 0 to 100, not {}",
                self.idle_threshold_pct
            );
        }
        if self.history.0.as_secs() < 86_400 {
            anyhow::bail!("reports.history must be at least 1d, not {}", self.history);
        }
        if self.max_stored == 0 {
            anyhow::bail!("reports.max_stored must be at least 1");
        }
        let defaults = self.latency_targets.defaults();
        let mut all_targets = vec![("defaults".to_string(), &defaults)];
        for (model, values) in &self.latency_targets.models {
            all_targets.push((format!("models.{model:?}"), values));
        }
        for (place, values) in all_targets {
            for (name, value) in values.entries() {
                if !value.is_finite() || value <= 0.0 {
                    anyhow::bail!(
                        "reports.latency_targets ({place}) {name} must be a positive number of milliseconds, not {value}"
                    );
                }
            }
        }
        for (i, schedule) in self.schedules.iter().enumerate() {
            schedule.validate().map_err(|e| {
                anyhow::anyhow!("reports.schedules[{i}] ({:?}): {e}", schedule.name)
            })?;
        }
        Ok(())
    }
}

impl ScheduleConfig {
    fn validate(&self) -> Result<(), String> {
        CronSchedule::parse(&self.cron).map_err(|e| format!("cron: {e}"))?;
        parse_zone(&self.timezone).map_err(|e| format!("timezone: {e}"))?;
        OutputFormat::parse(&self.format).map_err(|e| format!("format: {e}"))?;
        if let Some(period) = &self.period {
            SchedulePeriod::parse(period).map_err(|e| format!("period: {e}"))?;
        }
        if self.dir.is_none() && self.webhook.is_none() && self.email.is_empty() {
            return Err(
                "no destination: set dir, webhook or email (a list of addresses)".to_string(),
            );
        }
        if let Some(url) = &self.webhook
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "webhook must be an http:// or https:// URL, not {url:?}"
            ));
        }
        for address in &self.email {
            if !address.contains('@') || address.chars().any(char::is_whitespace) {
                return Err(format!("email: {address:?} is not an email address"));
            }
        }
        Ok(())
    }
}

/// The flags of the `[reports]` options that are single values.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ReportsCli {
    /// TOML file of custom reports ([[report]] tables).
    #[arg(
        long,
        env = "TALLY_REPORTS_FILE",
        value_name = "FILE",
        help_heading = "Reports"
    )]
    pub reports_file: Option<PathBuf>,
    /// Price of one GPU-hour in USD, for idle GPU cost [default: 2.0].
    #[arg(
        long,
        env = "TALLY_REPORTS_GPU_HOUR_PRICE",
        value_name = "USD",
        help_heading = "Reports"
    )]
    pub reports_gpu_hour_price: Option<f64>,
    /// GPU utilisation (percent) below which a GPU-minute is idle [default: 5].
    #[arg(
        long,
        env = "TALLY_REPORTS_IDLE_THRESHOLD_PCT",
        value_name = "PERCENT",
        help_heading = "Reports"
    )]
    pub reports_idle_threshold_pct: Option<f64>,
    /// History the trend and forecast sections read [default: 4w].
    #[arg(
        long,
        env = "TALLY_REPORTS_HISTORY",
        value_name = "DURATION",
        help_heading = "Reports"
    )]
    pub reports_history: Option<String>,
    /// Chromium program for PDF output [default: chromium on PATH].
    #[arg(
        long,
        env = "TALLY_REPORTS_CHROMIUM",
        value_name = "FILE",
        help_heading = "Reports"
    )]
    pub reports_chromium: Option<PathBuf>,
    /// Most custom reports stored through the API [default: 1000].
    #[arg(
        long,
        env = "TALLY_REPORTS_MAX_STORED",
        value_name = "N",
        help_heading = "Reports"
    )]
    pub reports_max_stored: Option<u32>,
}

impl ReportsConfig {
    /// Applies the flags over the file's values.
    pub fn apply_flags(&mut self, cli: &ReportsCli) -> anyhow::Result<()> {
        if let Some(v) = &cli.reports_file {
            self.reports_file = Some(v.clone());
        }
        if let Some(v) = cli.reports_gpu_hour_price {
            self.gpu_hour_price = v;
        }
        if let Some(v) = cli.reports_idle_threshold_pct {
            self.idle_threshold_pct = v;
        }
        if let Some(v) = &cli.reports_history {
            self.history = crate::units::HumanDuration::parse(v)
                .map_err(|e| anyhow::anyhow!("--reports-history: {e}"))?;
        }
        if let Some(v) = &cli.reports_chromium {
            self.chromium = Some(v.clone());
        }
        if let Some(v) = cli.reports_max_stored {
            self.max_stored = v;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str) -> ScheduleConfig {
        ScheduleConfig {
            name: "llm-usage".into(),
            cron: cron.into(),
            timezone: "Europe/Paris".into(),
            format: "html".into(),
            period: None,
            database: None,
            dir: Some(PathBuf::from("/tmp/out")),
            webhook: None,
            webhook_headers: BTreeMap::new(),
            email: Vec::new(),
        }
    }

    #[test]
    fn defaults_validate_and_round_trip_through_toml() {
        let mut config = ReportsConfig::default();
        config.schedules.push(schedule("0 8 * * MON"));
        config.latency_targets.models.insert(
            "gpt-4o".into(),
            TargetValues {
                latency_p95_ms: Some(9_000.0),
                ..TargetValues::default()
            },
        );
        config.validate().unwrap();
        let text = toml::to_string(&config).unwrap();
        let back: ReportsConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn bad_schedules_are_refused_with_the_field_named() {
        let mut config = ReportsConfig::default();
        config.schedules.push(schedule("0 25 * * *"));
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("schedules[0]") && error.contains("cron"),
            "{error}"
        );

        let mut config = ReportsConfig::default();
        let mut bad_zone = schedule("0 8 * * *");
        bad_zone.timezone = "Mars/Olympus_Mons".into();
        config.schedules.push(bad_zone);
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("timezone") && error.contains("Mars"),
            "{error}"
        );

        let mut config = ReportsConfig::default();
        let mut nowhere = schedule("0 8 * * *");
        nowhere.dir = None;
        config.schedules.push(nowhere);
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("no destination"), "{error}");
    }

    #[test]
    fn targets_must_be_positive() {
        let mut config = ReportsConfig::default();
        config.latency_targets.ttft_p95_ms = Some(-1.0);
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("ttft_p95_ms"), "{error}");
    }
}
