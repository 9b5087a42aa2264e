//! API errors and the one place where they become HTTP statuses and bodies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tally_engine::EngineError;

/// Which API answered: InfluxDB 1.x clients read `{"error": ...}`, 2.x clients read
/// `{"code": ..., "message": ...}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    V1,
    V2,
}

/// One rejected line of a write.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub(crate) struct RejectedLine {
    pub line: u32,
    pub column: u32,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("database is required: pass ?db=NAME (v1) or ?bucket=NAME (v2)")]
    DatabaseRequired,
    #[error("database not found: {0:?}")]
    DatabaseNotFound(String),
    #[error("request body is larger than the limit of {limit} bytes (http.max_body_size)")]
    BodyTooLarge { limit: u64 },
    #[error("{message}")]
    PartialWrite {
        message: String,
        written: usize,
        rejected: Vec<RejectedLine>,
        omitted: usize,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_)
            | ApiError::DatabaseRequired
            | ApiError::PartialWrite { .. } => StatusCode::BAD_REQUEST,
            ApiError::DatabaseNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Engine(e) if e.is_disk_full() => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Engine(EngineError::MemoryPressure { .. } | EngineError::Closed { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Engine(EngineError::DatabaseNotFound { .. }) => StatusCode::NOT_FOUND,
            ApiError::Engine(EngineError::InvalidDatabaseName { .. }) => StatusCode::BAD_REQUEST,
            ApiError::Engine(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The v2 API's error code for this error.
    fn v2_code(&self) -> &'static str {
        match self.status() {
            StatusCode::BAD_REQUEST => "invalid",
            StatusCode::NOT_FOUND => "not found",
            StatusCode::PAYLOAD_TOO_LARGE => "request too large",
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::INSUFFICIENT_STORAGE => "unavailable",
            _ => "internal error",
        }
    }

    pub(crate) fn into_response_for(self, flavor: Flavor) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Engine(e) if e.is_disk_full() => format!(
                "the disk holding the data directory is full; writes are refused until space is freed ({e})"
            ),
            other => other.to_string(),
        };
        let mut body = match flavor {
            Flavor::V1 => serde_json::json!({ "error": message }),
            Flavor::V2 => serde_json::json!({ "code": self.v2_code(), "message": message }),
        };
        if let ApiError::PartialWrite {
            written,
            rejected,
            omitted,
            ..
        } = &self
            && let Some(map) = body.as_object_mut()
        {
            map.insert("written".into(), (*written).into());
            map.insert(
                "rejected".into(),
                serde_json::to_value(rejected).unwrap_or_default(),
            );
            if *omitted > 0 {
                map.insert("rejected_omitted".into(), (*omitted).into());
            }
        }
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %message, "request failed");
        }
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_for(Flavor::V1)
    }
}
