//! Alert rules inside tallyd: rules written in the query language, evaluated on their
//! intervals, with states that survive restarts, transitions recorded in the `_alerts`
//! database, and notifications through Alertmanager, webhooks, Slack and email.
//!
//! Start reading at [`Alerts::start`]. The pieces: `rule.rs` (the rule model, the rules file,
//! validation), `template.rs` (label and annotation templates), `state.rs` (the state
//! machine), `evaluator.rs` (queries, transitions, what to notify), `notifier.rs` (payloads and
//! delivery), `silence.rs`, `store.rs` (files under `<data-dir>/alerts/`). Reference:
//! `docs/alerts.md`.
//!
//! Invariants: one thread evaluates; it never holds the state lock while a query runs, so the
//! API and SHOW ALERTS answer at once; a failing rule never stops the others; every file is
//! replaced atomically; notifications leave through the dispatcher's threads, never the
//! evaluator's.

mod config;
#[cfg(test)]
mod docs_examples;
mod evaluator;
mod metrics;
mod notifier;
mod rule;
mod silence;
mod state;
mod store;
mod template;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use tally_engine::Engine;
use tally_query::{AlertCatalog, CatalogTable, QueryLimits};

pub use config::{AlertsCli, AlertsConfig, ReceiverConfig};
pub use evaluator::ALERTS_DATABASE;
pub use metrics::AlertMetrics;
pub use rule::{RuleSource, RuleSpec};
pub use state::AlertState;

use evaluator::{NotifySettings, QueryRunner, RuleHealth, Stopwatch};
use notifier::{DeliverySettings, Dispatcher, rfc3339};
use rule::{InvalidRule, Rule, RuleDefaults};
use silence::{CompiledSilence, Matcher, Silence, parse_rfc3339};
use state::{Active, RuleState, Transition};
use store::PersistedState;

use crate::notify::smtp::SmtpSettings;

/// Where "now" comes from: the system clock in tallyd, a hand-moved clock in tests.
pub trait Clock: Send + Sync {
    /// Nanoseconds since the Unix epoch.
    fn now_ns(&self) -> i64;
}

/// The system's real-time clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// How to start alerting.
pub struct AlertsOptions {
    pub config: AlertsConfig,
    pub smtp: Option<SmtpSettings>,
    /// tallyd's data directory; alerting keeps its files in `alerts/` below it.
    pub data_dir: PathBuf,
    /// The base of links in notifications (`generatorURL`).
    pub external_url: String,
    /// Query limits besides the time limit (`alerts.query_timeout` sets that one).
    pub limits: QueryLimits,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<AlertMetrics>,
    /// Run the evaluator thread (tests drive [`Alerts::evaluate_due`] themselves).
    pub background: bool,
}

/// Why a rules or silences request failed; the HTTP layer maps each kind to a status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AlertsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    ReadOnly(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Storage(String),
}

enum Entry {
    Valid(Arc<Rule>),
    Invalid(Box<InvalidRule>),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Valid(r) => &r.spec.name,
            Entry::Invalid(r) => &r.spec.name,
        }
    }

    fn source(&self) -> RuleSource {
        match self {
            Entry::Valid(r) => r.source,
            Entry::Invalid(r) => r.source,
        }
    }

    fn spec(&self) -> &RuleSpec {
        match self {
            Entry::Valid(r) => &r.spec,
            Entry::Invalid(r) => &r.spec,
        }
    }
}

/// One rule's evaluation in a round: the rule, its slot, the alerts whose condition holds (or
/// the error) and how long it took.
type Outcome = (Arc<Rule>, i64, Result<Vec<Active>, String>, Duration);

struct Shared {
    engine: Arc<Engine>,
    config: AlertsConfig,
    dir: PathBuf,
    external_url: String,
    clock: Arc<dyn Clock>,
    limits: QueryLimits,
    defaults: RuleDefaults,
    receivers: BTreeMap<String, ReceiverConfig>,
    rules_file: Option<PathBuf>,
    rules: RwLock<Vec<Entry>>,
    state: Mutex<PersistedState>,
    silences: Mutex<Vec<CompiledSilence>>,
    health: Mutex<HashMap<String, RuleHealth>>,
    next_due: Mutex<HashMap<String, i64>>,
    stop: Mutex<bool>,
    wake: Condvar,
    metrics: Arc<AlertMetrics>,
    dispatcher: Dispatcher,
}

