//! Alerting's families at `/metrics`: rule evaluations, failures and durations, alerts by
//! state, notifications sent and failed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::metrics::escape_label;

const DURATION_BUCKETS: [f64; 10] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 10.0,
];

#[derive(Default)]
struct Counters {
    /// By rule: evaluations and failed evaluations.
    evaluations: BTreeMap<String, (u64, u64)>,
    /// Evaluation duration histogram over all rules.
    buckets: [u64; DURATION_BUCKETS.len()],
    duration_count: u64,
    duration_sum: f64,
    /// Rounds of the evaluator (one per wake-up with due rules).
    rounds: u64,
    /// Distinct queries run, and rule evaluations answered by a query another rule ran.
    queries: u64,
    shared: u64,
    /// By receiver: notifications delivered and failed (after every retry).
    notifications: BTreeMap<String, (u64, u64)>,
    /// Alerts by state, as of the last round.
    alerts: BTreeMap<&'static str, u64>,
    /// Rules by health, as of the last round.
    rules: BTreeMap<&'static str, u64>,
}

/// Shared by the evaluator, the notifiers and `/metrics`.
#[derive(Default)]
pub struct AlertMetrics {
    counters: Mutex<Counters>,
}

impl AlertMetrics {
    pub(crate) fn evaluation(&self, rule: &str, failed: bool, elapsed: Duration) {
        let Ok(mut c) = self.counters.lock() else {
            return;
        };
        let entry = c.evaluations.entry(rule.to_string()).or_default();
        entry.0 += 1;
        if failed {
            entry.1 += 1;
        }
        let secs = elapsed.as_secs_f64();
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                c.buckets[i] += 1;
            }
        }
        c.duration_count += 1;
        c.duration_sum += secs;
    }

    pub(crate) fn round(&self, queries: u64, shared: u64) {
        if let Ok(mut c) = self.counters.lock() {
            c.rounds += 1;
            c.queries += queries;
            c.shared += shared;
        }
    }

    pub(crate) fn forget_rule(&self, rule: &str) {
        if let Ok(mut c) = self.counters.lock() {
            c.evaluations.remove(rule);
        }
    }

    pub(crate) fn notification(&self, receiver: &str, delivered: bool) {
        let Ok(mut c) = self.counters.lock() else {
            return;
        };
        let entry = c.notifications.entry(receiver.to_string()).or_default();
        if delivered {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }

    pub(crate) fn gauges(
        &self,
        alerts: BTreeMap<&'static str, u64>,
        rules: BTreeMap<&'static str, u64>,
    ) {
        if let Ok(mut c) = self.counters.lock() {
            c.alerts = alerts;
            c.rules = rules;
        }
    }

    /// Counts of rule evaluations so far (all rules), for tests and the bench.
    pub fn evaluations_total(&self) -> u64 {
        self.counters
            .lock()
            .map(|c| c.evaluations.values().map(|e| e.0).sum())
            .unwrap_or(0)
    }

    pub(crate) fn render(&self, out: &mut String) {
        let Ok(c) = self.counters.lock() else { return };
        let _ = writeln!(
            out,
            "# HELP tally_rule_evaluations_total Alert rule evaluations."
        );
        let _ = writeln!(out, "# TYPE tally_rule_evaluations_total counter");
        for (rule, (n, _)) in &c.evaluations {
            let _ = writeln!(
                out,
                "tally_rule_evaluations_total{{rule=\"{}\"}} {n}",
                escape_label(rule)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tally_rule_evaluation_failures_total Alert rule evaluations that failed (the rule is unhealthy)."
        );
        let _ = writeln!(out, "# TYPE tally_rule_evaluation_failures_total counter");
        for (rule, (_, failed)) in &c.evaluations {
            let _ = writeln!(
                out,
                "tally_rule_evaluation_failures_total{{rule=\"{}\"}} {failed}",
                escape_label(rule)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tally_rule_evaluation_duration_seconds Time one rule evaluation took (its query included)."
        );
        let _ = writeln!(
            out,
            "# TYPE tally_rule_evaluation_duration_seconds histogram"
        );
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "tally_rule_evaluation_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                c.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "tally_rule_evaluation_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            c.duration_count
        );
        let _ = writeln!(
            out,
            "tally_rule_evaluation_duration_seconds_sum {}",
            c.duration_sum
        );
        let _ = writeln!(
            out,
            "tally_rule_evaluation_duration_seconds_count {}",
            c.duration_count
        );
        let _ = writeln!(
            out,
            "# HELP tally_rule_evaluation_rounds_total Wake-ups of the evaluator that ran due rules."
        );
        let _ = writeln!(out, "# TYPE tally_rule_evaluation_rounds_total counter");
        let _ = writeln!(out, "tally_rule_evaluation_rounds_total {}", c.rounds);
        let _ = writeln!(
            out,
            "# HELP tally_rule_queries_total Distinct rule queries run (rules with the same query at the same time share one)."
        );
        let _ = writeln!(out, "# TYPE tally_rule_queries_total counter");
        let _ = writeln!(out, "tally_rule_queries_total {}", c.queries);
        let _ = writeln!(
            out,
            "# HELP tally_rule_queries_shared_total Rule evaluations answered by a query another rule ran."
        );
        let _ = writeln!(out, "# TYPE tally_rule_queries_shared_total counter");
        let _ = writeln!(out, "tally_rule_queries_shared_total {}", c.shared);
        let _ = writeln!(
            out,
            "# HELP tally_rules Alert rules by health (ok, unhealthy, invalid, unknown)."
        );
        let _ = writeln!(out, "# TYPE tally_rules gauge");
        for (health, n) in &c.rules {
            let _ = writeln!(out, "tally_rules{{health=\"{health}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP tally_alerts Alerts by state.");
        let _ = writeln!(out, "# TYPE tally_alerts gauge");
        for (state, n) in &c.alerts {
            let _ = writeln!(out, "tally_alerts{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP tally_notifications_total Notifications delivered, by receiver."
        );
        let _ = writeln!(out, "# TYPE tally_notifications_total counter");
        for (receiver, (sent, _)) in &c.notifications {
            let _ = writeln!(
                out,
                "tally_notifications_total{{receiver=\"{}\"}} {sent}",
                escape_label(receiver)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tally_notifications_failed_total Notifications not delivered after every retry, by receiver."
        );
        let _ = writeln!(out, "# TYPE tally_notifications_failed_total counter");
        for (receiver, (_, failed)) in &c.notifications {
            let _ = writeln!(
                out,
                "tally_notifications_failed_total{{receiver=\"{}\"}} {failed}",
                escape_label(receiver)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let m = AlertMetrics::default();
        m.evaluation("gpu_hot", false, Duration::from_millis(2));
        m.evaluation("gpu_hot", true, Duration::from_millis(20));
        m.notification("ops", true);
        m.notification("ops", false);
        let mut out = String::new();
        m.render(&mut out);
        let mut current = String::new();
        for line in out.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().unwrap().to_string();
            } else if !line.starts_with('#') {
                assert!(
                    line.starts_with(&current),
                    "{line} outside {current}:\n{out}"
                );
            }
        }
        assert!(
            out.contains("tally_rule_evaluations_total{rule=\"gpu_hot\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("tally_rule_evaluation_failures_total{rule=\"gpu_hot\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("tally_rule_evaluation_duration_seconds_count 2"),
            "{out}"
        );
        assert!(
            out.contains("tally_notifications_failed_total{receiver=\"ops\"} 1"),
            "{out}"
        );
    }
}
