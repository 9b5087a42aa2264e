//! The alert state machine: inactive -> pending -> firing -> resolved, with `for`,
//! `keep_firing_for` and flapping detection. It is a pure function of the previous state, the
//! evaluation time and the series whose condition holds, so tests drive it with any clock and
//! the state can be saved and restored at any point (see `store.rs`).
//!
//! Rules of the machine, at an evaluation at time `t`:
//! - a series whose condition holds and that has no alert (or a resolved one) becomes
//!   `pending` with `active_at = t`, or `firing` at once when `for` is zero;
//! - a `pending` alert fires once `t - active_at >= for`; it is dropped (back to inactive)
//!   when its condition stops holding before that;
//! - a `firing` alert whose condition stops holding stays firing while
//!   `t - last_true < keep_firing_for`, then becomes `resolved` (`resolved_at = t`);
//! - a resolved alert is kept for `resolved_retention` (for notifications, the API and
//!   flapping history), then forgotten;
//! - every fire and resolve is counted; an alert with `flap_threshold` or more of them within
//!   `flap_window` is flapping (its notifications are held until it settles).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The state of one alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert: a series of a rule's query, with its labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    /// The last value seen (`None` when it was not a finite number).
    pub value: Option<f64>,
    /// When the condition started holding (the start of `pending`).
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    /// The last evaluation at which the condition held.
    pub last_true: i64,
    #[serde(default)]
    pub flapping: bool,
    /// Delivery bookkeeping: when Alertmanager last got this alert, and whether it got the
    /// resolution.
    #[serde(default)]
    pub alertmanager_sent_at: Option<i64>,
    #[serde(default)]
    pub alertmanager_resolved_sent: bool,
}

/// The timing settings of a rule the machine needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub resolved_retention: Duration,
    pub flap_threshold: u32,
    pub flap_window: Duration,
}

/// A series whose condition holds at this evaluation.
#[derive(Clone, Debug)]
pub(crate) struct Active {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub value: f64,
}

/// A change of state, as written to `_alerts` and counted in metrics.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Transition {
    pub from: AlertState,
    pub to: AlertState,
    pub alert: Alert,
}

/// The alerts of one rule, by fingerprint (their labels).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RuleState {
    pub alerts: BTreeMap<String, Alert>,
    /// Times of fires and resolves within the flap window, by fingerprint; kept apart from
    /// the alerts so that the history outlives a resolved alert.
    #[serde(default)]
    pub changes: BTreeMap<String, Vec<i64>>,
}

