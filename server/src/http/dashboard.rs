//! The web dashboard: the page at `/` with its assets (embedded in the binary, so it works
//! with no internet access), custom dashboards under `/api/v1/dashboards`, and query
//! completion for the explorer at `/api/v1/complete`.
//!
//! The page itself (`server/assets/`) does all drawing: it asks `/query` for at most about
//! one point per chart pixel, choosing each query's `GROUP BY time()` interval from the time
//! range and the chart's width, so a 30-day view costs about what a 1-hour view costs.
//! Custom dashboards are JSON files in `<data-dir>/dashboards/` ([`store`]); every one is
//! checked field by field, and its queries parsed, before it is stored ([`model`]).
//! Reference: `docs/dashboard.md`.

mod api;
mod assets;
mod complete;
mod model;
mod store;

use anyhow::Context;
use axum::Router;
use axum::routing::get;

use super::SharedState;
use crate::config::Config;

pub(crate) use store::DashboardStore;

/// The dashboard's routes, merged into the API router.
pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .route("/api/v1/complete", get(complete::complete))
        .route("/api/v1/dashboards", get(api::list).post(api::create))
        .route("/api/v1/dashboards/export", get(api::export_all))
        .route(
            "/api/v1/dashboards/import",
            axum::routing::post(api::import),
        )
        .route(
            "/api/v1/dashboards/{id}",
            get(api::get_one).put(api::put).delete(api::delete),
        )
        .route("/api/v1/dashboards/{id}/export", get(api::export_one))
}

/// Opens the custom dashboards kept in `<data-dir>/dashboards/`, with the configured limits.
pub(crate) fn open_store(config: &Config) -> anyhow::Result<DashboardStore> {
    let dir = config.data_dir.join("dashboards");
    let limits = store::DashboardLimits {
        max_count: config.dashboards.max_count,
        max_bytes: config.dashboards.max_size.0,
    };
    DashboardStore::open(&dir, limits)
        .with_context(|| format!("cannot open the dashboards directory {}", dir.display()))
}
