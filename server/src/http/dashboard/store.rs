//! Custom dashboards on disk: one JSON file per dashboard in `<data-dir>/dashboards/`, named
//! `<id>.json`, each replaced atomically (write a temporary file, fsync it, rename it over the
//! old one, fsync the directory), so a crash leaves either the old or the new dashboard,
//! never half of one.
//!
//! The store reads every file when tallyd starts and keeps the dashboards in memory; the
//! files are the truth on restart. A file that cannot be read is left alone, logged, and
//! listed by the API so that an operator can fix or remove it; it never stops tallyd.
//! All changes go through one lock, so the count limit and version checks cannot race.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::model::{Dashboard, DashboardInput, InvalidField, check_dashboard_id, slug};

/// Limits on the dashboards a server keeps (configuration section `[dashboards]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DashboardLimits {
    /// Most dashboards stored.
    pub max_count: u32,
    /// Largest dashboard, in bytes of JSON (also the largest create or update body).
    pub max_bytes: u64,
}

/// Why a dashboard operation failed. Each variant carries what the person needs to fix it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DashboardError {
    #[error("the body is not valid JSON: {reason} at line {line}, column {column}")]
    Syntax {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("invalid dashboard: {0}")]
    Invalid(#[from] InvalidField),
    #[error("no dashboard with id {id:?}")]
    NotFound { id: String },
    #[error(
        "a dashboard with id {id:?} already exists: update it with PUT /api/v1/dashboards/{id}, or create this one under another id"
    )]
    AlreadyExists { id: String },
    #[error(
        "dashboards already exist with the ids {ids:?}: import with ?on_conflict=replace to overwrite them, or ?on_conflict=copy to store the imported ones under new ids"
    )]
    ImportConflict { ids: Vec<String> },
    #[error(
        "dashboard {id:?} was saved by someone else meanwhile: it is at version {current}, this edit started from version {sent}; reload it and make the change again"
    )]
    VersionConflict { id: String, current: u64, sent: u64 },
    #[error("{what} is larger than the limit of {limit} bytes ({setting})")]
    TooLarge {
        what: String,
        limit: u64,
        setting: &'static str,
    },
    #[error(
        "this server already keeps {count} dashboards, the limit (dashboards.max_count is {limit}); delete some first"
    )]
    TooMany { count: usize, limit: u32 },
    #[error("{reason}")]
    BadRequest { reason: String },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DashboardError {
    fn io(action: &'static str, path: &Path, source: std::io::Error) -> DashboardError {
        DashboardError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A file in the dashboards directory that could not be read as a dashboard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct UnreadableFile {
    pub file: String,
    pub error: String,
}

/// What `list` returns about one dashboard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct DashboardSummary {
    pub id: String,
    pub title: String,
    pub description: String,
    pub n_panels: usize,
    pub version: u64,
    pub updated_at: String,
}

/// What to do when an imported dashboard has the id of a stored one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnConflict {
    /// Refuse the whole import, naming the ids.
    Error,
    /// Overwrite the stored dashboard (its version goes up).
    Replace,
    /// Store the imported dashboard under a new id.
    Copy,
}

/// Whether a save created the dashboard or replaced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Saved {
    Created,
    Replaced,
}

struct Contents {
    dashboards: BTreeMap<String, Dashboard>,
    unreadable: Vec<UnreadableFile>,
}

pub(crate) struct DashboardStore {
    dir: PathBuf,
    limits: DashboardLimits,
    contents: Mutex<Contents>,
}

/// Makes temporary file names unique within the process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

const FILE_SUFFIX: &str = ".json";
const TEMP_MARKER: &str = ".tmp-";

