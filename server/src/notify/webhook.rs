//! JSON over HTTP(S): Alertmanager, Slack-compatible incoming webhooks and generic webhooks
//! all receive a `POST` with a JSON body. HTTPS goes through rustls (ring) with Mozilla's roots.

use std::io::Read;
use std::time::Duration;

use super::{NotifyError, backoff};

/// How much of an error response's body is kept in [`NotifyError::Http`].
const BODY_START_BYTES: usize = 512;

/// Posts `body` as JSON to `url` with extra `headers`; any 2xx status is success. The whole
/// exchange (connect, send, receive) is bounded by `timeout`.
pub fn post_json(
    url: &str,
    body: &serde_json::Value,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<(), NotifyError> {
    let transport = |reason: String| NotifyError::Transport {
        url: url.to_string(),
        reason,
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(NotifyError::Invalid {
            reason: format!("webhook URL {url:?} must start with http:// or https://"),
        });
    }
    let bytes =
        serde_json::to_vec(body).map_err(|e| transport(format!("cannot encode JSON: {e}")))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("tally/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut request = agent.post(url).header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let mut response = request
        .send(&bytes[..])
        .map_err(|e| transport(e.to_string()))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let mut start = Vec::with_capacity(BODY_START_BYTES);
    let _ = response
        .body_mut()
        .as_reader()
        .take(BODY_START_BYTES as u64)
        .read_to_end(&mut start);
    Err(NotifyError::Http {
        url: url.to_string(),
        status,
        body_start: String::from_utf8_lossy(&start).into_owned(),
    })
}

/// Calls `f` until it succeeds, it fails with an error that is not retryable
/// ([`NotifyError::is_retryable`]), or `attempts` calls were made; waits `first_backoff`
/// before the second call and twice as long before each next one (at most five minutes).
/// Returns the last error.
pub fn with_retries<T>(
    attempts: u32,
    first_backoff: Duration,
    mut f: impl FnMut() -> Result<T, NotifyError>,
) -> Result<T, NotifyError> {
    let attempts = attempts.max(1);
    let mut attempt = 1;
    loop {
        match f() {
            Ok(value) => return Ok(value),
            Err(e) if attempt >= attempts || !e.is_retryable() => return Err(e),
            Err(e) => {
                tracing::debug!(attempt, error = %e, "notification failed; retrying");
                std::thread::sleep(backoff(first_backoff, attempt));
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    /// Serves one HTTP request per entry of `answers` (status, body) and sends each request's
    /// head and body back through the channel.
    fn server(answers: Vec<(u16, &'static str)>) -> (String, mpsc::Receiver<(String, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let mut request_body = vec![0; length];
                reader.read_exact(&mut request_body).unwrap();
                let _ = tx.send((head, String::from_utf8(request_body).unwrap()));
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        (url, rx)
    }

    #[test]
    fn post_json_sends_the_body_and_headers_and_accepts_2xx() {
        let (url, rx) = server(vec![(202, "")]);
        let body = serde_json::json!({"text": "disk full"});
        post_json(
            &url,
            &body,
            &[("X-Token".into(), "s3cret".into())],
            Duration::from_secs(5),
        )
        .unwrap();
        let (head, received) = rx.recv().unwrap();
        assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("x-token: s3cret"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&received).unwrap(),
            body
        );
    }

    #[test]
    fn an_error_status_reports_the_status_and_the_start_of_the_body() {
        let (url, _rx) = server(vec![(400, "no such channel")]);
        let err = post_json(&url, &serde_json::json!({}), &[], Duration::from_secs(5)).unwrap_err();
        match &err {
            NotifyError::Http {
                status, body_start, ..
            } => {
                assert_eq!(*status, 400);
                assert_eq!(body_start, "no such channel");
            }
            other => panic!("expected an HTTP error, got {other:?}"),
        }
        assert!(err.to_string().contains("400"), "{err}");
    }

    #[test]
    fn retries_stop_at_the_first_success_after_transient_failures() {
        let (url, rx) = server(vec![(503, "busy"), (502, "busy"), (200, "ok")]);
        let mut calls = 0;
        with_retries(5, Duration::from_millis(1), || {
            calls += 1;
            post_json(
                &url,
                &serde_json::json!({"n": 1}),
                &[],
                Duration::from_secs(5),
            )
        })
        .unwrap();
        assert_eq!(calls, 3);
        assert_eq!(rx.iter().take(3).count(), 3);
    }

    #[test]
    fn retries_give_up_at_once_on_a_permanent_failure() {
        let (url, _rx) = server(vec![(404, "gone")]);
        let mut calls = 0;
        let err = with_retries(5, Duration::from_millis(1), || {
            calls += 1;
            post_json(&url, &serde_json::json!({}), &[], Duration::from_secs(5))
        })
        .unwrap_err();
        assert_eq!(calls, 1);
        assert!(matches!(err, NotifyError::Http { status: 404, .. }));
    }

    #[test]
    fn an_unreachable_receiver_is_a_transport_error_naming_the_url() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/x");
        let err = post_json(&url, &serde_json::json!({}), &[], Duration::from_secs(2)).unwrap_err();
        assert!(matches!(err, NotifyError::Transport { .. }), "{err:?}");
        assert!(err.to_string().contains(&url), "{err}");
        assert!(err.is_retryable());
    }
}