/// Alerting: the rules, their state, the evaluator thread.
pub struct Alerts {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Alerts {
    /// Loads the rules file (a file that is not valid TOML is an error; each invalid rule is
    /// reported and skipped), the API's rules, the saved state and the silences, and starts
    /// the evaluator.
    pub fn start(engine: Arc<Engine>, options: AlertsOptions) -> anyhow::Result<Arc<Alerts>> {
        let config = options.config;
        let dir = options.data_dir.join("alerts");
        std::fs::create_dir_all(&dir).map_err(|e| {
            anyhow::anyhow!("cannot create the alerts directory {}: {e}", dir.display())
        })?;
        let receivers: BTreeMap<String, ReceiverConfig> = config
            .receivers
            .iter()
            .map(|r| (r.name.clone(), r.clone()))
            .collect();
        let defaults = RuleDefaults {
            database: config.default_database.clone(),
            interval: config.evaluation_interval.0,
            receivers: config.default_receivers.clone(),
            known_receivers: receivers.keys().cloned().collect(),
        };
        let mut limits = options.limits;
        limits.timeout = config.query_timeout.0;
        let metrics = options.metrics;
        let dispatcher = Dispatcher::new(
            DeliverySettings {
                attempts: config.notify_attempts,
                backoff: config.notify_backoff.0,
                timeout: config.notify_timeout.0,
                smtp: options.smtp,
            },
            metrics.clone(),
        );
        let file_specs = match &config.rules_file {
            Some(path) => rule::load_file(path).map_err(|e| anyhow::anyhow!(e))?,
            None => Vec::new(),
        };
        let api_specs: Vec<RuleSpec> = store::load(&store::rules_path(&dir))
            .map_err(|e| anyhow::anyhow!("{e}; fix or remove the file to start"))?;
        let state: PersistedState = match store::load(&store::state_path(&dir)) {
            Ok(state) => state,
            Err(e) => {
                let aside = store::quarantine(&store::state_path(&dir));
                tracing::error!(error = %e, moved_to = ?aside, "alert state unreadable; starting with every alert inactive");
                PersistedState::default()
            }
        };
        let silences: Vec<Silence> = match store::load(&store::silences_path(&dir)) {
            Ok(s) => s,
            Err(e) => {
                let aside = store::quarantine(&store::silences_path(&dir));
                tracing::error!(error = %e, moved_to = ?aside, "silences unreadable; starting without silences");
                Vec::new()
            }
        };
        let silences = silences
            .into_iter()
            .filter_map(|s| CompiledSilence::new(s).ok())
            .collect();
        let shared = Arc::new(Shared {
            engine,
            rules_file: config.rules_file.clone(),
            external_url: options.external_url.trim_end_matches('/').to_string(),
            clock: options.clock,
            limits,
            defaults,
            receivers,
            rules: RwLock::new(Vec::new()),
            state: Mutex::new(state),
            silences: Mutex::new(silences),
            health: Mutex::new(HashMap::new()),
            next_due: Mutex::new(HashMap::new()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            metrics,
            dispatcher,
            dir,
            config,
        });
        let now = shared.clock.now_ns();
        let mut entries = Vec::new();
        let mut names = BTreeSet::new();
        for (spec, source) in file_specs
            .into_iter()
            .map(|s| (s, RuleSource::File))
            .chain(api_specs.into_iter().map(|s| (s, RuleSource::Api)))
        {
            let entry = if !names.insert(spec.name.clone()) {
                let error = format!(
                    "rule {}: defined twice; the first definition is used",
                    spec.name
                );
                Entry::Invalid(Box::new(InvalidRule {
                    spec,
                    source,
                    error,
                }))
            } else if entries.len() >= shared.config.max_rules as usize {
                let error = format!(
                    "rule {}: more than alerts.max_rules = {} rules",
                    spec.name, shared.config.max_rules
                );
                Entry::Invalid(Box::new(InvalidRule {
                    spec,
                    source,
                    error,
                }))
            } else {
                match Rule::compile(spec.clone(), source, &shared.defaults, now) {
                    Ok(rule) => Entry::Valid(Arc::new(rule)),
                    Err(error) => Entry::Invalid(Box::new(InvalidRule {
                        spec,
                        source,
                        error,
                    })),
                }
            };
            if let Entry::Invalid(invalid) = &entry {
                tracing::error!(rule = %invalid.spec.name, "invalid alert rule, not evaluated: {}", invalid.error);
            }
            entries.push(entry);
        }
        let valid = entries
            .iter()
            .filter(|e| matches!(e, Entry::Valid(_)))
            .count();
        *shared
            .rules
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = entries;
        tracing::info!(
            rules = valid,
            enabled = shared.config.enabled,
            "alert rules loaded"
        );
        let thread = if options.background && shared.config.enabled {
            let worker = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("tally-alerts".into())
                    .spawn(move || worker.run())
                    .map_err(|e| anyhow::anyhow!("cannot start the alert evaluator thread: {e}"))?,
            )
        } else {
            None
        };
        Ok(Arc::new(Alerts {
            shared,
            thread: Mutex::new(thread),
        }))
    }

