//! `[alerts]` and `[smtp]` in tallyd's configuration, and their flags. Reference:
//! `docs/configuration.md` and `docs/alerts.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::notify::smtp::SmtpSettings;
use crate::units::HumanDuration;

/// `[alerts]`: rule evaluation and notification defaults.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Evaluate rules; when false the rules API still answers but nothing is evaluated.
    pub enabled: bool,
    /// A TOML file of `[[rule]]` tables (read-only through the API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_file: Option<PathBuf>,
    /// The database a rule queries when it names none.
    pub default_database: String,
    /// The interval of a rule that sets none.
    pub evaluation_interval: HumanDuration,
    /// The longest one evaluation's query may run; a rule past it is unhealthy.
    pub query_timeout: HumanDuration,
    /// Most rules (file and API together).
    pub max_rules: u32,
    /// Alertmanager base URLs (`http://am:9093`); every alert goes to each of them.
    pub alertmanager_urls: Vec<String>,
    /// How often a firing alert is sent to Alertmanager again (it expires there otherwise).
    pub alertmanager_resend: HumanDuration,
    /// The receivers of rules that name none.
    pub default_receivers: Vec<String>,
    /// Labels that group alerts into one notification per receiver.
    pub group_by: Vec<String>,
    /// Least time between two notifications of one group when its alerts change.
    pub group_interval: HumanDuration,
    /// A group that still fires is notified again after this long.
    pub repeat_interval: HumanDuration,
    /// Tell receivers when alerts resolve.
    pub send_resolved: bool,
    /// Tries per notification (the first included).
    pub notify_attempts: u32,
    /// The wait before the first retry; it doubles for each next one.
    pub notify_backoff: HumanDuration,
    /// Longest one delivery attempt may take.
    pub notify_timeout: HumanDuration,
    /// The URL links in notifications point to (`generatorURL`); empty: `http://<listen>`.
    pub external_url: String,
    /// A resolved alert stays listed (and in Alertmanager's view, resolved) this long.
    pub resolved_retention: HumanDuration,
    /// Receivers of notifications.
    #[serde(rename = "receiver", skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<ReceiverConfig>,
}

/// `[[alerts.receiver]]`: where notifications go.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    /// `webhook` (generic JSON), `slack` (incoming webhook), `email` or `alertmanager`.
    pub kind: String,
    /// The URL of `webhook`, `slack` and `alertmanager` receivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Recipients of `email` receivers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Extra HTTP headers (for example `Authorization`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Overrides `alerts.send_resolved` for this receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_resolved: Option<bool>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            rules_file: None,
            default_database: "telemetry".into(),
            evaluation_interval: HumanDuration(Duration::from_secs(60)),
            query_timeout: HumanDuration(Duration::from_secs(30)),
            max_rules: 10_000,
            alertmanager_urls: Vec::new(),
            alertmanager_resend: HumanDuration(Duration::from_secs(60)),
            default_receivers: Vec::new(),
            group_by: vec!["alertname".into()],
            group_interval: HumanDuration(Duration::from_secs(0)),
            repeat_interval: HumanDuration(Duration::from_secs(4 * 3600)),
            send_resolved: true,
            notify_attempts: 5,
            notify_backoff: HumanDuration(Duration::from_secs(1)),
            notify_timeout: HumanDuration(Duration::from_secs(10)),
            external_url: String::new(),
            resolved_retention: HumanDuration(Duration::from_secs(15 * 60)),
            receivers: Vec::new(),
        }
    }
}

impl AlertsConfig {
    /// Checks every option; receivers named by `default_receivers` must exist.
    pub fn validate(&self, smtp: Option<&SmtpSettings>) -> anyhow::Result<()> {
        if self.evaluation_interval.0 < Duration::from_secs(1) {
            anyhow::bail!("alerts.evaluation_interval must be at least 1s");
        }
        if self.query_timeout.0.is_zero() {
            anyhow::bail!("alerts.query_timeout must be positive");
        }
        if self.max_rules == 0 {
            anyhow::bail!("alerts.max_rules must be at least 1");
        }
        if self.notify_attempts == 0 {
            anyhow::bail!("alerts.notify_attempts must be at least 1");
        }
        if self.notify_timeout.0.is_zero() {
            anyhow::bail!("alerts.notify_timeout must be positive");
        }
        for url in &self.alertmanager_urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                anyhow::bail!(
                    "alerts.alertmanager_urls: {url:?} must start with http:// or https://"
                );
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for r in &self.receivers {
            if r.name.trim().is_empty() {
                anyhow::bail!("alerts.receiver: a receiver has an empty name");
            }
            if !names.insert(r.name.as_str()) {
                anyhow::bail!("alerts.receiver {:?} is defined twice", r.name);
            }
            match r.kind.as_str() {
                "webhook" | "slack" | "alertmanager" => {
                    let url = r.url.as_deref().unwrap_or("");
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        anyhow::bail!(
                            "alerts.receiver {:?} ({}): url must be set and start with http:// or https://",
                            r.name,
                            r.kind
                        );
                    }
                }
                "email" => {
                    if r.to.is_empty() {
                        anyhow::bail!(
                            "alerts.receiver {:?} (email): `to` lists no recipient",
                            r.name
                        );
                    }
                    let Some(smtp) = smtp else {
                        anyhow::bail!(
                            "alerts.receiver {:?} (email) needs an [smtp] section (host, port, from, ...)",
                            r.name
                        );
                    };
                    smtp.validate()
                        .map_err(|e| anyhow::anyhow!("[smtp] (for receiver {:?}): {e}", r.name))?;
                }
                other => anyhow::bail!(
                    "alerts.receiver {:?}: kind {other:?} is not one of webhook, slack, email, alertmanager",
                    r.name
                ),
            }
        }
        for name in &self.default_receivers {
            if !names.contains(name.as_str()) {
                anyhow::bail!(
                    "alerts.default_receivers names {name:?}, which no [[alerts.receiver]] defines"
                );
            }
        }
        Ok(())
    }
}

