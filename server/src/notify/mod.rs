//! Delivery of notifications, shared by alerts and reports: email over SMTP ([`smtp`]) and
//! JSON over HTTP ([`webhook`]), with one error type that says where delivery failed and what
//! the peer answered.
//!
//! Both clients are blocking (std::net and ureq): callers run them on their own threads or on
//! the blocking pool, never on the async runtime's threads. TLS goes through rustls with the
//! ring provider; the trusted roots are Mozilla's (webpki-roots) plus, for SMTP, an optional
//! private CA file.

pub mod smtp;
pub mod webhook;

mod mime;

use std::time::Duration;

pub use webhook::with_retries;

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The settings or the message cannot work, whatever the peer does.
    #[error("invalid notification: {reason}")]
    Invalid { reason: String },
    /// No connection could be made.
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    /// The connection broke or timed out during a step of the exchange.
    #[error("{host}:{port}: connection failed while {during}: {source}")]
    Io {
        host: String,
        port: u16,
        during: String,
        source: std::io::Error,
    },
    /// The SMTP server refused a command.
    #[error("{host}:{port}: the SMTP server answered {code} {text:?} to {command}")]
    Smtp {
        host: String,
        port: u16,
        command: String,
        code: u16,
        text: String,
    },
    /// The peer broke the protocol (a malformed reply, a missing extension).
    #[error("{host}:{port}: {reason}")]
    Protocol {
        host: String,
        port: u16,
        reason: String,
    },
    /// The TLS handshake or the certificate check failed.
    #[error("{host}:{port}: TLS failed: {reason}")]
    Tls {
        host: String,
        port: u16,
        reason: String,
    },
    /// An HTTP receiver answered with a status other than 2xx.
    #[error("{url}: HTTP {status}: {body_start:?}")]
    Http {
        url: String,
        status: u16,
        /// The first bytes of the response body (at most 512), which usually say why.
        body_start: String,
    },
    /// An HTTP request could not be made or its answer read.
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
}

impl NotifyError {
    /// Whether trying again later may succeed: network failures, timeouts, HTTP 5xx and 429,
    /// SMTP 4xx. A bad address, HTTP 4xx and SMTP 5xx will fail the same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            NotifyError::Invalid { .. } | NotifyError::Tls { .. } => false,
            NotifyError::Connect { .. }
            | NotifyError::Io { .. }
            | NotifyError::Protocol { .. }
            | NotifyError::Transport { .. } => true,
            NotifyError::Smtp { code, .. } => (400..500).contains(code),
            NotifyError::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
        }
    }
}

/// The wait before retry `attempt` (1-based) when the first wait is `first`: it doubles each
/// time, up to five minutes.
pub(crate) fn backoff(first: Duration, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    first
        .checked_mul(factor)
        .unwrap_or(Duration::MAX)
        .min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_wait_and_is_capped() {
        let first = Duration::from_millis(100);
        assert_eq!(backoff(first, 1), Duration::from_millis(100));
        assert_eq!(backoff(first, 2), Duration::from_millis(200));
        assert_eq!(backoff(first, 4), Duration::from_millis(800));
        assert_eq!(backoff(first, 40), Duration::from_secs(300));
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        let http = |status| NotifyError::Http {
            url: "http://x".into(),
            status,
            body_start: String::new(),
        };
        assert!(http(503).is_retryable());
        assert!(http(429).is_retryable());
        assert!(!http(400).is_retryable());
        let smtp = |code| NotifyError::Smtp {
            host: "h".into(),
            port: 25,
            command: "RCPT TO".into(),
            code,
            text: String::new(),
        };
        assert!(smtp(451).is_retryable());
        assert!(!smtp(550).is_retryable());
        assert!(!NotifyError::Invalid { reason: "x".into() }.is_retryable());
    }
}