    /// Runs every rule that is due now (by the clock); returns when the next one is due.
    pub fn evaluate_due(&self) -> i64 {
        self.shared.round(self.shared.clock.now_ns())
    }

    /// Stops the evaluator and saves the state.
    pub fn stop(&self) {
        *lock(&self.shared.stop) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
        self.shared.dispatcher.close();
        let state = lock(&self.shared.state);
        if let Err(e) = store::save(&store::state_path(&self.shared.dir), &*state) {
            tracing::error!(error = %e, "cannot save the alert state at shutdown");
        }
    }

    pub fn metrics(&self) -> &AlertMetrics {
        &self.shared.metrics
    }

    /// SHOW RULES and SHOW ALERTS read this.
    pub fn catalog(self: &Arc<Self>) -> Arc<dyn AlertCatalog> {
        Arc::new(Catalog(self.shared.clone()))
    }

    pub(crate) fn enabled(&self) -> bool {
        self.shared.config.enabled
    }

    // ---- rules API ----

    pub(crate) fn list_rules(&self) -> Vec<Value> {
        let rules = self
            .shared
            .rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rules.iter().map(|e| self.shared.rule_json(e)).collect()
    }

    pub(crate) fn get_rule(&self, name: &str) -> Result<Value, AlertsError> {
        let rules = self
            .shared
            .rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rules
            .iter()
            .find(|e| e.name() == name)
            .map(|e| self.shared.rule_json(e))
            .ok_or_else(|| AlertsError::NotFound(format!("rule {name:?} not found")))
    }

    fn compile(&self, spec: RuleSpec) -> Result<Rule, AlertsError> {
        Rule::compile(
            spec,
            RuleSource::Api,
            &self.shared.defaults,
            self.shared.clock.now_ns(),
        )
        .map_err(AlertsError::Invalid)
    }

    fn read_only(&self, name: &str) -> AlertsError {
        AlertsError::ReadOnly(format!(
            "rule {name:?} is defined in the rules file {}; it is read-only through the API (edit the file instead)",
            self.shared
                .rules_file
                .as_ref()
                .map_or_else(|| "?".to_string(), |p| p.display().to_string())
        ))
    }

    pub(crate) fn create_rule(&self, spec: RuleSpec) -> Result<Value, AlertsError> {
        let rule = self.compile(spec)?;
        let mut rules = self
            .shared
            .rules
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(existing) = rules.iter().find(|e| e.name() == rule.spec.name) {
            return Err(match existing.source() {
                RuleSource::File => self.read_only(&rule.spec.name),
                RuleSource::Api => AlertsError::Conflict(format!(
                    "rule {:?} already exists; update it with PUT /api/v1/rules/{}",
                    rule.spec.name, rule.spec.name
                )),
            });
        }
        if rules.len() >= self.shared.config.max_rules as usize {
            return Err(AlertsError::Conflict(format!(
                "there are already alerts.max_rules = {} rules",
                self.shared.config.max_rules
            )));
        }
        rules.push(Entry::Valid(Arc::new(rule)));
        self.shared.save_api_rules(&rules)?;
        let json = rules
            .last()
            .map(|e| self.shared.rule_json(e))
            .unwrap_or_default();
        drop(rules);
        self.shared.wake.notify_all();
        Ok(json)
    }