/// The flags of `[alerts]` and `[smtp]`, flattened into tallyd's command line.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct AlertsCli {
    /// Evaluate alert rules: true or false [default: true].
    #[arg(
        long,
        env = "TALLY_ALERTS_ENABLED",
        value_name = "BOOL",
        help_heading = "Alerts"
    )]
    pub alerts_enabled: Option<bool>,
    /// TOML file of [[rule]] tables.
    #[arg(
        long,
        env = "TALLY_ALERTS_RULES_FILE",
        value_name = "FILE",
        help_heading = "Alerts"
    )]
    pub alerts_rules_file: Option<PathBuf>,
    /// Database of rules that name none [default: telemetry].
    #[arg(
        long,
        env = "TALLY_ALERTS_DEFAULT_DATABASE",
        value_name = "DB",
        help_heading = "Alerts"
    )]
    pub alerts_default_database: Option<String>,
    /// Interval of rules that set none [default: 1m].
    #[arg(
        long,
        env = "TALLY_ALERTS_EVALUATION_INTERVAL",
        value_name = "DURATION",
        help_heading = "Alerts"
    )]
    pub alerts_evaluation_interval: Option<String>,
    /// Longest a rule's query may run [default: 30s].
    #[arg(
        long,
        env = "TALLY_ALERTS_QUERY_TIMEOUT",
        value_name = "DURATION",
        help_heading = "Alerts"
    )]
    pub alerts_query_timeout: Option<String>,
    /// Most rules [default: 10000].
    #[arg(
        long,
        env = "TALLY_ALERTS_MAX_RULES",
        value_name = "N",
        help_heading = "Alerts"
    )]
    pub alerts_max_rules: Option<u32>,
    /// An Alertmanager base URL; repeat the flag for several (replaces the file's list).
    #[arg(
        long = "alerts-alertmanager-url",
        env = "TALLY_ALERTS_ALERTMANAGER_URLS",
        value_delimiter = ',',
        value_name = "URL",
        help_heading = "Alerts"
    )]
    pub alerts_alertmanager_urls: Vec<String>,
    /// A default receiver; repeat the flag for several (replaces the file's list).
    #[arg(
        long = "alerts-default-receiver",
        env = "TALLY_ALERTS_DEFAULT_RECEIVERS",
        value_delimiter = ',',
        value_name = "NAME",
        help_heading = "Alerts"
    )]
    pub alerts_default_receivers: Vec<String>,
    /// Least time between notifications of a changing group [default: 0s].
    #[arg(
        long,
        env = "TALLY_ALERTS_GROUP_INTERVAL",
        value_name = "DURATION",
        help_heading = "Alerts"
    )]
    pub alerts_group_interval: Option<String>,
    /// Notify a still-firing group again after this long [default: 4h].
    #[arg(
        long,
        env = "TALLY_ALERTS_REPEAT_INTERVAL",
        value_name = "DURATION",
        help_heading = "Alerts"
    )]
    pub alerts_repeat_interval: Option<String>,
    /// Resend firing alerts to Alertmanager this often [default: 1m].
    #[arg(
        long,
        env = "TALLY_ALERTS_ALERTMANAGER_RESEND",
        value_name = "DURATION",
        help_heading = "Alerts"
    )]
    pub alerts_alertmanager_resend: Option<String>,
    /// Wait before the first notification retry; doubles after [default: 1s].
    #[arg(
        long,
        env = "TALLY_ALERTS_NOTIFY_BACKOFF",
        value_name = "DURATION",
        help_heading = "Alerts"
    )]
    pub alerts_notify_backoff: Option<String>,
    /// URL of this tallyd in notification links [default: http://<listen>].
    #[arg(
        long,
        env = "TALLY_ALERTS_EXTERNAL_URL",
        value_name = "URL",
        help_heading = "Alerts"
    )]
    pub alerts_external_url: Option<String>,

    /// SMTP server host (creates the [smtp] section).
    #[arg(
        long,
        env = "TALLY_SMTP_HOST",
        value_name = "HOST",
        help_heading = "SMTP"
    )]
    pub smtp_host: Option<String>,
    /// SMTP port [default: 587].
    #[arg(
        long,
        env = "TALLY_SMTP_PORT",
        value_name = "PORT",
        help_heading = "SMTP"
    )]
    pub smtp_port: Option<u16>,
    /// Upgrade with STARTTLS: true or false [default: true].
    #[arg(
        long,
        env = "TALLY_SMTP_STARTTLS",
        value_name = "BOOL",
        help_heading = "SMTP"
    )]
    pub smtp_starttls: Option<bool>,
    /// SMTP user name (the password comes from $TALLY_SMTP_PASSWORD or the file).
    #[arg(
        long,
        env = "TALLY_SMTP_USERNAME",
        value_name = "NAME",
        help_heading = "SMTP"
    )]
    pub smtp_username: Option<String>,
    /// Sender address.
    #[arg(
        long,
        env = "TALLY_SMTP_FROM",
        value_name = "ADDRESS",
        help_heading = "SMTP"
    )]
    pub smtp_from: Option<String>,
    /// PEM file of extra trusted CA certificates.
    #[arg(
        long,
        env = "TALLY_SMTP_CA_FILE",
        value_name = "FILE",
        help_heading = "SMTP"
    )]
    pub smtp_ca_file: Option<PathBuf>,
    /// Longest wait for the SMTP server [default: 30s].
    #[arg(
        long,
        env = "TALLY_SMTP_TIMEOUT",
        value_name = "DURATION",
        help_heading = "SMTP"
    )]
    pub smtp_timeout: Option<String>,
}

