//! What alerting keeps on disk, under `<data-dir>/alerts/`: `state.json` (every alert's state
//! and the notification groups), `rules.json` (rules created through the API) and
//! `silences.json`. Each file is replaced atomically: written to a temporary file, fsynced,
//! renamed over the old one, and the directory fsynced, so a crash leaves the old or the new
//! file, never a torn one.
//!
//! State is recovered from `state.json`, not from the `_alerts` database: the database is a
//! history for people and charts, while the file holds exactly what the state machine needs
//! (pending start times, notification bookkeeping) in one read.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::state::{AlertState, RuleState};

/// Version of the files' layout; a newer one is refused.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Notification state of one group of alerts for one receiver.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct GroupState {
    /// When the group was last notified.
    pub last_sent: Option<i64>,
    /// What the receiver was last told, by alert fingerprint.
    pub notified: BTreeMap<String, AlertState>,
}

/// `state.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PersistedState {
    #[serde(default)]
    pub version: u32,
    /// By rule name.
    #[serde(default)]
    pub rules: BTreeMap<String, RuleState>,
    /// By group key (`receiver` and the group's label values).
    #[serde(default)]
    pub groups: BTreeMap<String, GroupState>,
}

/// A file with its version, so that a future layout can be told apart.
#[derive(Serialize, Deserialize)]
struct Versioned<T> {
    version: u32,
    items: T,
}

pub(crate) fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

pub(crate) fn rules_path(dir: &Path) -> PathBuf {
    dir.join("rules.json")
}

pub(crate) fn silences_path(dir: &Path) -> PathBuf {
    dir.join("silences.json")
}

/// Replaces `path` with `bytes` atomically (temporary file, fsync, rename, fsync directory).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp"));
    {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Reads a JSON file written by [`save`], or the default when it does not exist. A file that
/// cannot be read or parsed is an error naming it and saying why.
pub(crate) fn load<T: DeserializeOwned + Default>(path: &Path) -> Result<T, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let versioned: Versioned<T> = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is not a valid alerting file (line {}, column {}): {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    if versioned.version > FORMAT_VERSION {
        return Err(format!(
            "{} was written by a newer tallyd (format {}; this one reads up to {FORMAT_VERSION})",
            path.display(),
            versioned.version
        ));
    }
    Ok(versioned.items)
}

/// Writes `items` as JSON with the format version, atomically.
pub(crate) fn save<T: Serialize>(path: &Path, items: &T) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(&Versioned {
        version: FORMAT_VERSION,
        items,
    })
    .map_err(|e| format!("cannot encode {}: {e}", path.display()))?;
    write_atomic(path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Moves a file that cannot be read aside (`NAME.corrupt`), so that tallyd starts with a
/// fresh state and the bad file is kept for a person to look at.
pub(crate) fn quarantine(path: &Path) -> Option<PathBuf> {
    let aside = path.with_extension("json.corrupt");
    std::fs::rename(path, &aside).ok().map(|()| aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        let empty: PersistedState = load(&path).unwrap();
        assert_eq!(empty, PersistedState::default());
        let mut state = PersistedState::default();
        state.groups.insert(
            "ops/alertname=a".into(),
            GroupState {
                last_sent: Some(5),
                notified: BTreeMap::from([("fp".to_string(), AlertState::Firing)]),
            },
        );
        save(&path, &state).unwrap();
        let back: PersistedState = load(&path).unwrap();
        assert_eq!(back, state);
        assert!(!dir.path().join(".state.json.tmp").exists());
    }

    #[test]
    fn a_torn_or_newer_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path());
        std::fs::write(&path, b"{\"version\": 1, \"items\": {\"rules\": {").unwrap();
        let err = load::<PersistedState>(&path).unwrap_err();
        assert!(
            err.contains("state.json") && err.contains("line 1"),
            "{err}"
        );
        std::fs::write(&path, b"{\"version\": 9, \"items\": {}}").unwrap();
        let err = load::<PersistedState>(&path).unwrap_err();
        assert!(err.contains("newer"), "{err}");
        let aside = quarantine(&path).unwrap();
        assert!(aside.exists() && !path.exists());
    }
}