impl DashboardStore {
    /// Opens (creating it if needed) the dashboards directory and reads every dashboard.
    pub(crate) fn open(
        dir: &Path,
        limits: DashboardLimits,
    ) -> Result<DashboardStore, DashboardError> {
        fs::create_dir_all(dir).map_err(|e| DashboardError::io("create", dir, e))?;
        let mut dashboards = BTreeMap::new();
        let mut unreadable = Vec::new();
        let entries = fs::read_dir(dir).map_err(|e| DashboardError::io("list", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DashboardError::io("list", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(TEMP_MARKER) {
                // Left by a save that crashed before its rename: the old file is intact.
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some(id) = name.strip_suffix(FILE_SUFFIX) else {
                continue;
            };
            match read_dashboard_file(&entry.path(), id, limits) {
                Ok(dashboard) => {
                    dashboards.insert(id.to_string(), dashboard);
                }
                Err(reason) => {
                    tracing::warn!(
                        file = %entry.path().display(),
                        error = %reason,
                        "skipping a dashboard file that cannot be read; fix or remove it"
                    );
                    unreadable.push(UnreadableFile {
                        file: entry.path().display().to_string(),
                        error: reason,
                    });
                }
            }
        }
        unreadable.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(DashboardStore {
            dir: dir.to_path_buf(),
            limits,
            contents: Mutex::new(Contents {
                dashboards,
                unreadable,
            }),
        })
    }

    pub(crate) fn limits(&self) -> DashboardLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Contents> {
        // A panic while holding the lock cannot leave the map half-changed (each change is
        // one insert or remove after its file operation), so a poisoned lock is still usable.
        self.contents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn list(&self) -> (Vec<DashboardSummary>, Vec<UnreadableFile>) {
        let contents = self.lock();
        let mut summaries: Vec<DashboardSummary> = contents
            .dashboards
            .values()
            .map(|d| DashboardSummary {
                id: d.id.clone(),
                title: d.title.clone(),
                description: d.description.clone(),
                n_panels: d.panels.len(),
                version: d.version,
                updated_at: d.updated_at.clone(),
            })
            .collect();
        summaries.sort_by(|a, b| {
            a.title
                .to_lowercase()
                .cmp(&b.title.to_lowercase())
                .then_with(|| a.id.cmp(&b.id))
        });
        (summaries, contents.unreadable.clone())
    }

    pub(crate) fn get(&self, id: &str) -> Result<Dashboard, DashboardError> {
        self.lock()
            .dashboards
            .get(id)
            .cloned()
            .ok_or_else(|| DashboardError::NotFound { id: id.to_string() })
    }

    pub(crate) fn all(&self) -> Vec<Dashboard> {
        self.lock().dashboards.values().cloned().collect()
    }

    /// Stores a new dashboard under its own id, or one made from its title.
    pub(crate) fn create(
        &self,
        input: DashboardInput,
        now: String,
    ) -> Result<Dashboard, DashboardError> {
        let mut contents = self.lock();
        self.check_room(&contents, 1)?;
        let id = match &input.id {
            Some(id) => {
                if contents.dashboards.contains_key(id) {
                    return Err(DashboardError::AlreadyExists { id: id.clone() });
                }
                id.clone()
            }
            None => unique_id(
                |candidate| contents.dashboards.contains_key(candidate),
                &slug(&input.title),
            ),
        };
        let dashboard = input.into_dashboard(id, 1, now.clone(), now);
        self.write(&dashboard)?;
        contents
            .dashboards
            .insert(dashboard.id.clone(), dashboard.clone());
        Ok(dashboard)
    }

    /// Replaces (or creates) the dashboard `id`. When the input names the version it was
    /// edited from, a newer stored version refuses the save.
    pub(crate) fn put(
        &self,
        id: &str,
        input: DashboardInput,
        now: String,
    ) -> Result<(Dashboard, Saved), DashboardError> {
        check_dashboard_id(id, "id")?;
        if let Some(body_id) = &input.id
            && body_id != id
        {
            return Err(DashboardError::BadRequest {
                reason: format!(
                    "the body's id {body_id:?} differs from the id {id:?} in the URL; leave it out or make them agree"
                ),
            });
        }
        let mut contents = self.lock();
        let (version, created_at, saved) = match contents.dashboards.get(id) {
            Some(current) => {
                if let Some(sent) = input.version
                    && sent != current.version
                {
                    return Err(DashboardError::VersionConflict {
                        id: id.to_string(),
                        current: current.version,
                        sent,
                    });
                }
                (
                    current.version.saturating_add(1),
                    current.created_at.clone(),
                    Saved::Replaced,
                )
            }
            None => {
                self.check_room(&contents, 1)?;
                (1, now.clone(), Saved::Created)
            }
        };
        let dashboard = input.into_dashboard(id.to_string(), version, created_at, now);
        self.write(&dashboard)?;
        contents
            .dashboards
            .insert(dashboard.id.clone(), dashboard.clone());
        Ok((dashboard, saved))
    }

    pub(crate) fn delete(&self, id: &str) -> Result<(), DashboardError> {
        check_dashboard_id(id, "id")?;
        let mut contents = self.lock();
        if !contents.dashboards.contains_key(id) {
            return Err(DashboardError::NotFound { id: id.to_string() });
        }
        let path = self.path_of(id);
        fs::remove_file(&path).map_err(|e| DashboardError::io("delete", &path, e))?;
        sync_dir(&self.dir)?;
        contents.dashboards.remove(id);
        Ok(())
    }

    /// Stores several dashboards at once: all of them, or (on any error) none.
    pub(crate) fn import(
        &self,
        inputs: Vec<DashboardInput>,
        on_conflict: OnConflict,
        now: String,
    ) -> Result<Vec<Dashboard>, DashboardError> {
        let mut contents = self.lock();
        let mut planned: BTreeMap<String, Dashboard> = BTreeMap::new();
        let mut conflicts = Vec::new();
        let mut n_new = 0usize;
        for input in inputs {
            let wanted = input.id.clone().unwrap_or_else(|| slug(&input.title));
            let twice_in_import = planned.contains_key(&wanted);
            if twice_in_import && on_conflict != OnConflict::Copy {
                return Err(DashboardError::BadRequest {
                    reason: format!(
                        "the import holds two dashboards with the id {wanted:?}; give one another id or import with ?on_conflict=copy"
                    ),
                });
            }
            let (id, version, created_at) = match contents.dashboards.get(&wanted) {
                None if !twice_in_import => {
                    n_new += 1;
                    let created_at = input.created_at.clone().unwrap_or_else(|| now.clone());
                    (wanted, 1, created_at)
                }
                Some(current) if on_conflict == OnConflict::Replace => (
                    wanted,
                    current.version.saturating_add(1),
                    current.created_at.clone(),
                ),
                Some(_) if on_conflict == OnConflict::Error => {
                    conflicts.push(wanted);
                    continue;
                }
                _ => {
                    n_new += 1;
                    let is_taken = |candidate: &str| {
                        contents.dashboards.contains_key(candidate)
                            || planned.contains_key(candidate)
                    };
                    (unique_id(is_taken, &wanted), 1, now.clone())
                }
            };
            let dashboard = input.into_dashboard(id.clone(), version, created_at, now.clone());
            planned.insert(id, dashboard);
        }
        if !conflicts.is_empty() {
            return Err(DashboardError::ImportConflict { ids: conflicts });
        }
        self.check_room(&contents, n_new)?;
        for dashboard in planned.values() {
            check_size(dashboard, self.limits)?;
        }
        let mut stored = Vec::with_capacity(planned.len());
        for dashboard in planned.into_values() {
            self.write(&dashboard)?;
            contents
                .dashboards
                .insert(dashboard.id.clone(), dashboard.clone());
            stored.push(dashboard);
        }
        Ok(stored)
    }

    fn check_room(&self, contents: &Contents, n_new: usize) -> Result<(), DashboardError> {
        let count = contents.dashboards.len();
        if count.saturating_add(n_new) > self.limits.max_count as usize {
            return Err(DashboardError::TooMany {
                count,
                limit: self.limits.max_count,
            });
        }
        Ok(())
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{FILE_SUFFIX}"))
    }

    /// Writes a dashboard's file atomically: temporary file, fsync, rename, fsync directory.
    fn write(&self, dashboard: &Dashboard) -> Result<(), DashboardError> {
        let bytes = check_size(dashboard, self.limits)?;
        let path = self.path_of(&dashboard.id);
        let temp = self.dir.join(format!(
            ".{}{FILE_SUFFIX}{TEMP_MARKER}{}-{}",
            dashboard.id,
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file =
                File::create(&temp).map_err(|e| DashboardError::io("create", &temp, e))?;
            file.write_all(&bytes)
                .map_err(|e| DashboardError::io("write", &temp, e))?;
            file.sync_all()
                .map_err(|e| DashboardError::io("fsync", &temp, e))?;
            drop(file);
            fs::rename(&temp, &path).map_err(|e| DashboardError::io("rename into", &path, e))?;
            sync_dir(&self.dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }
}

/// The JSON a dashboard is stored as, checked against the size limit.
fn check_size(dashboard: &Dashboard, limits: DashboardLimits) -> Result<Vec<u8>, DashboardError> {
    let mut bytes =
        serde_json::to_vec_pretty(dashboard).map_err(|e| DashboardError::BadRequest {
            reason: format!("cannot encode the dashboard as JSON: {e}"),
        })?;
    bytes.push(b'\n');
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(DashboardError::TooLarge {
            what: format!("dashboard {:?} ({size} bytes as stored)", dashboard.id),
            limit: limits.max_bytes,
            setting: "dashboards.max_size",
        });
    }
    Ok(bytes)
}

fn sync_dir(dir: &Path) -> Result<(), DashboardError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DashboardError::io("fsync", dir, e))
}

/// `base`, or `base-2`, `base-3`, ... whichever is free.
fn unique_id(is_taken: impl Fn(&str) -> bool, base: &str) -> String {
    if !is_taken(base) {
        return base.to_string();
    }
    (2u64..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| !is_taken(candidate))
        .unwrap_or_else(|| base.to_string())
}

fn read_dashboard_file(
    path: &Path,
    id: &str,
    limits: DashboardLimits,
) -> Result<Dashboard, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > limits.max_bytes {
        return Err(format!(
            "{} bytes is larger than dashboards.max_size ({} bytes)",
            bytes.len(),
            limits.max_bytes
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let input = DashboardInput::from_value(&value, "").map_err(|e| e.to_string())?;
    if input.id.as_deref() != Some(id) {
        return Err(format!(
            "its id {:?} does not match its file name {id:?}{FILE_SUFFIX}",
            input.id
        ));
    }
    let version = input.version.unwrap_or(1);
    let created_at = input.created_at.clone().unwrap_or_default();
    let updated_at = value
        .get("updated_at")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(&created_at)
        .to_string();
    Ok(input.into_dashboard(id.to_string(), version, created_at, updated_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: DashboardLimits = DashboardLimits {
        max_count: 3,
        max_bytes: 64 * 1024,
    };

    fn input(document: serde_json::Value) -> DashboardInput {
        DashboardInput::from_value(&document, "").unwrap()
    }

    fn gpu_dashboard(title: &str) -> DashboardInput {
        input(
            json!({"title": title, "panels": [{"title": "Util", "type": "line", "unit": "percent",
            "queries": ["SELECT mean(util_pct) FROM gpu WHERE $timeFilter GROUP BY time($interval), gpu"]}]}),
        )
    }

    #[test]
    fn dashboards_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = DashboardStore::open(dir.path(), LIMITS).unwrap();
        let created = store
            .create(gpu_dashboard("GPU fleet"), "2026-12-01T00:00:00Z".into())
            .unwrap();
        assert_eq!(created.id, "gpu-fleet");
        assert_eq!(created.version, 1);
        drop(store);
        let reopened = DashboardStore::open(dir.path(), LIMITS).unwrap();
        assert_eq!(reopened.get("gpu-fleet").unwrap(), created);
        let (summaries, unreadable) = reopened.list();
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].n_panels, 1);
        assert!(unreadable.is_empty());
    }

    #[test]
    fn ids_made_from_titles_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let store = DashboardStore::open(dir.path(), LIMITS).unwrap();
        let now = String::from("2026-12-01T00:00:00Z");
        let first = store.create(gpu_dashboard("Fleet"), now.clone()).unwrap();
        let second = store.create(gpu_dashboard("Fleet"), now).unwrap();
        assert_eq!(
            (first.id.as_str(), second.id.as_str()),
            ("fleet", "fleet-2")
        );
    }

    #[test]
    fn a_stale_version_is_refused_and_a_current_one_bumps_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = DashboardStore::open(dir.path(), LIMITS).unwrap();
        let now = String::from("2026-12-01T00:00:00Z");
        store.create(gpu_dashboard("Fleet"), now.clone()).unwrap();
        let mut edit = gpu_dashboard("Fleet renamed");
        edit.version = Some(1);
        let (saved, how) = store.put("fleet", edit.clone(), now.clone()).unwrap();
        assert_eq!((saved.version, how), (2, Saved::Replaced));
        let stale = store.put("fleet", edit, now).unwrap_err();
        assert!(
            matches!(
                stale,
                DashboardError::VersionConflict {
                    current: 2,
                    sent: 1,
                    ..
                }
            ),
            "{stale}"
        );
    }

    #[test]
    fn the_count_limit_refuses_one_more() {
        let dir = tempfile::tempdir().unwrap();
        let store = DashboardStore::open(dir.path(), LIMITS).unwrap();
        let now = String::from("2026-12-01T00:00:00Z");
        for n in 0..3 {
            store
                .create(gpu_dashboard(&format!("d{n}")), now.clone())
                .unwrap();
        }
        let error = store.create(gpu_dashboard("d3"), now).unwrap_err();
        assert!(
            matches!(error, DashboardError::TooMany { count: 3, limit: 3 }),
            "{error}"
        );
    }

    #[test]
    fn unreadable_files_are_listed_and_do_not_stop_the_store() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("broken.json"), b"{\"title\": ").unwrap();
        fs::write(dir.path().join(".x.json.tmp-1-1"), b"partial").unwrap();
        let store = DashboardStore::open(dir.path(), LIMITS).unwrap();
        let (summaries, unreadable) = store.list();
        assert!(summaries.is_empty());
        assert_eq!(unreadable.len(), 1);
        assert!(unreadable[0].file.ends_with("broken.json"));
        assert!(!dir.path().join(".x.json.tmp-1-1").exists());
    }

    #[test]
    fn delete_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = DashboardStore::open(dir.path(), LIMITS).unwrap();
        store
            .create(gpu_dashboard("Fleet"), "2026-12-01T00:00:00Z".into())
            .unwrap();
        assert!(dir.path().join("fleet.json").exists());
        store.delete("fleet").unwrap();
        assert!(!dir.path().join("fleet.json").exists());
        assert!(matches!(
            store.delete("fleet"),
            Err(DashboardError::NotFound { .. })
        ));
    }

