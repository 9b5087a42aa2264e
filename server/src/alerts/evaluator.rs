//! The evaluator: one thread runs every rule on its interval, shares one query among rules
//! that ask the same thing at the same time, drives the state machine, writes transitions to
//! `_alerts`, and hands notifications to the dispatcher.
//!
//! Rules run at multiples of their interval (a 10 s rule at :00, :10, :20 ...), and a rule's
//! query sees that instant as `now()`. Rules with the same interval therefore evaluate at the
//! same instants, and rules with the same query text, database and instant share one read.
//! A query that fails or runs past `alerts.query_timeout` makes its rule unhealthy, with the
//! error shown in the API, SHOW RULES and `/metrics`; its alerts keep their state, and the
//! other rules run as usual.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tally_engine::{Engine, FieldValue, PointBatch};
use tally_query::{QueryLimits, QueryOptions, StatementResult, Value};

use super::notifier::{Delivery, GroupNotice, Notice, alertmanager_payload};
use super::rule::{Rule, expand_query};
use super::silence::CompiledSilence;
use super::state::{Active, AlertState, RuleState, Timing, Transition, fingerprint};
use super::store::PersistedState;
use super::template::Context;

/// The database transitions are written to.
pub const ALERTS_DATABASE: &str = "_alerts";

/// The outcome of one query: its statements, or the error that made the rule unhealthy.
pub(crate) type QueryOutcome = Result<Arc<Vec<StatementResult>>, String>;

/// Runs rule queries, sharing answers within one round.
pub(crate) struct QueryRunner<'a> {
    pub engine: &'a Engine,
    pub limits: QueryLimits,
    cache: HashMap<(String, String, i64), QueryOutcome>,
    pub queries: u64,
    pub shared: u64,
}

