//! Snapshots for online backups: `POST /api/v1/snapshots` pins a consistent set of a running
//! server's files, `GET /api/v1/snapshots/{id}/files/{*path}` streams them, `DELETE
//! /api/v1/snapshots/{id}` releases them. Reference: `docs/http-api.md`, "Snapshots", and
//! `docs/backup.md`.
//!
//! A snapshot is `Engine::snapshot` into `<data-dir>/snapshots/<id>/`: hard links to the
//! immutable segment and index files, the WAL files closed at the snapshot instant, and a copy
//! of each manifest, laid out as a data directory. Writes are held only while each database's
//! WAL rotates, so taking one costs milliseconds whatever the size of the data; the links keep
//! the files alive even when compaction or retention deletes them from the live directory.
//!
//! Invariants: a snapshot not deleted expires `snapshots.ttl` after its last request (so an
//! abandoned backup does not pin disk space forever, while a slow one keeps its snapshot), and
//! every snapshot left by an earlier run is removed at start. Only names this module created
//! are ever served or removed: ids and paths from requests are checked before they touch the
//! file system.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tally_engine::offline::{self, FileKind};

use super::{SharedState, now_ns};
use crate::error::ApiError;

/// Folder of the data directory that holds snapshots (same file system, so hard links work).
const SNAPSHOTS_DIR: &str = "snapshots";
/// Bytes per chunk of a streamed file.
const STREAM_CHUNK_BYTES: usize = 1 << 20;
/// How often expired snapshots are looked for.
const REAP_INTERVAL: Duration = Duration::from_secs(10);

/// The snapshot routes, merged into the API router.
pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/snapshots", get(list).post(create))
        .route("/api/v1/snapshots/{id}", get(describe).delete(remove))
        .route("/api/v1/snapshots/{id}/files/{*path}", get(file))
}

/// One file of a snapshot.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub(crate) struct SnapshotFile {
    /// Relative to the snapshot's root, with `/` separators: `dbs/<dir>/<name>`.
    path: String,
    /// The database the file belongs to.
    database: String,
    /// `manifest`, `segment`, `index` or `wal`.
    kind: &'static str,
    size: u64,
    /// CRC-32C (Castagnoli) of the whole file, as 8 lower-case hex digits.
    crc32c: String,
    /// The format version in the file's header.
    format_version: u32,
}

/// What a snapshot holds.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub(crate) struct SnapshotDescription {
    id: String,
    /// The snapshot instant in nanoseconds since the epoch: every write acknowledged before it
    /// is in the snapshot.
    created_ns: i64,
    /// When the snapshot is removed unless it is used again.
    expires_ns: i64,
    tally_version: &'static str,
    databases: Vec<SnapshotDatabase>,
    files: Vec<SnapshotFile>,
    total_bytes: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
struct SnapshotDatabase {
    name: String,
    /// Relative to the snapshot's root: `dbs/<escaped name>`.
    directory: String,
}

struct Entry {
    description: SnapshotDescription,
    last_used: Instant,
}

/// What identifies an immutable file's content for the checksum cache: the inode and its
/// size and modification time. A hard link in a snapshot shares the inode of the live file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FileIdentity {
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i64,
}

/// The snapshots of this server.
pub(crate) struct Snapshots {
    root: PathBuf,
    ttl: Duration,
    live: Mutex<BTreeMap<String, Entry>>,
    /// Checksums of immutable files seen in recent snapshots, so taking a snapshot after
    /// another reads only the files written since (segments and index files never change).
    checksums: Mutex<HashMap<FileIdentity, (u32, u32)>>,
    counter: AtomicU64,
}