    pub(crate) fn update_rule(&self, name: &str, mut spec: RuleSpec) -> Result<Value, AlertsError> {
        if spec.name.is_empty() {
            spec.name = name.to_string();
        }
        if spec.name != name {
            return Err(AlertsError::Invalid(format!(
                "the body names rule {:?} but the URL names {name:?}; rules cannot be renamed (delete and create)",
                spec.name
            )));
        }
        let rule = self.compile(spec)?;
        let mut rules = self
            .shared
            .rules
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(index) = rules.iter().position(|e| e.name() == name) else {
            return Err(AlertsError::NotFound(format!("rule {name:?} not found")));
        };
        if rules[index].source() == RuleSource::File {
            return Err(self.read_only(name));
        }
        rules[index] = Entry::Valid(Arc::new(rule));
        self.shared.save_api_rules(&rules)?;
        let json = self.shared.rule_json(&rules[index]);
        drop(rules);
        // The new definition runs at its next slot; its alerts keep their state.
        lock(&self.shared.next_due).remove(name);
        self.shared.wake.notify_all();
        Ok(json)
    }

    pub(crate) fn delete_rule(&self, name: &str) -> Result<(), AlertsError> {
        let mut rules = self
            .shared
            .rules
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(index) = rules.iter().position(|e| e.name() == name) else {
            return Err(AlertsError::NotFound(format!("rule {name:?} not found")));
        };
        if rules[index].source() == RuleSource::File {
            return Err(self.read_only(name));
        }
        rules.remove(index);
        self.shared.save_api_rules(&rules)?;
        drop(rules);
        lock(&self.shared.state).rules.remove(name);
        lock(&self.shared.health).remove(name);
        self.shared.metrics.forget_rule(name);
        Ok(())
    }

    /// Evaluates `spec` at each of `times` over stored data, from an empty state, without
    /// notifying or writing anything; returns the alerts after each evaluation.
    pub(crate) fn test_rule(
        &self,
        mut spec: RuleSpec,
        times: &[i64],
    ) -> Result<Value, AlertsError> {
        if spec.name.is_empty() {
            spec.name = "test".into();
        }
        if times.is_empty() || times.len() > 1000 {
            return Err(AlertsError::Invalid(
                "give 1 to 1000 evaluation times (`times`, or `start`, `end` and `step`)".into(),
            ));
        }
        let rule = self.compile(spec)?;
        let mut runner = QueryRunner::new(&self.shared.engine, self.shared.limits.clone());
        let mut rule_state = RuleState::default();
        let mut steps = Vec::new();
        for &time in times {
            let outcome = evaluator::evaluate_rule(
                &rule,
                &mut rule_state,
                &mut runner,
                time,
                self.shared.config.resolved_retention.0,
            );
            let mut step = json!({ "time": rfc3339(time) });
            match outcome {
                Ok(transitions) => {
                    step["alerts"] = rule_state
                        .alerts
                        .values()
                        .map(|a| alert_json(&rule.spec.name, a, false))
                        .collect();
                    step["transitions"] = transitions
                        .iter()
                        .map(|t| json!({ "from": t.from.name(), "to": t.to.name(), "labels": t.alert.labels }))
                        .collect();
                }
                Err(e) => step["error"] = e.into(),
            }
            steps.push(step);
        }
        Ok(json!({ "rule": rule.spec.name, "steps": steps }))
    }

    pub(crate) fn alerts_json(&self) -> Vec<Value> {
        let now = self.shared.clock.now_ns();
        let silences = lock(&self.shared.silences);
        let state = lock(&self.shared.state);
        let mut out = Vec::new();
        for (rule, rule_state) in &state.rules {
            for alert in rule_state.alerts.values() {
                let silenced = silences
                    .iter()
                    .any(|s| s.is_active(now) && s.matches(&alert.labels));
                out.push(alert_json(rule, alert, silenced));
            }
        }
        out
    }

    // ---- silences API ----

    pub(crate) fn list_silences(&self) -> Vec<Value> {
        let now = self.shared.clock.now_ns();
        lock(&self.shared.silences)
            .iter()
            .map(|s| silence_json(&s.silence, now))
            .collect()
    }