impl<'a> QueryRunner<'a> {
    pub(crate) fn new(engine: &'a Engine, limits: QueryLimits) -> QueryRunner<'a> {
        QueryRunner {
            engine,
            limits,
            cache: HashMap::new(),
            queries: 0,
            shared: 0,
        }
    }

    /// Runs `text` with `now()` at `now`, unless this round already ran it; `timeout`
    /// overrides the runner's time limit (a rule's own `query_timeout`).
    pub(crate) fn run(
        &mut self,
        database: &str,
        text: &str,
        now: i64,
        timeout: Option<Duration>,
    ) -> QueryOutcome {
        let key = (database.to_string(), text.to_string(), now);
        if let Some(outcome) = self.cache.get(&key) {
            self.shared += 1;
            return outcome.clone();
        }
        self.queries += 1;
        let mut limits = self.limits.clone();
        if let Some(timeout) = timeout {
            limits.timeout = timeout;
        }
        let options = QueryOptions {
            database: Some(database.to_string()),
            now_ns: Some(now),
            limits,
            ..QueryOptions::default()
        };
        let outcome = match tally_query::execute(self.engine, text, &options) {
            Err(e) => Err(format!(
                "line {}, column {}: {}",
                e.line, e.column, e.message
            )),
            Ok(results) => match results.iter().find_map(|r| r.error.clone()) {
                Some(error) => Err(error),
                None => Ok(Arc::new(results)),
            },
        };
        self.cache.insert(key, outcome.clone());
        outcome
    }
}

/// Rows `(time, value)` of each series (by tag set) of a query's answer.
type SeriesRows = BTreeMap<Vec<(String, String)>, Vec<(i64, f64)>>;

fn series_rows(results: &[StatementResult], column: Option<&str>) -> Result<SeriesRows, String> {
    let mut out: SeriesRows = BTreeMap::new();
    for result in results {
        for series in &result.series {
            let time_index = series.columns.iter().position(|c| c == "time");
            let value_index = match column {
                Some(name) => match series.columns.iter().position(|c| c == name) {
                    Some(i) => i,
                    None => {
                        return Err(format!(
                            "the query has no column {name:?} (its columns: {:?})",
                            series.columns
                        ));
                    }
                },
                None => match (0..series.columns.len()).find(|i| Some(*i) != time_index) {
                    Some(i) => i,
                    None => continue,
                },
            };
            let rows = out.entry(series.tags.clone()).or_default();
            for row in &series.values {
                let time = match time_index.and_then(|i| row.get(i)) {
                    Some(Value::Time(t) | Value::Integer(t)) => *t,
                    _ => 0,
                };
                let value = match row.get(value_index) {
                    Some(Value::Boolean(b)) => Some(f64::from(u8::from(*b))),
                    Some(v) => v.as_f64(),
                    None => None,
                };
                if let Some(value) = value {
                    rows.push((time, value));
                }
            }
        }
    }
    for rows in out.values_mut() {
        rows.sort_by_key(|r| r.0);
    }
    out.retain(|_, rows| !rows.is_empty());
    Ok(out)
}

/// The series of `rule` whose condition holds at `now`, with their labels, annotations and
/// values.
pub(crate) fn active_series(
    rule: &Rule,
    runner: &mut QueryRunner<'_>,
    now: i64,
) -> Result<Vec<Active>, String> {
    let text = expand_query(&rule.spec.query, now, rule.interval);
    let current = runner.run(&rule.database, &text, now, rule.query_timeout)?;
    let current = series_rows(&current, rule.spec.column.as_deref())?;
    let baseline = match rule.change_over {
        Some(over) => {
            let then = now.saturating_sub(i64::try_from(over.as_nanos()).unwrap_or(i64::MAX));
            let text = expand_query(&rule.spec.query, then, rule.interval);
            let answer = runner.run(&rule.database, &text, then, rule.query_timeout)?;
            Some(series_rows(&answer, rule.spec.column.as_deref())?)
        }
        None => None,
    };
    let mut active = Vec::new();
    for (tags, rows) in &current {
        let Some(mut value) = rule.reduce.apply(rows, now) else {
            continue;
        };
        if let Some(baseline) = &baseline {
            let Some(before) = baseline.get(tags).and_then(|r| rule.reduce.apply(r, now)) else {
                continue;
            };
            value = if before == 0.0 {
                if value > 0.0 { f64::INFINITY } else { f64::NAN }
            } else {
                value / before
            };
        }
        let holds = match &rule.condition {
            Some(c) => c.holds(value),
            None => !value.is_nan(),
        };
        if !holds {
            continue;
        }
        let mut labels: BTreeMap<String, String> = tags
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .cloned()
            .collect();
        labels.insert("alertname".into(), rule.spec.name.clone());
        labels.insert("severity".into(), rule.severity.clone());
        let rendered: Vec<(String, String)> = {
            let context = Context {
                value,
                labels: &labels,
                rule: &rule.spec.name,
                severity: &rule.severity,
            };
            rule.labels
                .iter()
                .map(|(k, t)| (k.clone(), t.render(&context)))
                .collect()
        };
        for (k, v) in rendered {
            if !v.is_empty() {
                labels.insert(k, v);
            }
        }
        let context = Context {
            value,
            labels: &labels,
            rule: &rule.spec.name,
            severity: &rule.severity,
        };
        let annotations = rule
            .annotations
            .iter()
            .map(|(k, t)| (k.clone(), t.render(&context)))
            .collect();
        active.push(Active {
            labels,
            annotations,
            value,
        });
    }
    Ok(active)
}

pub(crate) fn timing(rule: &Rule, resolved_retention: Duration) -> Timing {
    Timing {
        for_: rule.for_,
        keep_firing_for: rule.keep_firing_for,
        resolved_retention,
        flap_threshold: rule.flap_threshold,
        flap_window: rule.flap_window,
    }
}

/// Writes transitions into `_alerts` (measurement `alerts`).
pub(crate) fn write_transitions(
    engine: &Engine,
    transitions: &[(Arc<Rule>, i64, Transition, bool)],
) -> Result<(), String> {
    if transitions.is_empty() {
        return Ok(());
    }
    let database = match engine.database(ALERTS_DATABASE) {
        Some(db) => db,
        None => match engine.create_database(ALERTS_DATABASE) {
            Ok(db) => db,
            Err(_) => engine
                .database(ALERTS_DATABASE)
                .ok_or_else(|| format!("cannot create the database {ALERTS_DATABASE}"))?,
        },
    };
    let mut batch = PointBatch::new();
    for (rule, now, t, silenced) in transitions {
        batch.start_point("alerts".into());
        batch.add_tag("rule".into(), rule.spec.name.as_str().into());
        batch.add_tag("severity".into(), rule.severity.as_str().into());
        for (k, v) in &t.alert.labels {
            if !matches!(k.as_str(), "alertname" | "severity" | "rule") && !v.is_empty() {
                batch.add_tag(k.as_str().into(), v.as_str().into());
            }
        }
        batch.add_field("state".into(), FieldValue::String(t.to.name().into()));
        batch.add_field("previous".into(), FieldValue::String(t.from.name().into()));
        if let Some(v) = t.alert.value {
            batch.add_field("value".into(), FieldValue::Float(v));
        }
        batch.add_field("active_at".into(), FieldValue::Integer(t.alert.active_at));
        batch.add_field("silenced".into(), FieldValue::Boolean(*silenced));
        batch.add_field("flapping".into(), FieldValue::Boolean(t.alert.flapping));
        if let Some(summary) = t.alert.annotations.get("summary") {
            batch.add_field(
                "summary".into(),
                FieldValue::String(summary.as_str().into()),
            );
        }
        if let Err(e) = batch.finish_point(*now) {
            tracing::warn!(rule = %rule.spec.name, error = %e, "cannot record an alert transition");
        }
    }
    database
        .write(&batch)
        .map(|_| ())
        .map_err(|e| format!("cannot write alert transitions to {ALERTS_DATABASE}: {e}"))
}

/// Per-rule health, shown by the API, SHOW RULES and `/metrics`.
#[derive(Clone, Debug, Default)]
pub(crate) struct RuleHealth {
    pub last_evaluation: Option<i64>,
    pub last_duration: Duration,
    pub last_error: Option<String>,
    pub evaluations: u64,
    pub failures: u64,
}

impl RuleHealth {
    pub(crate) fn health(&self) -> &'static str {
        match (&self.last_evaluation, &self.last_error) {
            (None, _) => "unknown",
            (Some(_), Some(_)) => "unhealthy",
            (Some(_), None) => "ok",
        }
    }
}

