//! The `scrape` sampler: fetches one Prometheus endpoint over plain HTTP, parses the exposition,
//! stores every sample with the generic mapping (`prometheus::to_points`), adds what the
//! target's preset derives, and writes a `scrape` point about the scrape itself (`up`,
//! `duration_ms`, `samples`, `lines_rejected`), as Prometheus records `up` and
//! `scrape_duration_seconds`.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use tally_engine::PointBatch;

use super::presets::{self, Preset, PresetState};
use super::{SampleContext, Sampler, SamplerError, float, integer, named, push_point};
use crate::prometheus::{self, ConvertOptions, Flavor, ParseOptions};

/// Text format 0.0.4 first: the mapping is the same for both, and every exporter speaks it.
const ACCEPT: &str =
    "text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1";

/// One configured endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScrapeTarget {
    /// `http://host:port/path`; HTTPS is not supported.
    pub url: String,
    pub interval: Duration,
    /// Longest a scrape may take, connecting and reading included.
    pub timeout: Duration,
    pub preset: Preset,
    /// Tags added to every point of this target (they win over `host` and `url`).
    pub tags: Vec<(String, String)>,
    /// Larger bodies are refused.
    pub max_body_bytes: u64,
}

impl ScrapeTarget {
    /// A target with the defaults: every 10 s, 5 s timeout, generic mapping, 32 MiB bodies.
    pub fn new(url: impl Into<String>) -> ScrapeTarget {
        ScrapeTarget {
            url: url.into(),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            preset: Preset::Generic,
            tags: Vec::new(),
            max_body_bytes: 32 << 20,
        }
    }

    pub fn with_preset(mut self, preset: Preset) -> ScrapeTarget {
        self.preset = preset;
        self
    }

