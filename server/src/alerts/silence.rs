//! Silences, for those who do not run Alertmanager: matchers on an alert's labels and a time
//! window. A silenced alert still changes state and is still written to `_alerts`, but no
//! receiver (nor Alertmanager) is notified while the silence lasts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `name = value`, `name != value`, `name =~ regex`, `name !~ regex` (regexes are anchored at
/// both ends, as in Alertmanager).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence as stored and as the API shows it (times in nanoseconds here, RFC 3339 there).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: i64,
    pub ends_at: i64,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

/// A silence with its regexes compiled.
#[derive(Debug)]
pub(crate) struct CompiledSilence {
    pub silence: Silence,
    matchers: Vec<(Matcher, Option<regex::Regex>)>,
}

impl CompiledSilence {
    /// Checks the matchers; a silence must have at least one, and regexes must compile.
    pub(crate) fn new(silence: Silence) -> Result<CompiledSilence, String> {
        if silence.matchers.is_empty() {
            return Err("a silence needs at least one matcher".into());
        }
        if silence.ends_at <= silence.starts_at {
            return Err("a silence must end after it starts".into());
        }
        let mut matchers = Vec::new();
        for m in &silence.matchers {
            if m.name.is_empty() {
                return Err("a matcher has an empty label name".into());
            }
            let regex = if m.is_regex {
                Some(
                    regex::Regex::new(&format!("^(?:{})$", m.value)).map_err(|e| {
                        format!("matcher {}: invalid regex {:?}: {e}", m.name, m.value)
                    })?,
                )
            } else {
                None
            };
            matchers.push((m.clone(), regex));
        }
        Ok(CompiledSilence { silence, matchers })
    }

    pub(crate) fn is_active(&self, now: i64) -> bool {
        self.silence.starts_at <= now && now < self.silence.ends_at
    }

    /// Whether every matcher matches `labels` (a missing label reads as the empty string).
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|(m, regex)| {
            let value = labels.get(&m.name).map_or("", String::as_str);
            let hit = match regex {
                Some(r) => r.is_match(value),
                None => value == m.value,
            };
            hit == m.is_equal
        })
    }
}

/// Parses an RFC 3339 time (`2026-12-04T18:00:00Z`, `...T18:00:00.5+01:00`) into nanoseconds.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = std::str::from_utf8(b.get(range)?).ok()?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = std::str::from_utf8(b.get(start..i)?).ok()?;
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = format!("{digits:0<9}").parse().ok()?;
    }
    let offset_seconds = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let s = h * 3600 + m * 60;
            if *sign == b'+' { s } else { -s }
        }
        _ => return None,
    };
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(matchers: Vec<Matcher>) -> CompiledSilence {
        CompiledSilence::new(Silence {
            id: "s1".into(),
            matchers,
            starts_at: 100,
            ends_at: 200,
            created_by: "test".into(),
            comment: String::new(),
        })
        .unwrap()
    }

    fn m(name: &str, value: &str, is_regex: bool, is_equal: bool) -> Matcher {
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    #[test]
    fn matchers_compare_labels_with_anchored_regexes_and_negation() {
        let labels = BTreeMap::from([
            ("alertname".to_string(), "gpu_hot".to_string()),
            ("host".to_string(), "node-12".to_string()),
        ]);
        assert!(silence(vec![m("alertname", "gpu_hot", false, true)]).matches(&labels));
        assert!(silence(vec![m("host", "node-1\\d", true, true)]).matches(&labels));
        assert!(!silence(vec![m("host", "node-1", true, true)]).matches(&labels));
        assert!(silence(vec![m("host", "node-2.*", true, false)]).matches(&labels));
        assert!(
            !silence(vec![
                m("alertname", "gpu_hot", false, true),
                m("host", "node-12", false, false)
            ])
            .matches(&labels)
        );
    }

    #[test]
    fn a_silence_is_active_only_within_its_window() {
        let s = silence(vec![m("a", "b", false, true)]);
        assert!(!s.is_active(99) && s.is_active(100) && s.is_active(199) && !s.is_active(200));
    }

    #[test]
    fn bad_silences_are_rejected() {
        let base = Silence {
            id: "x".into(),
            matchers: vec![],
            starts_at: 0,
            ends_at: 10,
            created_by: String::new(),
            comment: String::new(),
        };
        assert!(CompiledSilence::new(base.clone()).is_err());
        let mut s = base.clone();
        s.matchers = vec![m("a", "(", true, true)];
        assert!(
            CompiledSilence::new(s)
                .unwrap_err()
                .contains("invalid regex")
        );
        let mut s = base;
        s.matchers = vec![m("a", "b", false, true)];
        s.ends_at = 0;
        assert!(CompiledSilence::new(s).is_err());
    }

    #[test]
    fn rfc3339_times_parse_with_fractions_and_offsets() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-12-01T00:00:00Z"),
            Some(1_796_083_200_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-12-01T01:00:00.5+01:00"),
            Some(1_796_083_200_500_000_000)
        );
        assert_eq!(parse_rfc3339("2026-12-01"), None);
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-12-01T00:00:00"), None);
    }
}