/// Notification settings the round needs.
pub(crate) struct NotifySettings<'a> {
    pub alertmanager_urls: &'a [String],
    pub alertmanager_resend: Duration,
    pub group_by: &'a [String],
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub send_resolved: bool,
    pub external_url: &'a str,
    /// By receiver name: the receiver's kind, URL, recipients, headers and send_resolved.
    pub receivers: &'a BTreeMap<String, super::config::ReceiverConfig>,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn notice(rule: &Rule, fp: &str, alert: &super::state::Alert, external_url: &str) -> Notice {
    Notice {
        firing: alert.state == AlertState::Firing,
        labels: alert.labels.clone(),
        annotations: alert.annotations.clone(),
        value: alert.value,
        starts_at: alert.fired_at.unwrap_or(alert.active_at),
        ends_at: alert.resolved_at,
        generator_url: format!(
            "{}/api/v1/rules/{}",
            external_url.trim_end_matches('/'),
            rule.spec.name
        ),
        fingerprint: fp.to_string(),
    }
}

/// Decides what to notify after a round and queues it: Alertmanager gets every firing alert
/// (again every `alertmanager_resend`) and every resolution; each receiver gets one
/// notification per group when the group's firing set changed (at most every
/// `group_interval`), when alerts resolved, and every `repeat_interval` while it fires.
/// Silenced and flapping alerts are held back. Returns whether any bookkeeping changed.
pub(crate) fn notify(
    rules: &[Arc<Rule>],
    state: &mut PersistedState,
    silences: &[CompiledSilence],
    settings: &NotifySettings<'_>,
    now: i64,
    send: &mut dyn FnMut(&str, Delivery),
) -> bool {
    let mut changed = false;
    let silenced = |labels: &BTreeMap<String, String>| {
        silences
            .iter()
            .any(|s| s.is_active(now) && s.matches(labels))
    };
    // Alertmanager.
    if !settings.alertmanager_urls.is_empty() {
        let mut batch = Vec::new();
        let resend = nanos(settings.alertmanager_resend);
        for rule in rules {
            let Some(rule_state) = state.rules.get_mut(&rule.spec.name) else {
                continue;
            };
            // Alertmanager resolves an alert by itself at endsAt unless it is sent again.
            let expires = now + nanos(rule.interval * 4).max(resend.saturating_mul(3));
            for (fp, alert) in &mut rule_state.alerts {
                let quiet = silenced(&alert.labels) || alert.flapping;
                match alert.state {
                    AlertState::Firing
                        if !quiet
                            && alert.alertmanager_sent_at.is_none_or(|t| now - t >= resend) =>
                    {
                        let mut n = notice(rule, fp, alert, settings.external_url);
                        n.ends_at = Some(expires);
                        batch.push(n);
                        alert.alertmanager_sent_at = Some(now);
                        changed = true;
                    }
                    AlertState::Resolved
                        if !alert.flapping
                            && alert.alertmanager_sent_at.is_some()
                            && !alert.alertmanager_resolved_sent =>
                    {
                        batch.push(notice(rule, fp, alert, settings.external_url));
                        alert.alertmanager_resolved_sent = true;
                        changed = true;
                    }
                    _ => {}
                }
            }
        }
        if !batch.is_empty() {
            let body = alertmanager_payload(&batch);
            for url in settings.alertmanager_urls {
                send(
                    url,
                    Delivery::Json {
                        url: format!("{}/api/v2/alerts", url.trim_end_matches('/')),
                        headers: Vec::new(),
                        body: body.clone(),
                    },
                );
            }
        }
    }
    // Receivers, by group.
    struct Member<'r> {
        rule: &'r Rule,
        fp: String,
        alert: super::state::Alert,
    }
    /// A group's receiver, its label values and its alerts, by group key.
    type Groups<'r> = BTreeMap<String, (String, BTreeMap<String, String>, Vec<Member<'r>>)>;
    let mut groups: Groups<'_> = BTreeMap::new();
    for rule in rules {
        let Some(rule_state) = state.rules.get(&rule.spec.name) else {
            continue;
        };
        for (fp, alert) in &rule_state.alerts {
            if !matches!(alert.state, AlertState::Firing | AlertState::Resolved) {
                continue;
            }
            let group_labels: BTreeMap<String, String> = settings
                .group_by
                .iter()
                .filter_map(|k| alert.labels.get(k).map(|v| (k.clone(), v.clone())))
                .collect();
            for receiver in &rule.receivers {
                let key = format!(
                    "{receiver}/{}",
                    fingerprint(&group_labels).replace('\u{1f}', ",")
                );
                groups
                    .entry(key)
                    .or_insert_with(|| (receiver.clone(), group_labels.clone(), Vec::new()))
                    .2
                    .push(Member {
                        rule,
                        fp: fp.clone(),
                        alert: alert.clone(),
                    });
            }
        }
    }
    // A group none of whose alerts is firing or resolved any more (forgotten after the
    // resolved retention, or its rule deleted) owes nothing.
    let live: BTreeSet<String> = groups.keys().cloned().collect();
    let before = state.groups.len();
    state.groups.retain(|k, _| live.contains(k));
    changed |= state.groups.len() != before;
    for (key, (receiver_name, group_labels, members)) in groups {
        let Some(receiver) = settings.receivers.get(&receiver_name) else {
            continue;
        };
        let send_resolved = receiver.send_resolved.unwrap_or(settings.send_resolved);
        let group = state.groups.entry(key.clone()).or_default();
        let firing: Vec<&Member<'_>> = members
            .iter()
            .filter(|m| {
                m.alert.state == AlertState::Firing
                    && !m.alert.flapping
                    && !silenced(&m.alert.labels)
            })
            .collect();
        let resolved: Vec<&Member<'_>> = members
            .iter()
            .filter(|m| {
                m.alert.state == AlertState::Resolved
                    && !m.alert.flapping
                    && group.notified.get(&m.fp) == Some(&AlertState::Firing)
            })
            .collect();
        let new_firing = firing.iter().any(|m| !group.notified.contains_key(&m.fp));
        let since_last = group.last_sent.map_or(i64::MAX, |t| now.saturating_sub(t));
        let due = ((new_firing || (!resolved.is_empty() && send_resolved))
            && since_last >= nanos(settings.group_interval))
            || (!firing.is_empty() && since_last >= nanos(settings.repeat_interval));
        if !due {
            // Silenced alerts and resolutions not sent leave the group without a word.
            let keep: BTreeSet<&str> = members
                .iter()
                .filter(|m| {
                    m.alert.flapping
                        || (m.alert.state == AlertState::Firing && !silenced(&m.alert.labels))
                })
                .map(|m| m.fp.as_str())
                .collect();
            let before = group.notified.len();
            if !send_resolved || resolved.is_empty() {
                group.notified.retain(|fp, _| keep.contains(fp.as_str()));
            }
            changed |= group.notified.len() != before;
            continue;
        }
        let mut alerts: Vec<Notice> = firing
            .iter()
            .map(|m| notice(m.rule, &m.fp, &m.alert, settings.external_url))
            .collect();
        if send_resolved {
            alerts.extend(
                resolved
                    .iter()
                    .map(|m| notice(m.rule, &m.fp, &m.alert, settings.external_url)),
            );
        }
        group.notified = firing
            .iter()
            .map(|m| (m.fp.clone(), AlertState::Firing))
            .collect();
        group.last_sent = Some(now);
        changed = true;
        if alerts.is_empty() {
            continue;
        }
        let notice = GroupNotice {
            receiver: receiver_name.clone(),
            group_key: key,
            group_labels,
            alerts,
            external_url: settings.external_url.to_string(),
        };
        let headers: Vec<(String, String)> = receiver
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let url = receiver.url.clone().unwrap_or_default();
        let delivery = match receiver.kind.as_str() {
            "slack" => Delivery::Json {
                url,
                headers,
                body: notice.slack_payload(),
            },
            "email" => Delivery::Mail(notice.email(&receiver.to)),
            "alertmanager" => Delivery::Json {
                url: format!("{}/api/v2/alerts", url.trim_end_matches('/')),
                headers,
                body: alertmanager_payload(&notice.alerts),
            },
            _ => Delivery::Json {
                url,
                headers,
                body: notice.webhook_payload(),
            },
        };
        send(&receiver_name, delivery);
    }
    changed
}

