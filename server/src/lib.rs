//! tallyd: configuration, the HTTP API and the server's lifecycle.
//!
//! Start reading at [`run`]: it opens the engine, serves the API and, on SIGTERM or SIGINT,
//! stops accepting connections, lets in-flight requests finish, flushes every database and
//! returns. Invariants: handlers never block the async runtime (engine calls run on the
//! blocking pool); every request passes `http::gate`, where auth and audit hook in; errors
//! become HTTP statuses in one place (`error.rs`).
#![forbid(unsafe_code)]

pub mod alerts;
pub mod config;
mod error;
mod http;
mod metrics;
pub mod notify;
pub mod reports;
mod samplers;
mod time_text;
pub mod units;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tally_engine::Engine;
use tracing_subscriber::EnvFilter;

pub use config::{Cli, Config};

/// Sets up logging as configured (to stderr).
pub fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(match config.log_level.as_str() {
        level @ ("error" | "warn" | "info" | "debug" | "trace") => {
            format!("{level},hyper=warn,h2=warn")
        }
        custom => custom.to_string(),
    })
    .with_context(|| format!("invalid log level {:?}", config.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = if config.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// Runs tallyd until SIGTERM or SIGINT.
pub fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tally-http")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let addr = config.listen_addr()?;
    let engine_options = config.engine_options()?;
    let data_dir = config.data_dir.clone();
    tracing::info!(data_dir = %data_dir.display(), "opening the data directory");
    let engine = tokio::task::spawn_blocking(move || Engine::open(&data_dir, engine_options))
        .await
        .context("engine open task failed")?
        .with_context(|| {
            format!(
                "cannot open the data directory {}",
                config.data_dir.display()
            )
        })?;
    let engine = Arc::new(engine);
    let dashboards = Arc::new(http::dashboard::open_store(&config)?);
    let alerts = alerts::Alerts::start_for_server(&config, engine.clone())?;
    let reports = Arc::new(
        reports::Reports::open(
            engine.clone(),
            &config.reports,
            config.smtp.clone(),
            &config.data_dir,
        )
        .context("cannot load the reports")?,
    );
    reports
        .start()
        .context("cannot start the report schedules")?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr}: is another server using it? pass --listen")
    })?;
    let state = Arc::new(http::AppState {
        engine: engine.clone(),
        metrics: Arc::new(metrics::Metrics::default()),
        write_slots: Arc::new(tokio::sync::Semaphore::new(
            config.http.max_concurrent_writes as usize,
        )),
        snapshots: http::snapshot::Snapshots::start(&config.data_dir, config.snapshots.ttl.0)?,
        config: Arc::new(config),
        started,
        dashboards,
        alerts: alerts.clone(),
        reports: reports.clone(),
    });
    let _ = state.metrics.alerts.set(alerts.metrics_arc());
    let samplers = Arc::new(samplers::Samplers::start(
        &state.config.samplers,
        &engine,
        &state.metrics,
        &state.config.data_dir,
    ));
    let app = http::router(state).layer(axum::middleware::from_fn_with_state(
        samplers.clone(),
        samplers::status_layer,
    ));
    tracing::info!(
        listen = %addr,
        version = env!("CARGO_PKG_VERSION"),
        databases = engine.database_names().len(),
        startup_ms = started.elapsed().as_millis() as u64,
        "tallyd is ready"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server failed")?;
    tracing::info!("stopped accepting requests; flushing every database");
    tokio::task::spawn_blocking(move || samplers.stop())
        .await
        .context("sampler stop task failed")?;
    tokio::task::spawn_blocking(move || alerts.stop())
        .await
        .context("alerts stop task failed")?;
    tokio::task::spawn_blocking(move || reports.stop())
        .await
        .context("reports stop task failed")?;
    let flushed = tokio::task::spawn_blocking(move || engine.close())
        .await
        .context("flush task failed")?;
    flushed.context("flushing at shutdown failed; the WAL still holds every acknowledged write")?;
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