fn duration_flag(name: &str, text: &str) -> anyhow::Result<HumanDuration> {
    HumanDuration::parse(text).map_err(|e| anyhow::anyhow!("--{name}: {e}"))
}

impl AlertsCli {
    /// Applies the flags (and `TALLY_SMTP_PASSWORD`) to the two sections.
    pub fn apply(
        &self,
        alerts: &mut AlertsConfig,
        smtp: &mut Option<SmtpSettings>,
    ) -> anyhow::Result<()> {
        if let Some(v) = self.alerts_enabled {
            alerts.enabled = v;
        }
        if let Some(v) = &self.alerts_rules_file {
            alerts.rules_file = Some(v.clone());
        }
        if let Some(v) = &self.alerts_default_database {
            alerts.default_database = v.clone();
        }
        if let Some(v) = &self.alerts_evaluation_interval {
            alerts.evaluation_interval = duration_flag("alerts-evaluation-interval", v)?;
        }
        if let Some(v) = &self.alerts_query_timeout {
            alerts.query_timeout = duration_flag("alerts-query-timeout", v)?;
        }
        if let Some(v) = self.alerts_max_rules {
            alerts.max_rules = v;
        }
        if !self.alerts_alertmanager_urls.is_empty() {
            alerts.alertmanager_urls = self.alerts_alertmanager_urls.clone();
        }
        if !self.alerts_default_receivers.is_empty() {
            alerts.default_receivers = self.alerts_default_receivers.clone();
        }
        if let Some(v) = &self.alerts_group_interval {
            alerts.group_interval = duration_flag("alerts-group-interval", v)?;
        }
        if let Some(v) = &self.alerts_repeat_interval {
            alerts.repeat_interval = duration_flag("alerts-repeat-interval", v)?;
        }
        if let Some(v) = &self.alerts_alertmanager_resend {
            alerts.alertmanager_resend = duration_flag("alerts-alertmanager-resend", v)?;
        }
        if let Some(v) = &self.alerts_notify_backoff {
            alerts.notify_backoff = duration_flag("alerts-notify-backoff", v)?;
        }
        if let Some(v) = &self.alerts_external_url {
            alerts.external_url = v.clone();
        }
        let any_smtp_flag = self.smtp_host.is_some()
            || self.smtp_port.is_some()
            || self.smtp_starttls.is_some()
            || self.smtp_username.is_some()
            || self.smtp_from.is_some()
            || self.smtp_ca_file.is_some()
            || self.smtp_timeout.is_some();
        if any_smtp_flag && smtp.is_none() {
            *smtp = Some(SmtpSettings::default());
        }
        if let Some(s) = smtp.as_mut() {
            if let Some(v) = &self.smtp_host {
                s.host = v.clone();
            }
            if let Some(v) = self.smtp_port {
                s.port = v;
            }
            if let Some(v) = self.smtp_starttls {
                s.starttls = v;
            }
            if let Some(v) = &self.smtp_username {
                s.username = Some(v.clone());
            }
            if let Some(v) = &self.smtp_from {
                s.from = v.clone();
            }
            if let Some(v) = &self.smtp_ca_file {
                s.ca_file = Some(v.clone());
            }
            if let Some(v) = &self.smtp_timeout {
                s.timeout = duration_flag("smtp-timeout", v)?.0;
            }
            // The password comes from the environment rather than a flag, which `ps` shows.
            if let Ok(password) = std::env::var("TALLY_SMTP_PASSWORD")
                && !password.is_empty()
            {
                s.password = Some(password);
            }
        }
        Ok(())
    }
}