/// Times one rule's evaluation.
pub(crate) struct Stopwatch(Instant);

impl Stopwatch {
    pub(crate) fn start() -> Stopwatch {
        Stopwatch(Instant::now())
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Evaluates one rule at `now` on `rule_state`; returns the transitions, or the error.
pub(crate) fn evaluate_rule(
    rule: &Rule,
    rule_state: &mut RuleState,
    runner: &mut QueryRunner<'_>,
    now: i64,
    resolved_retention: Duration,
) -> Result<Vec<Transition>, String> {
    let active = active_series(rule, runner, now)?;
    Ok(rule_state.evaluate(&timing(rule, resolved_retention), now, active))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::config::ReceiverConfig;
    use crate::alerts::rule::{RuleDefaults, RuleSource, RuleSpec};
    use serde_json::Value;

    const T0: i64 = 1_796_083_200_000_000_000;
    const MINUTE: i64 = 60_000_000_000;

    fn rule() -> Arc<Rule> {
        let spec: RuleSpec = toml::from_str(
            r#"
            name = "gpu_hot"
            query = "SELECT max(temperature_gpu) FROM nvidia_smi GROUP BY host"
            condition = "> 85"
            receivers = ["hook"]
            "#,
        )
        .unwrap();
        let defaults = RuleDefaults {
            database: "telemetry".into(),
            interval: Duration::from_secs(60),
            receivers: Vec::new(),
            known_receivers: ["hook".to_string()].into(),
        };
        Arc::new(Rule::compile(spec, RuleSource::File, &defaults, T0).unwrap())
    }

    fn active(hosts: &[&str]) -> Vec<Active> {
        hosts
            .iter()
            .map(|h| Active {
                labels: [
                    ("alertname".to_string(), "gpu_hot".to_string()),
                    ("host".to_string(), h.to_string()),
                ]
                .into(),
                annotations: BTreeMap::new(),
                value: 90.0,
            })
            .collect()
    }

    struct Harness {
        rule: Arc<Rule>,
        state: PersistedState,
        receivers: BTreeMap<String, ReceiverConfig>,
        group_by: Vec<String>,
        alertmanager_urls: Vec<String>,
    }

    impl Harness {
        fn new(group_by: &[&str]) -> Harness {
            let receiver = ReceiverConfig {
                name: "hook".into(),
                kind: "webhook".into(),
                url: Some("http://127.0.0.1:9/hook".into()),
                to: Vec::new(),
                headers: BTreeMap::new(),
                send_resolved: None,
            };
            Harness {
                rule: rule(),
                state: PersistedState::default(),
                receivers: [("hook".to_string(), receiver)].into(),
                group_by: group_by.iter().map(|s| s.to_string()).collect(),
                alertmanager_urls: Vec::new(),
            }
        }

        /// One round at `now` with `hosts` over the threshold; returns the bodies sent, by
        /// destination.
        fn round(&mut self, now: i64, hosts: &[&str]) -> Vec<(String, Value)> {
            let timing = timing(&self.rule, Duration::from_secs(900));
            self.state
                .rules
                .entry("gpu_hot".into())
                .or_default()
                .evaluate(&timing, now, active(hosts));
            let settings = NotifySettings {
                alertmanager_urls: &self.alertmanager_urls,
                alertmanager_resend: Duration::from_secs(60),
                group_by: &self.group_by,
                group_interval: Duration::ZERO,
                repeat_interval: Duration::from_secs(4 * 3600),
                send_resolved: true,
                external_url: "http://tally:8086",
                receivers: &self.receivers,
            };
            let mut sent = Vec::new();
            notify(
                std::slice::from_ref(&self.rule),
                &mut self.state,
                &[],
                &settings,
                now,
                &mut |to, d| {
                    if let Delivery::Json { body, .. } = d {
                        sent.push((to.to_string(), body));
                    }
                },
            );
            sent
        }
    }

    fn hosts_of(body: &Value) -> Vec<(String, String)> {
        body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["labels"]["host"].as_str().unwrap().to_string(),
                    a["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn alerts_of_one_group_share_a_notification_and_are_repeated_only_after_the_repeat_interval() {
        let mut h = Harness::new(&["alertname"]);
        let sent = h.round(T0, &["a", "b"]);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(
            hosts_of(&sent[0].1),
            vec![("a".into(), "firing".into()), ("b".into(), "firing".into())]
        );
        assert!(h.round(T0 + MINUTE, &["a", "b"]).is_empty());
        assert!(h.round(T0 + 239 * MINUTE, &["a", "b"]).is_empty());
        let repeated = h.round(T0 + 240 * MINUTE, &["a", "b"]);
        assert_eq!(
            repeated.len(),
            1,
            "the repeat interval passed: {repeated:?}"
        );
        assert!(h.round(T0 + 241 * MINUTE, &["a", "b"]).is_empty());
    }

    #[test]
    fn a_new_alert_in_a_group_and_a_resolution_notify_at_once() {
        let mut h = Harness::new(&["alertname"]);
        assert_eq!(h.round(T0, &["a"]).len(), 1);
        let joined = h.round(T0 + MINUTE, &["a", "b"]);
        assert_eq!(joined.len(), 1);
        assert_eq!(hosts_of(&joined[0].1).len(), 2);
        let resolved = h.round(T0 + 2 * MINUTE, &["b"]);
        assert_eq!(resolved.len(), 1, "{resolved:?}");
        assert_eq!(
            hosts_of(&resolved[0].1),
            vec![
                ("b".into(), "firing".into()),
                ("a".into(), "resolved".into())
            ]
        );
        // The resolution is told once.
        assert!(h.round(T0 + 3 * MINUTE, &["b"]).is_empty());
    }

    #[test]
    fn grouping_by_a_label_makes_one_notification_per_value() {
        let mut h = Harness::new(&["alertname", "host"]);
        let sent = h.round(T0, &["a", "b"]);
        assert_eq!(sent.len(), 2, "{sent:?}");
        let groups: BTreeSet<String> = sent
            .iter()
            .map(|(_, b)| b["groupLabels"]["host"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(groups, ["a".to_string(), "b".to_string()].into());
    }

    #[test]
    fn alertmanager_gets_firing_alerts_again_every_resend_and_each_resolution_once() {
        let mut h = Harness::new(&["alertname"]);
        h.receivers.clear();
        h.alertmanager_urls = vec!["http://am:9093".into()];
        let sent = h.round(T0, &["a"]);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, "http://am:9093");
        let first = &sent[0].1[0];
        assert_eq!(first["labels"]["host"], "a");
        assert_eq!(
            first["generatorURL"],
            "http://tally:8086/api/v1/rules/gpu_hot"
        );
        // endsAt lies ahead, so Alertmanager keeps it only while Tally resends.
        assert!(first["endsAt"].as_str().unwrap() > first["startsAt"].as_str().unwrap());
        assert!(h.round(T0 + MINUTE / 2, &["a"]).is_empty());
        assert_eq!(h.round(T0 + MINUTE, &["a"]).len(), 1);
        let resolved = h.round(T0 + 2 * MINUTE, &[]);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].1[0]["endsAt"], rfc3339_of(T0 + 2 * MINUTE));
        assert!(h.round(T0 + 3 * MINUTE, &[]).is_empty());
    }

    #[test]
    fn a_query_past_the_rules_time_limit_fails_the_evaluation_with_the_reason() {
        use tally_engine::EngineOptions;
        use tally_ingest::line_protocol::{self, ParseOptions};
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), EngineOptions::default()).unwrap();
        let db = engine.create_database("telemetry").unwrap();
        let body: Vec<String> = (0..50)
            .map(|i| {
                format!(
                    "nvidia_smi,host=h{} temperature_gpu=90 {}",
                    i % 5,
                    T0 - i * 1_000_000_000
                )
            })
            .collect();
        let text = body.join("\n");
        let mut batch = PointBatch::new();
        let mut lines = Vec::new();
        let report = line_protocol::parse_lines(
            text.as_bytes(),
            &ParseOptions::new(T0),
            &mut batch,
            &mut lines,
        );
        assert!(report.errors.is_empty());
        db.write(&batch).unwrap();

        let mut spec = rule().spec.clone();
        spec.receivers = Some(Vec::new());
        let defaults = RuleDefaults {
            database: "telemetry".into(),
            interval: Duration::from_secs(60),
            receivers: Vec::new(),
            known_receivers: BTreeSet::new(),
        };
        let relaxed = Rule::compile(spec.clone(), RuleSource::Api, &defaults, T0).unwrap();
        let mut runner = QueryRunner::new(&engine, QueryLimits::default());
        assert_eq!(active_series(&relaxed, &mut runner, T0).unwrap().len(), 5);

        spec.query_timeout = Some(crate::units::HumanDuration(Duration::from_nanos(1)));
        let strict = Rule::compile(spec, RuleSource::Api, &defaults, T0).unwrap();
        let mut runner = QueryRunner::new(&engine, QueryLimits::default());
        let error = active_series(&strict, &mut runner, T0).unwrap_err();
        assert!(error.contains("timed out"), "{error}");
        engine.close().unwrap();
    }

    fn rfc3339_of(ns: i64) -> String {
        super::super::notifier::rfc3339(ns)
    }
}
