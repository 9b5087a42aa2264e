//! `tally-dump restore`: rebuilds a data directory from a backup, replaying its incremental
//! chain: every file the backup's instant needs is read from the backup of the chain that
//! stores it (the full backup first, then each incremental one in order) into a staging
//! directory beside the target, checked (size and CRC-32C against the manifest, then the
//! structure of every database, exactly as `verify`), and only then moved into place. A
//! damaged backup is refused with the `verify` report and the target is not touched.
//!
//! A kill at any moment leaves either the old target or the complete new one: the staging
//! directory is a hidden sibling, and the final step is one rename (or, with `--force` into a
//! directory that holds other databases, one rename per database).

use std::path::{Path, PathBuf};

use tally_engine::offline;

use super::error::DumpError;
use super::manifest::{Location, resolve_chain};
use super::util::{Progress, RateLimit, human_bytes, parent_of, sync_dir, temporary_sibling};
use super::verify::{Report, check_files, check_structure};

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub backup: PathBuf,
    pub data_dir: PathBuf,
    pub force: bool,
    pub max_rate: Option<u64>,
}

/// What a restore did.
#[derive(Clone, Debug)]
pub struct RestoreSummary {
    pub backup_id: String,
    pub databases: Vec<String>,
    pub files: usize,
    pub bytes: u64,
    pub chain_length: usize,
}

/// Entries of a directory other than a `LOCK` file (which a stopped tallyd leaves behind).
fn meaningful_entries(dir: &Path) -> Result<Vec<PathBuf>, DumpError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| DumpError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| DumpError::io(dir, e))?;
        if entry.file_name() != "LOCK" {
            out.push(entry.path());
        }
    }
    Ok(out)
}

fn sync_tree(root: &Path) -> Result<(), DumpError> {
    let entries = std::fs::read_dir(root).map_err(|e| DumpError::io(root, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| DumpError::io(root, e))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            sync_tree(&entry.path())?;
        }
    }
    sync_dir(root)
}

/// Runs `restore`. On a damaged backup returns [`DumpError::Problems`] carrying the report.
pub fn restore(options: &RestoreOptions, progress: &Progress) -> Result<RestoreSummary, DumpError> {
    let chain = resolve_chain(&options.backup)?;
    let target = &options.data_dir;
    let existing = target.exists();
    let mut replace_databases = false;
    let _lock = if existing {
        if !target.is_dir() {
            return Err(DumpError::Failed(format!(
                "{} exists and is not a directory",
                target.display()
            )));
        }
        let lock = offline::lock_data_dir(target).map_err(|e| match e {
            tally_engine::EngineError::Locked { holder, .. } => DumpError::Failed(format!(
                "{} is in use by a running tallyd ({holder}): stop it before restoring into it",
                target.display()
            )),
            other => DumpError::Engine(other),
        })?;
        let entries = meaningful_entries(target)?;
        if !entries.is_empty() {
            if !options.force {
                return Err(DumpError::Failed(format!(
                    "{} is not empty ({} entries): restore into an empty or new directory, or pass --force to replace the databases the backup holds (other databases stay)",
                    target.display(),
                    entries.len()
                )));
            }
            replace_databases = true;
        }
        Some(lock)
    } else {
        None
    };
    let staging = temporary_sibling(target, "restore");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| DumpError::io(&staging, e))?;
    }
    let mut report = Report {
        subject: format!(
            "backup {} ({}, {} backup(s) in its chain)",
            options.backup.display(),
            chain.target().manifest.id,
            chain.members.len()
        ),
        ..Report::default()
    };
    let mut limit = RateLimit::new(options.max_rate);
    let staged = (|| {
        let available = check_files(&chain, Some(&staging), &mut report, &mut limit, progress)?;
        check_structure(&chain, &available, &mut report, progress);
        Ok::<_, DumpError>(())
    })();
    if let Err(e) = staged {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if !report.is_clean() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(DumpError::Problems(format!(
            "{}restore refused: the backup is damaged; {} is unchanged",
            report.render(),
            target.display()
        )));
    }
    let manifest = &chain.target().manifest;
    // Databases of the backup that hold no file still need their directory.
    std::fs::create_dir_all(staging.join(offline::DATABASES_DIR))
        .map_err(|e| DumpError::io(&staging, e))?;
    for database in &manifest.databases {
        let dir = staging.join(&database.directory);
        std::fs::create_dir_all(dir.join(offline::WAL_DIR)).map_err(|e| DumpError::io(&dir, e))?;
    }
    sync_tree(&staging)?;
    if replace_databases {
        let live_root = target.join(offline::DATABASES_DIR);
        std::fs::create_dir_all(&live_root).map_err(|e| DumpError::io(&live_root, e))?;
        for database in &manifest.databases {
            let staged_dir = staging.join(&database.directory);
            let name = Path::new(&database.directory)
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            let live_dir = live_root.join(&name);
            if live_dir.exists() {
                // tallyd finishes removing `.dropped-*` directories at start.
                let aside = live_root.join(format!(
                    ".dropped-restore-{}-{}",
                    std::process::id(),
                    name.to_string_lossy()
                ));
                std::fs::rename(&live_dir, &aside).map_err(|e| DumpError::io(&live_dir, e))?;
                sync_dir(&live_root)?;
                std::fs::rename(&staged_dir, &live_dir).map_err(|e| DumpError::io(&live_dir, e))?;
                sync_dir(&live_root)?;
                let _ = std::fs::remove_dir_all(&aside);
            } else {
                std::fs::rename(&staged_dir, &live_dir).map_err(|e| DumpError::io(&live_dir, e))?;
                sync_dir(&live_root)?;
            }
        }
        let _ = std::fs::remove_dir_all(&staging);
    } else {
        if existing {
            // Empty but for a LOCK file: replace it whole.
            let lock_file = target.join("LOCK");
            let _ = std::fs::remove_file(&lock_file);
            std::fs::remove_dir(target).map_err(|e| DumpError::io(target, e))?;
        }
        std::fs::rename(&staging, target).map_err(|e| DumpError::io(target, e))?;
        sync_dir(&parent_of(target))?;
    }
    Ok(RestoreSummary {
        backup_id: manifest.id.clone(),
        databases: manifest.databases.iter().map(|d| d.name.clone()).collect(),
        files: manifest.files.len(),
        bytes: manifest.total_bytes,
        chain_length: chain.members.len(),
    })
}

pub(crate) fn describe(summary: &RestoreSummary, target: &Path) -> String {
    format!(
        "restored backup {} ({} backup(s) in its chain) into {}: {} database(s) ({}), {} files, {}; start tallyd with --data-dir {}",
        summary.backup_id,
        summary.chain_length,
        target.display(),
        summary.databases.len(),
        summary.databases.join(", "),
        summary.files,
        human_bytes(summary.bytes),
        target.display()
    )
}

/// Restores a backup into a new scratch directory (for `export --backup`); the caller removes
/// it.
pub(crate) fn restore_to_scratch(backup: &Path, progress: &Progress) -> Result<PathBuf, DumpError> {
    let location = Location::existing(backup)?;
    let scratch = temporary_sibling(location.path(), "export");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(|e| DumpError::io(&scratch, e))?;
    }
    restore(
        &RestoreOptions {
            backup: backup.to_path_buf(),
            data_dir: scratch.clone(),
            force: false,
            max_rate: None,
        },
        progress,
    )?;
    Ok(scratch)
}