impl Snapshots {
    /// Removes every snapshot an earlier run left, and starts the task that removes expired
    /// ones. Call inside the runtime.
    pub(crate) fn start(data_dir: &Path, ttl: Duration) -> anyhow::Result<Arc<Snapshots>> {
        let root = data_dir.join(SNAPSHOTS_DIR);
        if root.exists() {
            std::fs::remove_dir_all(&root).with_context(|| {
                format!(
                    "cannot remove the snapshots of an earlier run in {}",
                    root.display()
                )
            })?;
            tracing::info!(dir = %root.display(), "removed the snapshots of an earlier run");
        }
        let snapshots = Arc::new(Snapshots {
            root,
            ttl,
            live: Mutex::new(BTreeMap::new()),
            checksums: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
        });
        let weak: Weak<Snapshots> = Arc::downgrade(&snapshots);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REAP_INTERVAL);
            loop {
                tick.tick().await;
                let Some(snapshots) = weak.upgrade() else {
                    return;
                };
                let _ = tokio::task::spawn_blocking(move || snapshots.remove_expired()).await;
            }
        });
        Ok(snapshots)
    }

    fn remove_expired(&self) {
        let expired: Vec<String> = {
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.iter()
                .filter(|(_, e)| e.last_used.elapsed() >= self.ttl)
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in expired {
            tracing::info!(snapshot = %id, ttl_s = self.ttl.as_secs(), "removing an expired snapshot");
            self.remove(&id);
        }
    }

    fn remove(&self, id: &str) -> bool {
        let removed = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .is_some();
        if removed {
            let dir = self.root.join(id);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a snapshot directory");
            }
        }
        removed
    }

    /// The description of a live snapshot, marking it used (which postpones its expiry).
    fn touch(&self, id: &str) -> Option<SnapshotDescription> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let entry = live.get_mut(id)?;
        entry.last_used = Instant::now();
        entry.description.expires_ns = expiry(self.ttl);
        Some(entry.description.clone())
    }

    fn next_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{n}", now_ns())
    }

    /// The CRC-32C and format version of a file, from the cache when its inode, size and
    /// modification time are known.
    fn checksum(&self, path: &Path, kind: FileKind) -> std::io::Result<(u32, u32)> {
        let metadata = std::fs::metadata(path)?;
        let identity = FileIdentity {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.len(),
            modified_ns: metadata
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(metadata.mtime_nsec()),
        };
        if kind.is_immutable()
            && let Some(known) = self
                .checksums
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&identity)
        {
            return Ok(*known);
        }
        let mut file = std::fs::File::open(path)?;
        let mut buffer = vec![0u8; STREAM_CHUNK_BYTES];
        let mut crc = 0u32;
        let mut header = Vec::with_capacity(12);
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            let chunk = &buffer[..n];
            if header.len() < 12 {
                let take = (12 - header.len()).min(n);
                header.extend_from_slice(&chunk[..take]);
            }
            crc = crc32c::crc32c_append(crc, chunk);
        }
        let version = offline::file_format(&header).map_or(0, |(_, v)| v);
        if kind.is_immutable() {
            self.checksums
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(identity, (crc, version));
        }
        Ok((crc, version))
    }

    /// Takes a snapshot of `databases` (all when empty).
    fn create(
        &self,
        engine: &tally_engine::Engine,
        databases: &[String],
    ) -> Result<SnapshotDescription, ApiError> {
        let id = self.next_id();
        let dir = self.root.join(&id);
        let selection = (!databases.is_empty()).then_some(databases);
        let created_ns = now_ns();
        if let Err(e) = engine.snapshot(&dir, selection) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ApiError::from(e));
        }
        match self.describe_directory(&id, &dir, created_ns) {
            Ok(description) => {
                self.live.lock().unwrap_or_else(|p| p.into_inner()).insert(
                    id.clone(),
                    Entry {
                        description: description.clone(),
                        last_used: Instant::now(),
                    },
                );
                tracing::info!(
                    snapshot = %id,
                    files = description.files.len(),
                    bytes = description.total_bytes,
                    "snapshot taken"
                );
                Ok(description)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn describe_directory(
        &self,
        id: &str,
        dir: &Path,
        created_ns: i64,
    ) -> Result<SnapshotDescription, ApiError> {
        let internal = |e: tally_engine::EngineError| ApiError::Engine(e);
        let mut databases = Vec::new();
        let mut files = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for listing in offline::list_databases(dir).map_err(internal)? {
            let directory = format!("{}/{}", offline::DATABASES_DIR, listing.dir_name);
            databases.push(SnapshotDatabase {
                name: listing.name.clone(),
                directory: directory.clone(),
            });
            for live in &listing.files {
                let path = listing.dir.join(&live.relative);
                let (crc, format_version) = self.checksum(&path, live.kind).map_err(|e| {
                    ApiError::Internal(format!("cannot read {}: {e}", path.display()))
                })?;
                seen.insert(path.clone());
                files.push(SnapshotFile {
                    path: format!("{directory}/{}", live.relative),
                    database: listing.name.clone(),
                    kind: live.kind.name(),
                    size: live.size,
                    crc32c: format!("{crc:08x}"),
                    format_version,
                });
            }
        }
        // Keep the cache to the files of live snapshots and this one.
        {
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            let mut keep: std::collections::HashSet<(u64, u32)> = files
                .iter()
                .filter_map(|f| u32::from_str_radix(&f.crc32c, 16).ok().map(|c| (f.size, c)))
                .collect();
            for entry in live.values() {
                keep.extend(
                    entry.description.files.iter().filter_map(|f| {
                        u32::from_str_radix(&f.crc32c, 16).ok().map(|c| (f.size, c))
                    }),
                );
            }
            self.checksums
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|identity, (crc, _)| keep.contains(&(identity.size, *crc)));
        }
        let total_bytes = files.iter().map(|f| f.size).sum();
        Ok(SnapshotDescription {
            id: id.to_string(),
            created_ns,
            expires_ns: expiry(self.ttl),
            tally_version: env!("CARGO_PKG_VERSION"),
            databases,
            files,
            total_bytes,
        })
    }
}