/// The identity of an alert: its labels, in order, as one string.
pub(crate) fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in labels {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('\u{1f}');
    }
    out
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl RuleState {
    /// One evaluation at `now`: `active` lists the series whose condition holds. Returns the
    /// transitions, in fingerprint order.
    pub(crate) fn evaluate(
        &mut self,
        timing: &Timing,
        now: i64,
        active: Vec<Active>,
    ) -> Vec<Transition> {
        let mut transitions = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for series in active {
            let key = fingerprint(&series.labels);
            seen.insert(key.clone());
            let value = series.value.is_finite().then_some(series.value);
            let alert = self.alerts.entry(key.clone()).or_insert_with(|| Alert {
                labels: series.labels.clone(),
                annotations: BTreeMap::new(),
                state: AlertState::Inactive,
                value,
                active_at: now,
                fired_at: None,
                resolved_at: None,
                last_true: now,
                flapping: false,
                alertmanager_sent_at: None,
                alertmanager_resolved_sent: false,
            });
            alert.value = value;
            alert.annotations = series.annotations;
            alert.last_true = now;
            let from = alert.state;
            match from {
                AlertState::Inactive | AlertState::Resolved => {
                    alert.active_at = now;
                    alert.fired_at = None;
                    alert.resolved_at = None;
                    alert.alertmanager_sent_at = None;
                    alert.alertmanager_resolved_sent = false;
                    alert.state = AlertState::Pending;
                    if timing.for_.is_zero() {
                        alert.state = AlertState::Firing;
                        alert.fired_at = Some(now);
                    }
                }
                AlertState::Pending => {
                    if now.saturating_sub(alert.active_at) >= nanos(timing.for_) {
                        alert.state = AlertState::Firing;
                        alert.fired_at = Some(now);
                    }
                }
                AlertState::Firing => {}
            }
            if alert.state != from {
                if alert.state == AlertState::Firing {
                    self.changes.entry(key).or_default().push(now);
                }
                transitions.push(Transition {
                    from,
                    to: alert.state,
                    alert: alert.clone(),
                });
            }
        }
        let retention = nanos(timing.resolved_retention);
        let mut forget = Vec::new();
        for (key, alert) in &mut self.alerts {
            if seen.contains(key) {
                continue;
            }
            let from = alert.state;
            match from {
                AlertState::Pending => {
                    alert.state = AlertState::Inactive;
                    forget.push(key.clone());
                }
                AlertState::Firing => {
                    let kept = now.saturating_sub(alert.last_true) < nanos(timing.keep_firing_for);
                    if !kept {
                        alert.state = AlertState::Resolved;
                        alert.resolved_at = Some(now);
                        self.changes.entry(key.clone()).or_default().push(now);
                    }
                }
                AlertState::Resolved => {
                    if now.saturating_sub(alert.resolved_at.unwrap_or(now)) >= retention {
                        forget.push(key.clone());
                    }
                }
                AlertState::Inactive => forget.push(key.clone()),
            }
            if alert.state != from {
                transitions.push(Transition {
                    from,
                    to: alert.state,
                    alert: alert.clone(),
                });
            }
        }
        for key in forget {
            self.alerts.remove(&key);
        }
        let horizon = now.saturating_sub(nanos(timing.flap_window));
        self.changes.retain(|_, times| {
            times.retain(|&t| t > horizon);
            !times.is_empty()
        });
        for (key, alert) in &mut self.alerts {
            let n = self.changes.get(key).map_or(0, Vec::len);
            alert.flapping = timing.flap_threshold > 0 && n >= timing.flap_threshold as usize;
        }
        for t in &mut transitions {
            let n = self
                .changes
                .get(&fingerprint(&t.alert.labels))
                .map_or(0, Vec::len);
            t.alert.flapping = timing.flap_threshold > 0 && n >= timing.flap_threshold as usize;
        }
        transitions.sort_by_cached_key(|t| fingerprint(&t.alert.labels));
        transitions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// A clock the test moves by hand: every evaluation reads it.
    struct TestClock(i64);

    impl TestClock {
        fn advance(&mut self, seconds: i64) -> i64 {
            self.0 += seconds * S;
            self.0
        }
    }

    fn timing(for_s: u64, keep_s: u64) -> Timing {
        Timing {
            for_: Duration::from_secs(for_s),
            keep_firing_for: Duration::from_secs(keep_s),
            resolved_retention: Duration::from_secs(900),
            flap_threshold: 0,
            flap_window: Duration::from_secs(3600),
        }
    }

    fn series(host: &str, value: f64) -> Active {
        Active {
            labels: BTreeMap::from([
                ("alertname".to_string(), "gpu_hot".to_string()),
                ("host".to_string(), host.to_string()),
            ]),
            annotations: BTreeMap::from([("summary".to_string(), format!("{value}"))]),
            value,
        }
    }

    fn state_of(rule: &RuleState, host: &str) -> AlertState {
        rule.alerts
            .values()
            .find(|a| a.labels["host"] == host)
            .map_or(AlertState::Inactive, |a| a.state)
    }

    fn kinds(transitions: &[Transition]) -> Vec<(AlertState, AlertState)> {
        transitions.iter().map(|t| (t.from, t.to)).collect()
    }

    #[test]
    fn a_condition_held_for_the_for_duration_goes_pending_then_firing() {
        let mut clock = TestClock(1000 * S);
        let mut rule = RuleState::default();
        let t = timing(300, 0);
        let tr = rule.evaluate(&t, clock.0, vec![series("a", 90.0)]);
        assert_eq!(kinds(&tr), [(AlertState::Inactive, AlertState::Pending)]);
        let tr = rule.evaluate(&t, clock.advance(240), vec![series("a", 91.0)]);
        assert!(tr.is_empty());
        assert_eq!(state_of(&rule, "a"), AlertState::Pending);
        let tr = rule.evaluate(&t, clock.advance(60), vec![series("a", 92.0)]);
        assert_eq!(kinds(&tr), [(AlertState::Pending, AlertState::Firing)]);
        let alert = &tr[0].alert;
        assert_eq!(alert.active_at, 1000 * S);
        assert_eq!(alert.fired_at, Some(1300 * S));
        assert_eq!(alert.value, Some(92.0));
        assert_eq!(alert.annotations["summary"], "92");
    }

    #[test]
    fn a_pending_alert_whose_condition_stops_goes_back_to_inactive_without_firing() {
        let mut clock = TestClock(0);
        let mut rule = RuleState::default();
        let t = timing(300, 0);
        rule.evaluate(&t, clock.0, vec![series("a", 90.0)]);
        let tr = rule.evaluate(&t, clock.advance(60), vec![]);
        assert_eq!(kinds(&tr), [(AlertState::Pending, AlertState::Inactive)]);
        assert!(rule.alerts.is_empty());
        // Holding again starts the `for` period afresh.
        rule.evaluate(&t, clock.advance(60), vec![series("a", 90.0)]);
        let tr = rule.evaluate(&t, clock.advance(299), vec![series("a", 90.0)]);
        assert!(tr.is_empty());
        let tr = rule.evaluate(&t, clock.advance(1), vec![series("a", 90.0)]);
        assert_eq!(kinds(&tr), [(AlertState::Pending, AlertState::Firing)]);
    }

    #[test]
    fn without_for_an_alert_fires_at_once_and_resolves_when_the_condition_stops() {
        let mut clock = TestClock(0);
        let mut rule = RuleState::default();
        let t = timing(0, 0);
        let tr = rule.evaluate(&t, clock.0, vec![series("a", 90.0), series("b", 95.0)]);
        assert_eq!(
            kinds(&tr),
            [
                (AlertState::Inactive, AlertState::Firing),
                (AlertState::Inactive, AlertState::Firing)
            ]
        );
        let tr = rule.evaluate(&t, clock.advance(60), vec![series("b", 95.0)]);
        assert_eq!(kinds(&tr), [(AlertState::Firing, AlertState::Resolved)]);
        assert_eq!(tr[0].alert.labels["host"], "a");
        assert_eq!(tr[0].alert.resolved_at, Some(60 * S));
        assert_eq!(state_of(&rule, "a"), AlertState::Resolved);
        // The resolved alert is kept for the retention, then forgotten.
        rule.evaluate(&t, clock.advance(899), vec![series("b", 95.0)]);
        assert_eq!(state_of(&rule, "a"), AlertState::Resolved);
        rule.evaluate(&t, clock.advance(3600), vec![series("b", 95.0)]);
        assert!(rule.alerts.values().all(|a| a.labels["host"] == "b"));
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert_through_short_gaps() {
        let mut clock = TestClock(0);
        let mut rule = RuleState::default();
        let t = timing(0, 120);
        rule.evaluate(&t, clock.0, vec![series("a", 90.0)]);
        assert!(rule.evaluate(&t, clock.advance(60), vec![]).is_empty());
        assert_eq!(state_of(&rule, "a"), AlertState::Firing);
        // Holding again within the window keeps the same alert (same fired_at).
        assert!(
            rule.evaluate(&t, clock.advance(60), vec![series("a", 91.0)])
                .is_empty()
        );
        assert!(rule.evaluate(&t, clock.advance(60), vec![]).is_empty());
        assert!(rule.evaluate(&t, clock.advance(59), vec![]).is_empty());
        let tr = rule.evaluate(&t, clock.advance(1), vec![]);
        assert_eq!(kinds(&tr), [(AlertState::Firing, AlertState::Resolved)]);
        assert_eq!(tr[0].alert.fired_at, Some(0));
    }

    #[test]
    fn a_resolved_alert_that_holds_again_starts_a_new_pending_period() {
        let mut clock = TestClock(0);
        let mut rule = RuleState::default();
        let t = timing(60, 0);
        rule.evaluate(&t, clock.0, vec![series("a", 90.0)]);
        rule.evaluate(&t, clock.advance(60), vec![series("a", 90.0)]);
        rule.evaluate(&t, clock.advance(60), vec![]);
        assert_eq!(state_of(&rule, "a"), AlertState::Resolved);
        let tr = rule.evaluate(&t, clock.advance(60), vec![series("a", 90.0)]);
        assert_eq!(kinds(&tr), [(AlertState::Resolved, AlertState::Pending)]);
        assert_eq!(tr[0].alert.active_at, 180 * S);
        assert_eq!(tr[0].alert.resolved_at, None);
    }

    #[test]
    fn an_alert_that_fires_and_resolves_often_is_flapping_until_it_settles() {
        let mut clock = TestClock(0);
        let mut rule = RuleState::default();
        let mut t = timing(0, 0);
        t.flap_threshold = 4;
        t.flap_window = Duration::from_secs(600);
        for i in 0..4 {
            let active = if i % 2 == 0 {
                vec![series("a", 90.0)]
            } else {
                vec![]
            };
            rule.evaluate(&t, clock.advance(60), active);
        }
        assert_eq!(rule.changes.values().next().unwrap().len(), 4);
        // The last step resolved it; holding again shows it firing and flapping.
        rule.evaluate(&t, clock.advance(60), vec![series("a", 90.0)]);
        let alert = rule.alerts.values().next().unwrap();
        assert!(alert.flapping, "{alert:?}");
        // Steady firing for longer than the window: the old changes age out.
        for _ in 0..10 {
            rule.evaluate(&t, clock.advance(60), vec![series("a", 90.0)]);
        }
        let alert = rule.alerts.values().next().unwrap();
        assert_eq!(alert.state, AlertState::Firing);
        assert!(!alert.flapping, "{alert:?}");
    }

    /// Runs `steps` (seconds to advance, whether the condition holds) on one state machine
    /// without a break, and on another that is saved to JSON and restored after `restart_at`
    /// steps; both must end the same and report the same transitions.
    fn restart_matches_uninterrupted(
        t: Timing,
        steps: &[(i64, bool)],
        restart_at: usize,
    ) -> AlertState {
        let mut clock = TestClock(0);
        let mut straight = RuleState::default();
        let mut restarted = RuleState::default();
        for (i, (advance, holds)) in steps.iter().enumerate() {
            let now = clock.advance(*advance);
            if i == restart_at {
                let json = serde_json::to_string(&restarted).unwrap();
                restarted = serde_json::from_str(&json).unwrap();
            }
            let active = || {
                if *holds {
                    vec![series("a", 90.0)]
                } else {
                    vec![]
                }
            };
            let a = straight.evaluate(&t, now, active());
            let b = restarted.evaluate(&t, now, active());
            assert_eq!(a, b, "step {i}");
        }
        assert_eq!(straight, restarted);
        state_of(&restarted, "a")
    }

    #[test]
    fn a_restart_in_every_state_continues_where_it_stopped() {
        let mut t = timing(120, 60);
        t.flap_threshold = 3;
        // Pending from step 0, firing at 3, kept firing at 4, resolved at 5, pending again at
        // 7, inactive at 8.
        let steps = [
            (10, true),
            (60, true),
            (30, true),
            (60, true),
            (30, false),
            (30, false),
            (60, false),
            (60, true),
            (60, false),
        ];
        let expected = [
            AlertState::Pending,
            AlertState::Pending,
            AlertState::Pending,
            AlertState::Firing,
            AlertState::Firing,
            AlertState::Resolved,
            AlertState::Resolved,
            AlertState::Pending,
            AlertState::Inactive,
        ];
        for restart_at in 0..steps.len() {
            let end = restart_matches_uninterrupted(t, &steps, restart_at);
            assert_eq!(end, AlertState::Inactive, "restart at {restart_at}");
        }
        let mut clock = TestClock(0);
        let mut rule = RuleState::default();
        for (i, (advance, holds)) in steps.iter().enumerate() {
            let active = if *holds {
                vec![series("a", 90.0)]
            } else {
                vec![]
            };
            rule.evaluate(&t, clock.advance(*advance), active);
            assert_eq!(state_of(&rule, "a"), expected[i], "step {i}");
        }
    }
}
