//! A small synchronous HTTP client for tallyd's `/query` and `/ping`.
//!
//! Every parameter, `q` included, travels in the URL of a POST, as InfluxDB's own client sends
//! it: any `/query` handler reads it there, and POST lets the server run statements that
//! change data. Plain HTTP only; TLS is left out to keep the shell small.

use std::io::ErrorKind;
use std::time::Duration;

use ureq::Agent;

use super::cli::Epoch;
use super::error::ShellError;

/// The largest answer the shell reads; a query that returns more should be narrowed.
const MAX_RESPONSE_BYTES: u64 = 1 << 30;

/// The longest a connection attempt may take, so that an unreachable host is reported soon
/// even with a long or no request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server answered: the status and the body as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// The optional parameters of `/query`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct QueryParameters<'a> {
    pub(crate) database: Option<&'a str>,
    pub(crate) epoch: Option<Epoch>,
    pub(crate) pretty: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Client {
    base_url: String,
    timeout: Option<Duration>,
    agent: Agent,
}

impl Client {
    /// A client for the server at `host` (`http://host:port`, an optional path prefix, or
    /// `host:port` alone).
    pub(crate) fn new(host: &str, timeout: Option<Duration>) -> Result<Client, ShellError> {
        let base_url = normalize_host(host)?;
        let connect_timeout = timeout.map_or(MAX_CONNECT_TIMEOUT, |timeout| {
            timeout.min(MAX_CONNECT_TIMEOUT)
        });
        let mut config = Agent::config_builder();
        // Like Go's net/http, never send requests for this machine through a proxy from the
        // environment: a proxy set up for the internet rarely reaches a local tallyd.
        if is_loopback(&base_url) {
            config = config.proxy(None);
        }
        let agent = config
            .http_status_as_error(false)
            .timeout_global(timeout)
            .timeout_connect(Some(connect_timeout))
            .user_agent(concat!("tally/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Client {
            base_url,
            timeout,
            agent,
        })
    }

    /// The server's URL, as shown to people.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `query` to `/query` and returns whatever the server answered, error statuses
    /// included; only a failure to reach the server or to read its answer is an error.
    pub(crate) fn query(
        &self,
        query: &str,
        parameters: QueryParameters<'_>,
    ) -> Result<Answer, ShellError> {
        let mut request = self
            .agent
            .post(format!("{}/query", self.base_url))
            .header("Accept", "application/json")
            .query("q", query);
        if let Some(database) = parameters.database {
            request = request.query("db", database);
        }
        if let Some(epoch) = parameters.epoch {
            request = request.query("epoch", epoch.query_parameter());
        }
        if parameters.pretty {
            request = request.query("pretty", "true");
        }
        let mut response = request.send_empty().map_err(|error| self.classify(error))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|error| match error {
                ureq::Error::BodyExceedsLimit(_) => ShellError::ResponseTooLarge {
                    host: self.base_url.clone(),
                    limit_bytes: MAX_RESPONSE_BYTES,
                },
                other => self.classify(other),
            })?;
        Ok(Answer { status, body })
    }

    /// Checks that the server answers `/ping`; returns the version it reports, if any.
    pub(crate) fn ping(&self) -> Result<Option<String>, ShellError> {
        let response = self
            .agent
            .get(format!("{}/ping", self.base_url))
            .call()
            .map_err(|error| self.classify(error))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(ShellError::UnexpectedResponse {
                host: self.base_url.clone(),
                status,
                reason: "/ping did not succeed; is this a tallyd or InfluxDB 1.x server?"
                    .to_owned(),
            });
        }
        let version = ["X-Tally-Version", "X-Influxdb-Version"]
            .iter()
            .find_map(|name| response.headers().get(*name))
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(version)
    }

    fn timed_out(&self) -> ShellError {
        match self.timeout {
            Some(after) => ShellError::TimedOut {
                host: self.base_url.clone(),
                after,
            },
            // Without a timeout of its own the shell waits forever; the system gave up.
            None => ShellError::Transport {
                host: self.base_url.clone(),
                reason: "the operating system timed the connection out".to_owned(),
            },
        }
    }

    fn classify(&self, error: ureq::Error) -> ShellError {
        let host = self.base_url.clone();
        let cannot_connect = |reason: String| ShellError::CannotConnect {
            host: self.base_url.clone(),
            reason,
        };
        match error {
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                cannot_connect("no connection within the connect timeout".to_owned())
            }
            ureq::Error::Timeout(_) => self.timed_out(),
            ureq::Error::HostNotFound => cannot_connect("the host name is not known".to_owned()),
            ureq::Error::ConnectionFailed => cannot_connect("the connection failed".to_owned()),
            ureq::Error::Io(io_error) => match io_error.kind() {
                ErrorKind::ConnectionRefused
                | ErrorKind::AddrNotAvailable
                | ErrorKind::NetworkUnreachable
                | ErrorKind::HostUnreachable => cannot_connect(io_error.to_string()),
                ErrorKind::TimedOut => self.timed_out(),
                _ => ShellError::Transport {
                    host,
                    reason: io_error.to_string(),
                },
            },
            other => ShellError::Transport {
                host,
                reason: other.to_string(),
            },
        }
    }
}