    #[test]
    fn import_is_all_or_nothing_and_copies_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = DashboardStore::open(dir.path(), LIMITS).unwrap();
        let now = String::from("2026-12-01T00:00:00Z");
        store.create(gpu_dashboard("Fleet"), now.clone()).unwrap();
        let error = store
            .import(
                vec![gpu_dashboard("New"), gpu_dashboard("Fleet")],
                OnConflict::Error,
                now.clone(),
            )
            .unwrap_err();
        assert!(
            matches!(&error, DashboardError::ImportConflict { ids } if ids == &["fleet"]),
            "{error}"
        );
        assert!(store.get("new").is_err(), "a refused import stored nothing");
        let stored = store
            .import(
                vec![gpu_dashboard("New"), gpu_dashboard("Fleet")],
                OnConflict::Copy,
                now,
            )
            .unwrap();
        let ids: Vec<&str> = stored.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["fleet-2", "new"]);
    }

    #[test]
    fn a_dashboard_over_the_size_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let limits = DashboardLimits {
            max_count: 10,
            max_bytes: 300,
        };
        let store = DashboardStore::open(dir.path(), limits).unwrap();
        let error = store
            .create(gpu_dashboard("Fleet"), "2026-12-01T00:00:00Z".into())
            .unwrap_err();
        assert!(
            matches!(error, DashboardError::TooLarge { limit: 300, .. }),
            "{error}"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no file is left behind"
        );
    }
}