    /// Creates a silence from Alertmanager-style JSON: `matchers`, `endsAt` (or `duration`),
    /// optional `startsAt`, `createdBy`, `comment`.
    pub(crate) fn create_silence(&self, body: &Value) -> Result<Value, AlertsError> {
        let invalid = |m: String| AlertsError::Invalid(m);
        let now = self.shared.clock.now_ns();
        let matchers: Vec<Matcher> = serde_json::from_value(body.get("matchers").cloned().unwrap_or(Value::Null))
            .map_err(|e| invalid(format!("matchers: {e} (expected a list of {{\"name\", \"value\", \"isRegex\", \"isEqual\"}})")))?;
        let time = |key: &str| -> Result<Option<i64>, AlertsError> {
            match body.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => parse_rfc3339(s).map(Some).ok_or_else(|| {
                    invalid(format!(
                        "{key}: {s:?} is not an RFC 3339 time such as 2026-12-04T18:00:00Z"
                    ))
                }),
                Some(other) => Err(invalid(format!(
                    "{key}: expected an RFC 3339 string, found {other}"
                ))),
            }
        };
        let starts_at = time("startsAt")?.unwrap_or(now);
        let ends_at = match (
            time("endsAt")?,
            body.get("duration").and_then(Value::as_str),
        ) {
            (Some(t), _) => t,
            (None, Some(d)) => {
                let d = crate::units::HumanDuration::parse(d)
                    .map_err(|e| invalid(format!("duration: {e}")))?;
                starts_at.saturating_add(nanos(d.0))
            }
            (None, None) => return Err(invalid("a silence needs `endsAt` or `duration`".into())),
        };
        let text = |key: &str| {
            body.get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let id = format!("{:x}-{:x}", now, lock(&self.shared.silences).len());
        let silence = Silence {
            id,
            matchers,
            starts_at,
            ends_at,
            created_by: text("createdBy"),
            comment: text("comment"),
        };
        let compiled = CompiledSilence::new(silence).map_err(invalid)?;
        let json = silence_json(&compiled.silence, now);
        let mut silences = lock(&self.shared.silences);
        silences.push(compiled);
        self.shared.save_silences(&silences)?;
        Ok(json)
    }

    pub(crate) fn delete_silence(&self, id: &str) -> Result<(), AlertsError> {
        let mut silences = lock(&self.shared.silences);
        let before = silences.len();
        silences.retain(|s| s.silence.id != id);
        if silences.len() == before {
            return Err(AlertsError::NotFound(format!("silence {id:?} not found")));
        }
        self.shared.save_silences(&silences)
    }
}

fn alert_json(rule: &str, alert: &state::Alert, silenced: bool) -> Value {
    json!({
        "rule": rule,
        "state": alert.state.name(),
        "labels": alert.labels,
        "annotations": alert.annotations,
        "value": alert.value,
        "activeAt": rfc3339(alert.active_at),
        "firedAt": alert.fired_at.map(rfc3339),
        "resolvedAt": alert.resolved_at.map(rfc3339),
        "silenced": silenced,
        "flapping": alert.flapping,
    })
}

fn silence_json(s: &Silence, now: i64) -> Value {
    let status = if now < s.starts_at {
        "pending"
    } else if now < s.ends_at {
        "active"
    } else {
        "expired"
    };
    json!({
        "id": s.id,
        "matchers": s.matchers,
        "startsAt": rfc3339(s.starts_at),
        "endsAt": rfc3339(s.ends_at),
        "createdBy": s.created_by,
        "comment": s.comment,
        "status": status,
    })
}

impl Shared {
    fn run(self: Arc<Self>) {
        loop {
            if *lock(&self.stop) {
                return;
            }
            let next = self.round(self.clock.now_ns());
            let wait = next
                .saturating_sub(self.clock.now_ns())
                .clamp(5_000_000, 1_000_000_000);
            let stopped = lock(&self.stop);
            if *stopped {
                return;
            }
            let _ = self
                .wake
                .wait_timeout(stopped, Duration::from_nanos(wait as u64));
        }
    }

    fn valid_rules(&self) -> Vec<Arc<Rule>> {
        self.rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|e| match e {
                Entry::Valid(r) => Some(r.clone()),
                Entry::Invalid(_) => None,
            })
            .collect()
    }

