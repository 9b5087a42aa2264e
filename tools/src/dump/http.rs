//! A small HTTP client for tallyd: the snapshot endpoints for online backups and `/write` for
//! imports. Plain HTTP, as the shell.

use std::io::Read;
use std::time::Duration;

use ureq::Agent;

use super::error::DumpError;

/// The longest a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JSON answer read (a snapshot description of a very large directory fits).
const MAX_JSON_BYTES: u64 = 256 << 20;

#[derive(Clone, Debug)]
pub(crate) struct Server {
    base_url: String,
    agent: Agent,
}

/// What the server answered: status, body and the `Retry-After` header.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) retry_after: Option<Duration>,
}

impl Server {
    /// A client for `host`: `http://host:port` or `host:port`.
    pub(crate) fn new(host: &str) -> Result<Server, DumpError> {
        let trimmed = host.trim().trim_end_matches('/');
        if trimmed.starts_with("https://") {
            return Err(DumpError::Usage(format!(
                "--host {host}: https is not supported; use http:// (or an SSH tunnel)"
            )));
        }
        let base_url = if trimmed.starts_with("http://") {
            trimmed.to_string()
        } else {
            format!("http://{trimmed}")
        };
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            // A proxy from the environment rarely reaches a tallyd on a private network.
            .proxy(None)
            .user_agent(concat!("tally-dump/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Server { base_url, agent })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn failure(&self, url: &str, error: ureq::Error) -> DumpError {
        DumpError::http(url, format!("cannot reach tallyd: {error}"))
    }

    fn answer(
        &self,
        url: &str,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<Answer, DumpError> {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_JSON_BYTES)
            .read_to_string()
            .map_err(|e| DumpError::http(url, format!("cannot read the answer: {e}")))?;
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }

    /// `POST path` with query parameters and an empty body.
    pub(crate) fn post_empty(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<Answer, DumpError> {
        let url = self.url(path);
        let mut request = self.agent.post(&url);
        for (k, v) in params {
            request = request.query(*k, *v);
        }
        let response = request.send_empty().map_err(|e| self.failure(&url, e))?;
        self.answer(&url, response)
    }

    /// `POST path` with a body.
    pub(crate) fn post(
        &self,
        path: &str,
        params: &[(&str, &str)],
        body: &[u8],
        content_type: &str,
    ) -> Result<Answer, DumpError> {
        let url = self.url(path);
        let mut request = self.agent.post(&url).header("Content-Type", content_type);
        for (k, v) in params {
            request = request.query(*k, *v);
        }
        let response = request.send(body).map_err(|e| self.failure(&url, e))?;
        self.answer(&url, response)
    }

    pub(crate) fn delete(&self, path: &str) -> Result<Answer, DumpError> {
        let url = self.url(path);
        let response = self
            .agent
            .delete(&url)
            .call()
            .map_err(|e| self.failure(&url, e))?;
        self.answer(&url, response)
    }

    /// `GET path` as a stream of bytes; fails unless the status is 200.
    pub(crate) fn get_stream(
        &self,
        path: &str,
    ) -> Result<(Box<dyn Read + Send>, Option<u64>), DumpError> {
        let url = self.url(path);
        let response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| self.failure(&url, e))?;
        let status = response.status().as_u16();
        if status != 200 {
            let answer = self.answer(&url, response)?;
            return Err(DumpError::http(
                &url,
                format!("status {status}: {}", answer.body.trim()),
            ));
        }
        let length = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let (_, body) = response.into_parts();
        Ok((Box::new(body.into_reader()), length))
    }
}

/// A path segment percent-encoded for a URL (database directory names may hold `%`).
pub(crate) fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
