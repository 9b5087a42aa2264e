//! The HTTP API. Every request passes [`gate`], the one place where authentication,
//! authorisation and audit hook in, and where request metrics are taken.

mod admin;
pub(crate) mod dashboard;
mod query;
mod reports;
mod rules;
pub(crate) mod snapshot;
mod status;
mod write;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tally_engine::Engine;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::metrics::Metrics;

/// What every handler can reach.
pub(crate) struct AppState {
    pub engine: Arc<Engine>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub write_slots: Arc<Semaphore>,
    pub started: Instant,
    pub dashboards: Arc<dashboard::DashboardStore>,
    pub snapshots: Arc<snapshot::Snapshots>,
    pub alerts: Arc<crate::alerts::Alerts>,
    pub reports: Arc<crate::reports::Reports>,
}

pub(crate) type SharedState = Arc<AppState>;

/// All routes. A feature with endpoints of its own keeps them in its own module, exposing
/// `fn routes() -> Router<SharedState>`, and is merged here in one line.
pub(crate) fn router(state: SharedState) -> Router {
    Router::new()
        .route("/write", post(write::write_v1))
        .route("/api/v2/write", post(write::write_v2))
        .route("/query", get(query::query).post(query::query))
        .route("/ping", get(status::ping).head(status::ping))
        .route("/health", get(status::health))
        .route("/metrics", get(status::metrics))
        .merge(admin::routes())
        .merge(dashboard::routes())
        .merge(snapshot::routes())
        .merge(rules::routes())
        .merge(reports::routes())
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

/// Who made a request. Tally has no authentication yet, so every request is anonymous; this
/// is where a token check will produce a real principal.
#[derive(Clone, Debug)]
pub(crate) enum Principal {
    Anonymous,
}

/// Runs around every request: identifies the caller (the auth hook), times the request, and
/// records it for metrics and the audit log.
async fn gate(State(state): State<SharedState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route: String = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let principal = Principal::Anonymous;
    request.extensions_mut().insert(principal.clone());
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state
        .metrics
        .observe_request(&route, status, started.elapsed());
    tracing::debug!(
        target: "tally::audit",
        ?principal,
        %method,
        route = route.as_str(),
        status,
        elapsed_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// Server time in nanoseconds since the epoch.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