    pub fn with_interval(mut self, interval: Duration) -> ScrapeTarget {
        self.interval = interval;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> ScrapeTarget {
        self.timeout = timeout;
        self
    }

    pub fn with_tags(mut self, tags: Vec<(String, String)>) -> ScrapeTarget {
        self.tags = tags;
        self
    }

    /// The sampler name shown in `/health`: `scrape:<url>`.
    pub fn sampler_name(&self) -> String {
        format!("scrape:{}", self.url)
    }
}

/// The `scrape` sampler for one target.
pub struct ScrapeSampler {
    target: ScrapeTarget,
    agent: ureq::Agent,
    state: PresetState,
}

impl ScrapeSampler {
    /// Checks the URL (plain `http://` with a host) and the timeout.
    pub fn new(target: ScrapeTarget) -> Result<ScrapeSampler, SamplerError> {
        let invalid = |reason: &str| SamplerError::Scrape {
            url: target.url.clone(),
            reason: reason.to_string(),
        };
        let rest = target
            .url
            .strip_prefix("http://")
            .ok_or_else(|| invalid("the URL must start with http:// (HTTPS is not supported)"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(invalid("the URL has no host"));
        }
        if target.timeout.is_zero() {
            return Err(invalid("the timeout must be positive"));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(target.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("tally/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(ScrapeSampler {
            target,
            agent,
            state: PresetState::default(),
        })
    }

    fn fetch(&self) -> Result<(Vec<u8>, Flavor), SamplerError> {
        let url = &self.target.url;
        let failed = |e: ureq::Error| SamplerError::Scrape {
            url: url.clone(),
            reason: match e {
                ureq::Error::BodyExceedsLimit(limit) => {
                    format!("the body is larger than the limit of {limit} bytes")
                }
                ureq::Error::Timeout(_) => format!(
                    "no complete answer within the timeout of {:?}",
                    self.target.timeout
                ),
                other => other.to_string(),
            },
        };
        let mut response = self
            .agent
            .get(url)
            .header("Accept", ACCEPT)
            .call()
            .map_err(failed)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(SamplerError::HttpStatus {
                url: url.clone(),
                status,
            });
        }
        let flavor = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map_or(Flavor::Text, Flavor::from_content_type);
        let body = response
            .body_mut()
            .with_config()
            .limit(self.target.max_body_bytes)
            .read_to_vec()
            .map_err(failed)?;
        Ok((body, flavor))
    }

    /// The tags of every generic point: `host`, `url`, then the target's own, which win.
    fn tags(&self, host: &str) -> Vec<(String, String)> {
        let mut tags = vec![
            ("host".to_string(), host.to_string()),
            ("url".to_string(), self.target.url.clone()),
        ];
        for (k, v) in &self.target.tags {
            match tags.iter_mut().find(|(key, _)| key == k) {
                Some(existing) => existing.1 = v.clone(),
                None => tags.push((k.clone(), v.clone())),
            }
        }
        tags
    }

    fn health_point(
        &self,
        ctx: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
        up: bool,
        duration: Duration,
        samples: usize,
        rejected: u32,
    ) -> Result<(), SamplerError> {
        let tags = self.tags(ctx.host);
        let mut tag_refs: Vec<(&str, &str)> =
            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        tag_refs.push(("preset", self.target.preset.name()));
        push_point(
            batch,
            "scrape",
            &tag_refs,
            named([
                ("up", integer(u64::from(up))),
                ("duration_ms", float(duration.as_secs_f64() * 1000.0)),
                ("samples", integer(samples as u64)),
                ("lines_rejected", integer(u64::from(rejected))),
            ]),
            ctx.timestamp_ns,
        )
    }
}

/// Copies the points of `from` into `to` with owned strings.
fn copy_owned(from: &PointBatch<'_>, to: &mut PointBatch<'static>) -> Result<(), SamplerError> {
    for point in from.points() {
        to.push(
            Cow::Owned(point.measurement().to_string()),
            point
                .tags()
                .iter()
                .map(|(k, v)| (Cow::Owned(k.to_string()), Cow::Owned(v.to_string()))),
            point
                .fields()
                .iter()
                .map(|(k, v)| (Cow::Owned(k.to_string()), v.clone().into_owned())),
            point.timestamp(),
        )
        .map_err(|e| SamplerError::Rejected {
            count: 1,
            first: format!("{}: {e}", point.measurement()),
        })?;
    }
    Ok(())
}

impl Sampler for ScrapeSampler {
    fn sample(
        &mut self,
        ctx: &SampleContext<'_>,
        batch: &mut PointBatch<'static>,
    ) -> Result<(), SamplerError> {
        let started = Instant::now();
        let (body, flavor) = match self.fetch() {
            Ok(fetched) => fetched,
            Err(e) => {
                self.health_point(ctx, batch, false, started.elapsed(), 0, 0)?;
                return Err(e);
            }
        };
        let exposition = prometheus::parse(&body, &ParseOptions::new(flavor));
        let tags = self.tags(ctx.host);
        let mut local = PointBatch::new();
        let report = prometheus::to_points(
            &exposition,
            &ConvertOptions {
                default_timestamp_ns: ctx.timestamp_ns,
                tags: &tags,
            },
            &mut local,
        );
        let mut errors = Vec::new();
        if let Err(e) = copy_owned(&local, batch) {
            errors.push(e);
        }
        if let Some(first) = report.rejected.first() {
            errors.push(SamplerError::Rejected {
                count: report.rejected.len(),
                first: first.clone(),
            });
        }
        if let Err(e) = presets::derive(
            self.target.preset,
            &exposition,
            &mut self.state,
            ctx,
            &self.target.url,
            &self.target.tags,
            batch,
        ) {
            errors.push(e);
        }
        let rejected = exposition.lines_rejected();
        if let Some(first) = exposition.errors.first() {
            errors.push(SamplerError::Exposition {
                url: self.target.url.clone(),
                rejected,
                first: first.to_string(),
            });
        }
        self.health_point(
            ctx,
            batch,
            true,
            started.elapsed(),
            exposition.samples.len(),
            rejected,
        )?;
        SamplerError::combine(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_urls_must_be_plain_http_with_a_host() {
        assert!(ScrapeSampler::new(ScrapeTarget::new("http://127.0.0.1:9100/metrics")).is_ok());
        let err = ScrapeSampler::new(ScrapeTarget::new("https://x/metrics"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("http://"), "{err}");
        assert!(ScrapeSampler::new(ScrapeTarget::new("http:///metrics")).is_err());
        let zero = ScrapeTarget::new("http://x/").with_timeout(Duration::ZERO);
        assert!(ScrapeSampler::new(zero).is_err());
    }
}