    /// One round at `now`: evaluates the due rules, records and notifies; returns when the
    /// next rule is due.
    fn round(&self, now: i64) -> i64 {
        let rules = self.valid_rules();
        let mut due = Vec::new();
        let next_due = {
            let mut next = lock(&self.next_due);
            for rule in &rules {
                let interval = nanos(rule.interval).max(1);
                let entry = next.entry(rule.spec.name.clone()).or_insert(now);
                if *entry <= now {
                    let slot = now - now.rem_euclid(interval);
                    due.push((rule.clone(), slot));
                    *entry = slot.saturating_add(interval);
                }
            }
            let names: BTreeSet<&str> = rules.iter().map(|r| r.spec.name.as_str()).collect();
            next.retain(|k, _| names.contains(k.as_str()));
            next.values().copied().min().unwrap_or(now + 1_000_000_000)
        };
        if due.is_empty() {
            return next_due;
        }
        // Queries first, without the state lock.
        let mut runner = QueryRunner::new(&self.engine, self.limits.clone());
        let mut outcomes: Vec<Outcome> = Vec::new();
        for (rule, slot) in due {
            let watch = Stopwatch::start();
            let outcome = evaluator::active_series(&rule, &mut runner, slot);
            outcomes.push((rule, slot, outcome, watch.elapsed()));
        }
        self.metrics.round(runner.queries, runner.shared);
        drop(runner);
        let silences = lock(&self.silences);
        let mut state = lock(&self.state);
        let mut records: Vec<(Arc<Rule>, i64, Transition, bool)> = Vec::new();
        {
            let mut health = lock(&self.health);
            for (rule, slot, outcome, elapsed) in outcomes {
                let h = health.entry(rule.spec.name.clone()).or_default();
                h.last_evaluation = Some(slot);
                h.last_duration = elapsed;
                h.evaluations += 1;
                self.metrics
                    .evaluation(&rule.spec.name, outcome.is_err(), elapsed);
                match outcome {
                    Ok(active) => {
                        if h.last_error.take().is_some() {
                            tracing::info!(rule = %rule.spec.name, "alert rule healthy again");
                        }
                        let rule_state = state.rules.entry(rule.spec.name.clone()).or_default();
                        let timing = evaluator::timing(&rule, self.config.resolved_retention.0);
                        for t in rule_state.evaluate(&timing, slot, active) {
                            let silenced = silences
                                .iter()
                                .any(|s| s.is_active(now) && s.matches(&t.alert.labels));
                            records.push((rule.clone(), slot, t, silenced));
                        }
                    }
                    Err(e) => {
                        h.failures += 1;
                        if h.last_error.as_deref() != Some(e.as_str()) {
                            tracing::warn!(rule = %rule.spec.name, error = %e, "alert rule evaluation failed; the rule is unhealthy");
                        }
                        h.last_error = Some(e);
                    }
                }
            }
        }
        let names: BTreeSet<&str> = rules.iter().map(|r| r.spec.name.as_str()).collect();
        state.rules.retain(|k, _| names.contains(k.as_str()));
        if let Err(e) = evaluator::write_transitions(&self.engine, &records) {
            tracing::error!(error = %e, "cannot record alert transitions");
        }
        let settings = NotifySettings {
            alertmanager_urls: &self.config.alertmanager_urls,
            alertmanager_resend: self.config.alertmanager_resend.0,
            group_by: &self.config.group_by,
            group_interval: self.config.group_interval.0,
            repeat_interval: self.config.repeat_interval.0,
            send_resolved: self.config.send_resolved,
            external_url: &self.external_url,
            receivers: &self.receivers,
        };
        let notified = evaluator::notify(
            &rules,
            &mut state,
            &silences,
            &settings,
            now,
            &mut |to, d| {
                self.dispatcher.send(to, d);
            },
        );
        if (notified || !records.is_empty())
            && let Err(e) = store::save(&store::state_path(&self.dir), &*state)
        {
            tracing::error!(error = %e, "cannot save the alert state");
        }
        let mut by_state: BTreeMap<&'static str, u64> = BTreeMap::new();
        for rule_state in state.rules.values() {
            for alert in rule_state.alerts.values() {
                *by_state.entry(alert.state.name()).or_default() += 1;
            }
        }
        drop(state);
        drop(silences);
        let mut by_health: BTreeMap<&'static str, u64> = BTreeMap::new();
        {
            let health = lock(&self.health);
            let entries = self
                .rules
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for e in entries.iter() {
                let h = match e {
                    Entry::Invalid(_) => "invalid",
                    Entry::Valid(r) => health
                        .get(&r.spec.name)
                        .map_or("unknown", RuleHealth::health),
                };
                *by_health.entry(h).or_default() += 1;
            }
        }
        self.metrics.gauges(by_state, by_health);
        next_due
    }

