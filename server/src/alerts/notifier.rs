//! Notification payloads and their delivery.
//!
//! Payloads: Alertmanager's v2 API (`POST /api/v2/alerts`: a list of alerts with labels,
//! annotations, startsAt, endsAt, generatorURL); a generic JSON webhook in the shape of
//! Alertmanager's own webhook (`version` "4", `status`, `receiver`, `groupLabels`,
//! `commonLabels`, `commonAnnotations`, `externalURL`, `alerts[]`), so tools written for
//! Alertmanager's webhooks read it unchanged; a Slack-compatible incoming webhook (`text`
//! plus `blocks`); and email (text and HTML).
//!
//! Delivery: one worker thread per destination, fed through a channel, so a slow or failing
//! receiver delays only itself; each notification is retried with exponential backoff.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::metrics::AlertMetrics;
use super::template::format_number;
use crate::notify::smtp::{Email, SmtpSettings, send_mail};
use crate::notify::webhook::{post_json, with_retries};

/// One alert in a notification.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Notice {
    pub firing: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub value: Option<f64>,
    pub starts_at: i64,
    /// When the alert resolved; for Alertmanager, when a firing alert expires unless resent.
    pub ends_at: Option<i64>,
    pub generator_url: String,
    pub fingerprint: String,
}

/// A notification of one group of alerts to one receiver.
#[derive(Clone, Debug)]
pub(crate) struct GroupNotice {
    pub receiver: String,
    pub group_key: String,
    pub group_labels: BTreeMap<String, String>,
    pub alerts: Vec<Notice>,
    pub external_url: String,
}

pub(crate) use crate::time_text::rfc3339;

fn status(firing: bool) -> &'static str {
    if firing { "firing" } else { "resolved" }
}

/// The body of `POST /api/v2/alerts`.
pub(crate) fn alertmanager_payload(alerts: &[Notice]) -> Value {
    Value::Array(
        alerts
            .iter()
            .map(|a| {
                let mut alert = json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339(a.starts_at),
                    "generatorURL": a.generator_url,
                });
                if let (Some(end), Some(map)) = (a.ends_at, alert.as_object_mut()) {
                    map.insert("endsAt".into(), rfc3339(end).into());
                }
                alert
            })
            .collect(),
    )
}