fn expiry(ttl: Duration) -> i64 {
    now_ns().saturating_add(i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX))
}

/// A snapshot id as this module makes them: hex digits, a dash, decimal digits.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// A file path inside a snapshot: relative, plain components only.
fn valid_relative_path(path: &str) -> Option<PathBuf> {
    let candidate = Path::new(path);
    if path.is_empty() || path.len() > 1024 {
        return None;
    }
    let mut out = PathBuf::new();
    for component in candidate.components() {
        match component {
            Component::Normal(part) => out.push(part),
            _ => return None,
        }
    }
    Some(out)
}

fn not_found(what: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": what })),
    )
        .into_response()
}

async fn list(State(state): State<SharedState>) -> Response {
    let live = state
        .snapshots
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .map(|e| {
            serde_json::json!({
                "id": e.description.id,
                "created_ns": e.description.created_ns,
                "expires_ns": e.description.expires_ns,
                "databases": e.description.databases,
                "files": e.description.files.len(),
                "total_bytes": e.description.total_bytes,
            })
        })
        .collect::<Vec<_>>();
    Json(serde_json::json!({ "snapshots": live })).into_response()
}

async fn create(
    State(state): State<SharedState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let mut databases = Vec::new();
    for (key, value) in params {
        match key.as_str() {
            "db" => databases.push(value),
            other => {
                return ApiError::BadRequest(format!(
                    "unknown parameter {other:?}: POST /api/v1/snapshots takes db=NAME (repeatable)"
                ))
                .into_response();
            }
        }
    }
    let engine = state.engine.clone();
    let snapshots = state.snapshots.clone();
    let result = tokio::task::spawn_blocking(move || snapshots.create(&engine, &databases)).await;
    match result {
        Ok(Ok(description)) => (StatusCode::CREATED, Json(description)).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::Internal(format!("snapshot task failed: {e}")).into_response(),
    }
}

async fn describe(State(state): State<SharedState>, UrlPath(id): UrlPath<String>) -> Response {
    match valid_id(&id).then(|| state.snapshots.touch(&id)).flatten() {
        Some(description) => Json(description).into_response(),
        None => not_found(format!(
            "snapshot {id:?} not found (it expired or was deleted)"
        )),
    }
}

async fn remove(State(state): State<SharedState>, UrlPath(id): UrlPath<String>) -> Response {
    if !valid_id(&id) {
        return not_found(format!("snapshot {id:?} not found"));
    }
    let snapshots = state.snapshots.clone();
    let removed = tokio::task::spawn_blocking(move || snapshots.remove(&id))
        .await
        .unwrap_or(false);
    if removed {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found("snapshot not found (it expired or was deleted)".to_string())
    }
}

/// The body of a streamed file: chunks read on the blocking pool, sent through a channel.
struct FileChunks(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>);

impl futures_core::Stream for FileChunks {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

async fn file(
    State(state): State<SharedState>,
    UrlPath((id, path)): UrlPath<(String, String)>,
) -> Response {
    let Some(description) = valid_id(&id).then(|| state.snapshots.touch(&id)).flatten() else {
        return not_found(format!(
            "snapshot {id:?} not found (it expired or was deleted)"
        ));
    };
    let Some(listed) = description.files.iter().find(|f| f.path == path) else {
        return not_found(format!("snapshot {id} has no file {path:?}"));
    };
    let Some(relative) = valid_relative_path(&path) else {
        return not_found(format!("snapshot {id} has no file {path:?}"));
    };
    let full = state.snapshots.root.join(&id).join(relative);
    let file = match std::fs::File::open(&full) {
        Ok(f) => f,
        Err(e) => {
            return ApiError::Internal(format!("cannot open {}: {e}", full.display()))
                .into_response();
        }
    };
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        loop {
            let mut buffer = vec![0u8; STREAM_CHUNK_BYTES];
            match file.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => {
                    buffer.truncate(n);
                    if sender.blocking_send(Ok(Bytes::from(buffer))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = sender.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let mut response = Body::from_stream(FileChunks(receiver)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(listed.size));
    if let Ok(value) = HeaderValue::from_str(&listed.crc32c) {
        headers.insert("X-Tally-Crc32c", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_paths_from_requests_cannot_leave_the_snapshot() {
        assert!(valid_id("18f2a3b4c5d6e7f8-0"));
        assert!(!valid_id("../etc"));
        assert!(!valid_id(""));
        assert!(valid_relative_path("dbs/telemetry/MANIFEST").is_some());
        assert!(valid_relative_path("dbs/../../LOCK").is_none());
        assert!(valid_relative_path("/etc/passwd").is_none());
        assert!(valid_relative_path("").is_none());
    }

    #[test]
    fn expiry_lies_one_ttl_ahead() {
        let before = now_ns();
        let at = expiry(Duration::from_secs(60));
        assert!(at >= before + 60_000_000_000);
    }
}