    fn save_api_rules(&self, rules: &[Entry]) -> Result<(), AlertsError> {
        let specs: Vec<&RuleSpec> = rules
            .iter()
            .filter(|e| e.source() == RuleSource::Api)
            .map(Entry::spec)
            .collect();
        store::save(&store::rules_path(&self.dir), &specs).map_err(AlertsError::Storage)
    }

    fn save_silences(&self, silences: &[CompiledSilence]) -> Result<(), AlertsError> {
        let now = self.clock.now_ns();
        // Expired silences are kept a day for the record, then dropped.
        let kept: Vec<&Silence> = silences
            .iter()
            .map(|s| &s.silence)
            .filter(|s| s.ends_at.saturating_add(86_400_000_000_000) > now)
            .collect();
        store::save(&store::silences_path(&self.dir), &kept).map_err(AlertsError::Storage)
    }

    fn rule_json(&self, entry: &Entry) -> Value {
        let mut json = serde_json::to_value(entry.spec()).unwrap_or_else(|_| json!({}));
        let health = lock(&self.health)
            .get(entry.name())
            .cloned()
            .unwrap_or_default();
        let counts = {
            let state = lock(&self.state);
            let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
            if let Some(rs) = state.rules.get(entry.name()) {
                for a in rs.alerts.values() {
                    *counts.entry(a.state.name()).or_default() += 1;
                }
            }
            counts
        };
        if let Some(map) = json.as_object_mut() {
            map.insert("source".into(), json!(entry.source()));
            map.insert("readOnly".into(), json!(entry.source() == RuleSource::File));
            match entry {
                Entry::Valid(rule) => {
                    map.insert("health".into(), health.health().into());
                    map.insert("lastError".into(), json!(health.last_error));
                    map.insert(
                        "lastEvaluation".into(),
                        json!(health.last_evaluation.map(rfc3339)),
                    );
                    map.insert(
                        "evaluationMs".into(),
                        json!(health.last_duration.as_secs_f64() * 1000.0),
                    );
                    map.insert("effectiveDatabase".into(), json!(rule.database));
                    map.insert(
                        "effectiveInterval".into(),
                        json!(crate::units::HumanDuration(rule.interval).to_string()),
                    );
                }
                Entry::Invalid(invalid) => {
                    map.insert("health".into(), "invalid".into());
                    map.insert("lastError".into(), json!(invalid.error));
                }
            }
            map.insert("alerts".into(), json!(counts));
        }
        json
    }
}

/// SHOW RULES and SHOW ALERTS.
struct Catalog(Arc<Shared>);

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlertsCatalog")
    }
}