/// Whether the host of `base_url` (as [`normalize_host`] makes it) is this machine.
fn is_loopback(base_url: &str) -> bool {
    let authority = base_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _port)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Checks `host` and turns it into a base URL without a trailing `/`.
fn normalize_host(host: &str) -> Result<String, ShellError> {
    let invalid = |reason: &str| ShellError::InvalidHost {
        url: host.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = host.trim();
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("http".to_owned(), trimmed),
    };
    match scheme.as_str() {
        "http" => {}
        "https" => {
            return Err(ShellError::HttpsNotSupported {
                url: host.to_owned(),
            });
        }
        _ => return Err(invalid("only http:// URLs are supported")),
    }
    let rest = rest.trim_end_matches('/');
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(invalid("the host is missing"));
    }
    if rest.contains(['?', '#']) {
        return Err(invalid(
            "a query string or fragment does not belong in the host URL",
        ));
    }
    let base_url = format!("http://{rest}");
    format!("{base_url}/query")
        .parse::<ureq::http::Uri>()
        .map_err(|error| invalid(&error.to_string()))?;
    Ok(base_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalized_to_an_http_base_url() {
        assert_eq!(
            normalize_host("http://127.0.0.1:8086").unwrap(),
            "http://127.0.0.1:8086"
        );
        assert_eq!(
            normalize_host("127.0.0.1:8086/").unwrap(),
            "http://127.0.0.1:8086"
        );
        assert_eq!(
            normalize_host("HTTP://db.local").unwrap(),
            "http://db.local"
        );
        assert_eq!(
            normalize_host("http://proxy:80/tally/").unwrap(),
            "http://proxy:80/tally"
        );
    }

    #[test]
    fn loopback_hosts_are_recognised_in_every_spelling() {
        for local in [
            "http://127.0.0.1:8086",
            "http://localhost",
            "http://LOCALHOST:8086/prefix",
            "http://127.1.2.3:1",
            "http://[::1]:8086",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "http://10.0.0.5:8086",
            "http://db.example.com",
            "http://[2001:db8::1]:80",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }

    #[test]
    fn https_is_refused_with_what_to_do_instead() {
        let error = normalize_host("https://db.example.com").unwrap_err();
        assert!(matches!(error, ShellError::HttpsNotSupported { .. }));
        assert!(error.to_string().contains("not supported yet"), "{error}");
    }

    #[test]
    fn hosts_that_are_not_urls_are_refused() {
        assert!(matches!(
            normalize_host("ftp://x").unwrap_err(),
            ShellError::InvalidHost { .. }
        ));
        assert!(matches!(
            normalize_host("http://").unwrap_err(),
            ShellError::InvalidHost { .. }
        ));
        assert!(matches!(
            normalize_host("http://a b:8086").unwrap_err(),
            ShellError::InvalidHost { .. }
        ));
        assert!(matches!(
            normalize_host("http://a:8086/?x=1").unwrap_err(),
            ShellError::InvalidHost { .. }
        ));
    }

    #[test]
    fn a_refused_connection_is_reported_as_cannot_connect() {
        // Port 1 on the loopback interface has no listener on any machine these tests run on.
        let client = Client::new("http://127.0.0.1:1", Some(Duration::from_secs(5))).unwrap();
        let error = client
            .query("SHOW DATABASES", QueryParameters::default())
            .unwrap_err();
        assert!(error.is_connection_failure(), "{error}");
        let message = error.to_string();
        assert!(message.contains("http://127.0.0.1:1"), "{message}");
        assert!(message.contains("--host"), "{message}");
    }
}