/// Labels (or annotations) every alert of the group shares.
fn common(
    alerts: &[Notice],
    pick: fn(&Notice) -> &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let Some(first) = alerts.first() else {
        return BTreeMap::new();
    };
    pick(first)
        .iter()
        .filter(|(k, v)| alerts.iter().all(|a| pick(a).get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl GroupNotice {
    fn n_firing(&self) -> usize {
        self.alerts.iter().filter(|a| a.firing).count()
    }

    fn status(&self) -> &'static str {
        status(self.n_firing() > 0)
    }

    /// `[FIRING:2] gpu_hot host=node-1` or `[RESOLVED] ...`.
    pub(crate) fn title(&self) -> String {
        let n = self.n_firing();
        let head = if n > 0 {
            format!("[FIRING:{n}]")
        } else {
            "[RESOLVED]".to_string()
        };
        let labels: Vec<String> = self
            .group_labels
            .iter()
            .map(|(k, v)| {
                if k == "alertname" {
                    v.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        format!("{head} {}", labels.join(" "))
    }

    /// The generic webhook body (Alertmanager's webhook format, version 4).
    pub(crate) fn webhook_payload(&self) -> Value {
        json!({
            "version": "4",
            "groupKey": self.group_key,
            "truncatedAlerts": 0,
            "status": self.status(),
            "receiver": self.receiver,
            "groupLabels": self.group_labels,
            "commonLabels": common(&self.alerts, |a| &a.labels),
            "commonAnnotations": common(&self.alerts, |a| &a.annotations),
            "externalURL": self.external_url,
            "alerts": self.alerts.iter().map(|a| json!({
                "status": status(a.firing),
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(a.starts_at),
                "endsAt": a.ends_at.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339),
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
                "value": a.value,
            })).collect::<Vec<_>>(),
        })
    }

    fn alert_line(a: &Notice) -> String {
        let summary = a
            .annotations
            .get("summary")
            .or_else(|| a.annotations.get("description"))
            .cloned()
            .unwrap_or_else(|| a.labels.get("alertname").cloned().unwrap_or_default());
        let value = a.value.map(format_number).unwrap_or_else(|| "-".into());
        format!("{} ({}, value {value})", summary, status(a.firing))
    }

    /// A Slack incoming-webhook body: `text` for notifications and clients without blocks,
    /// `blocks` for the message itself.
    pub(crate) fn slack_payload(&self) -> Value {
        let mut blocks = vec![json!({
            "type": "header",
            "text": { "type": "plain_text", "text": truncate(&self.title(), 150) },
        })];
        for a in self.alerts.iter().take(40) {
            let labels: Vec<String> = a
                .labels
                .iter()
                .filter(|(k, _)| k.as_str() != "alertname")
                .map(|(k, v)| format!("`{k}={v}`"))
                .collect();
            let mut text = format!(
                "*{}*\n{}",
                escape_slack(&Self::alert_line(a)),
                labels.join(" ")
            );
            if let Some(d) = a.annotations.get("description") {
                text.push('\n');
                text.push_str(&escape_slack(d));
            }
            blocks.push(json!({
                "type": "section",
                "text": { "type": "mrkdwn", "text": truncate(&text, 3000) },
            }));
        }
        blocks.push(json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": format!("<{}|Tally> · {}", self.external_url, self.receiver) }],
        }));
        let lines: Vec<String> = self.alerts.iter().map(Self::alert_line).collect();
        json!({
            "text": format!("{}\n{}", self.title(), lines.join("\n")),
            "blocks": blocks,
        })
    }

    pub(crate) fn email(&self, to: &[String]) -> Email {
        let mut text = format!("{}\n\n", self.title());
        let mut html = format!(
            "<html><body><h2>{}</h2><table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\
             <tr><th>status</th><th>alert</th><th>value</th><th>labels</th><th>since</th></tr>",
            escape_html(&self.title())
        );
        for a in &self.alerts {
            let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let value = a.value.map(format_number).unwrap_or_else(|| "-".into());
            text.push_str(&format!(
                "- {}\n  status: {}\n  value: {value}\n  labels: {}\n  since: {}\n",
                Self::alert_line(a),
                status(a.firing),
                labels.join(", "),
                rfc3339(a.starts_at)
            ));
            for (k, v) in &a.annotations {
                text.push_str(&format!("  {k}: {v}\n"));
            }
            if let Some(end) = a.ends_at.filter(|_| !a.firing) {
                text.push_str(&format!("  resolved: {}\n", rfc3339(end)));
            }
            text.push('\n');
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{value}</td><td>{}</td><td>{}</td></tr>",
                status(a.firing),
                escape_html(&Self::alert_line(a)),
                escape_html(&labels.join(", ")),
                rfc3339(a.starts_at)
            ));
        }
        text.push_str(&format!("-- \nTally: {}\n", self.external_url));
        html.push_str("</table></body></html>");
        Email {
            to: to.to_vec(),
            subject: self.title(),
            text,
            html: Some(html),
            attachments: Vec::new(),
        }
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn escape_slack(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn escape_html(text: &str) -> String {
    escape_slack(text).replace('"', "&quot;")
}

/// What to deliver.
#[derive(Debug)]
pub(crate) enum Delivery {
    Json {
        url: String,
        headers: Vec<(String, String)>,
        body: Value,
    },
    Mail(Email),
}

/// Delivery settings shared by the workers.
pub(crate) struct DeliverySettings {
    pub attempts: u32,
    pub backoff: Duration,
    pub timeout: Duration,
    pub smtp: Option<SmtpSettings>,
}

/// One worker per destination (receiver name or Alertmanager URL).
pub(crate) struct Dispatcher {
    workers: Mutex<HashMap<String, mpsc::Sender<Delivery>>>,
    settings: Arc<DeliverySettings>,
    metrics: Arc<AlertMetrics>,
}

impl Dispatcher {
    pub(crate) fn new(settings: DeliverySettings, metrics: Arc<AlertMetrics>) -> Dispatcher {
        Dispatcher {
            workers: Mutex::new(HashMap::new()),
            settings: Arc::new(settings),
            metrics,
        }
    }

    /// Queues `delivery` for `destination`; deliveries to one destination keep their order.
    pub(crate) fn send(&self, destination: &str, delivery: Delivery) {
        let Ok(mut workers) = self.workers.lock() else {
            return;
        };
        let delivery = match workers.get(destination) {
            Some(sender) => match sender.send(delivery) {
                Ok(()) => return,
                Err(mpsc::SendError(d)) => d,
            },
            None => delivery,
        };
        let (sender, receiver) = mpsc::channel::<Delivery>();
        let settings = self.settings.clone();
        let metrics = self.metrics.clone();
        let name = destination.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("tally-notify-{}", workers.len()))
            .spawn(move || {
                for delivery in receiver {
                    deliver(&name, &settings, &metrics, &delivery);
                }
            });
        match spawned {
            Ok(_) => {
                let _ = sender.send(delivery);
                workers.insert(destination.to_string(), sender);
            }
            Err(e) => {
                tracing::error!(destination, error = %e, "cannot start a notification thread");
                self.metrics.notification(destination, false);
            }
        }
    }

    /// Stops taking work: each worker ends after the deliveries already queued.
    pub(crate) fn close(&self) {
        if let Ok(mut workers) = self.workers.lock() {
            workers.clear();
        }
    }
}

fn deliver(
    destination: &str,
    settings: &DeliverySettings,
    metrics: &AlertMetrics,
    delivery: &Delivery,
) {
    let outcome = with_retries(settings.attempts, settings.backoff, || match delivery {
        Delivery::Json { url, headers, body } => post_json(url, body, headers, settings.timeout),
        Delivery::Mail(email) => match &settings.smtp {
            Some(smtp) => send_mail(smtp, email),
            None => Err(crate::notify::NotifyError::Invalid {
                reason: "no [smtp] section is configured".into(),
            }),
        },
    });
    match outcome {
        Ok(()) => {
            tracing::debug!(destination, "notification delivered");
            metrics.notification(destination, true);
        }
        Err(e) => {
            tracing::warn!(destination, error = %e, "notification failed after every retry");
            metrics.notification(destination, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupNotice {
        let notice = |host: &str, firing: bool| Notice {
            firing,
            labels: BTreeMap::from([
                ("alertname".to_string(), "gpu_hot".to_string()),
                ("host".to_string(), host.to_string()),
                ("severity".to_string(), "critical".to_string()),
            ]),
            annotations: BTreeMap::from([("summary".to_string(), format!("GPU hot on {host}"))]),
            value: Some(91.5),
            starts_at: 1_796_083_200_000_000_000,
            ends_at: (!firing).then_some(1_796_083_260_000_000_000),
            generator_url: "http://tally:8086/api/v1/rules/gpu_hot".into(),
            fingerprint: host.to_string(),
        };
        GroupNotice {
            receiver: "ops".into(),
            group_key: "ops/alertname=gpu_hot".into(),
            group_labels: BTreeMap::from([("alertname".to_string(), "gpu_hot".to_string())]),
            alerts: vec![notice("node-1", true), notice("node-2", false)],
            external_url: "http://tally:8086".into(),
        }
    }

    #[test]
    fn the_alertmanager_payload_has_labels_annotations_times_and_generator_url() {
        let g = group();
        let body = alertmanager_payload(&g.alerts);
        assert_eq!(body[0]["labels"]["host"], "node-1");
        assert_eq!(body[0]["annotations"]["summary"], "GPU hot on node-1");
        assert_eq!(body[0]["startsAt"], "2026-12-01T00:00:00Z");
        assert!(body[0].get("endsAt").is_none());
        assert_eq!(body[1]["endsAt"], "2026-12-01T00:01:00Z");
        assert_eq!(
            body[0]["generatorURL"],
            "http://tally:8086/api/v1/rules/gpu_hot"
        );
    }

    #[test]
    fn the_webhook_payload_follows_alertmanagers_webhook_shape() {
        let body = group().webhook_payload();
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["receiver"], "ops");
        assert_eq!(body["commonLabels"]["alertname"], "gpu_hot");
        assert!(body["commonLabels"].get("host").is_none());
        assert_eq!(body["alerts"][1]["status"], "resolved");
        assert_eq!(body["alerts"][0]["value"], 91.5);
    }

    #[test]
    fn the_slack_payload_has_text_and_blocks() {
        let body = group().slack_payload();
        assert!(
            body["text"]
                .as_str()
                .unwrap()
                .starts_with("[FIRING:1] gpu_hot")
        );
        assert_eq!(body["blocks"][0]["type"], "header");
        let section = body["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(
            section.contains("GPU hot on node-1") && section.contains("`host=node-1`"),
            "{section}"
        );
    }

    #[test]
    fn the_email_has_a_subject_text_and_html() {
        let email = group().email(&["ops@example.com".to_string()]);
        assert_eq!(email.subject, "[FIRING:1] gpu_hot");
        assert!(
            email
                .text
                .contains("GPU hot on node-2 (resolved, value 91.5)"),
            "{}",
            email.text
        );
        assert!(email.text.contains("resolved: 2026-12-01T00:01:00Z"));
        assert!(email.html.unwrap().contains("<table"));
    }
}