impl AlertCatalog for Catalog {
    fn rules(&self) -> CatalogTable {
        use tally_query::Value as V;
        let shared = &self.0;
        let entries = shared
            .rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let health = lock(&shared.health);
        let state = lock(&shared.state);
        let text = |s: Option<&str>| s.map_or(V::Null, |s| V::String(s.to_string()));
        let rows = entries
            .iter()
            .map(|e| {
                let spec = e.spec();
                let count = |st: AlertState| {
                    state.rules.get(e.name()).map_or(0, |rs| {
                        rs.alerts.values().filter(|a| a.state == st).count() as i64
                    })
                };
                let (database, interval, for_, keep, severity, health_name, error, last, ms) =
                    match e {
                        Entry::Valid(rule) => {
                            let h = health.get(e.name()).cloned().unwrap_or_default();
                            (
                                rule.database.clone(),
                                crate::units::HumanDuration(rule.interval).to_string(),
                                crate::units::HumanDuration(rule.for_).to_string(),
                                crate::units::HumanDuration(rule.keep_firing_for).to_string(),
                                rule.severity.clone(),
                                h.health(),
                                h.last_error.clone(),
                                h.last_evaluation.map_or(V::Null, V::Time),
                                V::Float(h.last_duration.as_secs_f64() * 1000.0),
                            )
                        }
                        Entry::Invalid(invalid) => (
                            spec.database.clone().unwrap_or_default(),
                            String::new(),
                            String::new(),
                            String::new(),
                            spec.severity.clone().unwrap_or_default(),
                            "invalid",
                            Some(invalid.error.clone()),
                            V::Null,
                            V::Null,
                        ),
                    };
                vec![
                    V::String(e.name().to_string()),
                    V::String(match e.source() {
                        RuleSource::File => "file".into(),
                        RuleSource::Api => "api".into(),
                    }),
                    V::String(database),
                    V::String(spec.query.clone()),
                    text(spec.condition.as_deref()),
                    V::String(interval),
                    V::String(for_),
                    V::String(keep),
                    V::String(severity),
                    V::String(health_name.into()),
                    text(error.as_deref()),
                    last,
                    ms,
                    V::Integer(count(AlertState::Pending)),
                    V::Integer(count(AlertState::Firing)),
                ]
            })
            .collect();
        CatalogTable {
            columns: [
                "name",
                "source",
                "database",
                "query",
                "condition",
                "interval",
                "for",
                "keep_firing_for",
                "severity",
                "health",
                "last_error",
                "last_evaluation",
                "evaluation_ms",
                "pending",
                "firing",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        }
    }

    fn alerts(&self) -> CatalogTable {
        use tally_query::Value as V;
        let shared = &self.0;
        let now = shared.clock.now_ns();
        let silences = lock(&shared.silences);
        let state = lock(&shared.state);
        let mut rows = Vec::new();
        for (rule, rs) in &state.rules {
            for alert in rs.alerts.values() {
                let labels: Vec<String> = alert
                    .labels
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "severity"))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                rows.push(vec![
                    V::Time(alert.active_at),
                    V::String(rule.clone()),
                    V::String(alert.state.name().into()),
                    V::String(alert.labels.get("severity").cloned().unwrap_or_default()),
                    alert.value.map_or(V::Null, V::Float),
                    V::String(labels.join(",")),
                    alert
                        .annotations
                        .get("summary")
                        .map_or(V::Null, |s| V::String(s.clone())),
                    alert.fired_at.map_or(V::Null, V::Time),
                    alert.resolved_at.map_or(V::Null, V::Time),
                    V::Boolean(
                        silences
                            .iter()
                            .any(|s| s.is_active(now) && s.matches(&alert.labels)),
                    ),
                    V::Boolean(alert.flapping),
                ]);
            }
        }
        rows.sort_by_key(|r| match r.first() {
            Some(V::Time(t)) => *t,
            _ => 0,
        });
        CatalogTable {
            columns: [
                "time",
                "rule",
                "state",
                "severity",
                "value",
                "labels",
                "summary",
                "fired_at",
                "resolved_at",
                "silenced",
                "flapping",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        }
    }
}

/// The directory alerting keeps its files in.
pub fn alerts_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("alerts")
}

impl Alerts {
    /// Starts alerting as tallyd configures it: the system clock, the evaluator thread, links
    /// to `alerts.external_url` (or `http://<listen>`), the query limits of `[query]`.
    pub(crate) fn start_for_server(
        config: &crate::config::Config,
        engine: Arc<Engine>,
    ) -> anyhow::Result<Arc<Alerts>> {
        let q = &config.query;
        let external_url = if config.alerts.external_url.is_empty() {
            format!("http://{}", config.listen)
        } else {
            config.alerts.external_url.clone()
        };
        Alerts::start(
            engine,
            AlertsOptions {
                config: config.alerts.clone(),
                smtp: config.smtp.clone(),
                data_dir: config.data_dir.clone(),
                external_url,
                limits: QueryLimits {
                    max_series: q.max_series,
                    max_points_scanned: q.max_points_scanned,
                    max_result_rows: q.max_result_rows,
                    timeout: config.alerts.query_timeout.0,
                },
                clock: Arc::new(SystemClock),
                metrics: Arc::new(AlertMetrics::default()),
                background: true,
            },
        )
    }

    pub(crate) fn metrics_arc(&self) -> Arc<AlertMetrics> {
        self.shared.metrics.clone()
    }
}

/// Parses an RFC 3339 time into nanoseconds since the epoch.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    parse_rfc3339(text)
}
