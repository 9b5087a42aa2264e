//! The backup format: a directory or one `.tar.zst` archive holding `backup.json` (the
//! manifest) and the files under `files/`, laid out as a data directory
//! (`files/dbs/<database dir>/...`). Specified in `docs/backup.md`, "Backup format".
//!
//! The manifest lists every file the backup's instant needs, with its size, CRC-32C and
//! format version, and says which backup stores it: this one, or an earlier one of its
//! incremental chain (segment and index files never change once written, so a name, size and
//! checksum identify them). A backup is complete exactly when its manifest exists under its
//! final name: both layouts are built under a temporary name and renamed at the end.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::DumpError;
use super::util::parent_of;

/// The manifest's name inside a backup.
pub(crate) const MANIFEST_NAME: &str = "backup.json";
/// The folder of a backup that holds the files.
pub(crate) const FILES_DIR: &str = "files";
pub(crate) const FORMAT_NAME: &str = "tally-backup";
pub(crate) const FORMAT_VERSION: u32 = 1;
/// The checksum every file entry carries.
pub(crate) const CHECKSUM: &str = "crc32c";
/// The suffix that makes `backup --output` write one archive instead of a directory.
pub(crate) const ARCHIVE_SUFFIX: &str = ".tar.zst";

/// `backup.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    /// Always `tally-backup`.
    pub format: String,
    /// The version of this layout (1).
    pub format_version: u32,
    /// Unique id of the backup: `<UTC time>-<hex>`.
    pub id: String,
    /// The tally-dump version that wrote it.
    pub tally_version: String,
    /// When the backup was written, nanoseconds since the epoch.
    pub created_ns: i64,
    /// The instant the data reflects: every write acknowledged before it is in the backup.
    pub snapshot_ns: i64,
    /// Where the data came from: a server URL or a data directory.
    pub source: String,
    pub selection: Selection,
    /// The checksum algorithm of `files[].checksum`: `crc32c` (Castagnoli).
    pub checksum: String,
    /// `full` or `incremental`.
    pub kind: String,
    /// The backup this one builds on (incremental backups only).
    pub parent: Option<ParentRef>,
    /// Ids of the chain from the full backup to this one, in order (this one last).
    pub chain: Vec<String>,
    pub databases: Vec<BackupDatabase>,
    pub files: Vec<BackupFile>,
    /// Bytes of the files this backup stores itself.
    pub stored_bytes: u64,
    /// Bytes of every file the instant needs (stored here or earlier in the chain).
    pub total_bytes: u64,
}

/// What was selected for the backup.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// The databases backed up; `None` means every database.
    pub databases: Option<Vec<String>>,
    /// Time range: whole segments whose time blocks overlap `[start_ns, end_ns]` are kept,
    /// plus the whole WAL. `None` leaves that end open.
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
}

/// The backup an incremental backup builds on.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ParentRef {
    pub id: String,
    /// Where it was: relative to this backup's folder when they share one, else absolute.
    pub location: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackupDatabase {
    pub name: String,
    /// Relative to `files/`: `dbs/<escaped name>`.
    pub directory: String,
}

/// One file of the instant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackupFile {
    /// Relative to `files/`, `/`-separated: `dbs/<dir>/MANIFEST`, `dbs/<dir>/<n>.tseg`,
    /// `dbs/<dir>/<n>.tidx`, `dbs/<dir>/wal/<n>.wal`.
    pub path: String,
    pub database: String,
    /// `manifest`, `segment`, `index` or `wal`.
    pub kind: String,
    pub size: u64,
    /// CRC-32C of the whole file, 8 lower-case hex digits.
    pub checksum: String,
    /// The format version in the file's header (0 when it has none, such as an empty file).
    pub format_version: u32,
    /// Id of the backup of the chain whose `files/` holds the bytes.
    pub stored_in: String,
}

impl BackupManifest {
    /// Checks what a reader relies on: the format, the paths (plain, relative), the chain.
    pub(crate) fn validate(&self, path: &Path) -> Result<(), DumpError> {
        let bad = |reason: String| DumpError::backup(path, reason);
        if self.format != FORMAT_NAME {
            return Err(bad(format!(
                "not a Tally backup manifest (format {:?})",
                self.format
            )));
        }
        if self.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "written in backup format version {}; this tally-dump reads version {FORMAT_VERSION}: use a tally-dump of the version that wrote it ({})",
                self.format_version, self.tally_version
            )));
        }
        if self.checksum != CHECKSUM {
            return Err(bad(format!("unknown checksum {:?}", self.checksum)));
        }
        if self.chain.last() != Some(&self.id) {
            return Err(bad("the chain does not end with this backup".into()));
        }
        for file in &self.files {
            if !is_plain_relative(&file.path) {
                return Err(bad(format!(
                    "file path {:?} is not a plain relative path",
                    file.path
                )));
            }
            if !self.chain.contains(&file.stored_in) {
                return Err(bad(format!(
                    "{} is stored in backup {}, which is not in the chain {:?}",
                    file.path, file.stored_in, self.chain
                )));
            }
        }
        Ok(())
    }
}

/// Whether `path` is relative, `/`-separated, without `.`, `..` or empty parts, so a damaged or
/// hostile manifest cannot make restore write outside its target.
pub(crate) fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\\'))
}

/// Where a backup is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    Directory(PathBuf),
    Archive(PathBuf),
}

impl Location {
    /// An output path: an archive when it ends in `.tar.zst`, else a directory.
    pub(crate) fn for_output(path: &Path) -> Location {
        if path.to_string_lossy().ends_with(ARCHIVE_SUFFIX) {
            Location::Archive(path.to_path_buf())
        } else {
            Location::Directory(path.to_path_buf())
        }
    }

    /// An existing backup: a file is an archive, a directory a directory.
    pub(crate) fn existing(path: &Path) -> Result<Location, DumpError> {
        let metadata = std::fs::metadata(path).map_err(|e| DumpError::io(path, e))?;
        Ok(if metadata.is_file() {
            Location::Archive(path.to_path_buf())
        } else {
            Location::Directory(path.to_path_buf())
        })
    }

    pub(crate) fn path(&self) -> &Path {
        match self {
            Location::Directory(p) | Location::Archive(p) => p,
        }
    }

    /// How a file of this backup is named in reports.
    pub(crate) fn display_file(&self, relative: &str) -> String {
        match self {
            Location::Directory(p) => p.join(FILES_DIR).join(relative).display().to_string(),
            Location::Archive(p) => format!("{}:{FILES_DIR}/{relative}", p.display()),
        }
    }
}

/// Opens an archive for reading: tar over zstd.
pub(crate) fn open_archive(path: &Path) -> Result<tar::Archive<Box<dyn Read>>, DumpError> {
    let file = File::open(path).map_err(|e| DumpError::io(path, e))?;
    let decoder = zstd::Decoder::new(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| DumpError::io(path, e))?;
    let reader: Box<dyn Read> = Box::new(decoder);
    Ok(tar::Archive::new(reader))
}

/// Reads and checks the manifest of a backup. In an archive it is the first entry.
pub(crate) fn read_manifest(location: &Location) -> Result<BackupManifest, DumpError> {
    let (bytes, shown) = match location {
        Location::Directory(dir) => {
            let path = dir.join(MANIFEST_NAME);
            let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => DumpError::backup(
                    dir,
                    format!(
                        "no {MANIFEST_NAME}: not a backup, or a backup that never completed (a killed run leaves a hidden .tmp folder instead)"
                    ),
                ),
                _ => DumpError::io(&path, e),
            })?;
            (bytes, path)
        }
        Location::Archive(path) => {
            let mut archive = open_archive(path)?;
            let mut entries = archive.entries().map_err(|e| DumpError::io(path, e))?;
            let first = entries
                .next()
                .ok_or_else(|| DumpError::backup(path, "the archive is empty"))?
                .map_err(|e| DumpError::backup(path, format!("the archive cannot be read: {e}")))?;
            let name = first
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name != MANIFEST_NAME {
                return Err(DumpError::backup(
                    path,
                    format!(
                        "the archive starts with {name:?}, not {MANIFEST_NAME}: not a Tally backup"
                    ),
                ));
            }
            let mut bytes = Vec::new();
            let mut first = first;
            first.read_to_end(&mut bytes).map_err(|e| {
                DumpError::backup(path, format!("{MANIFEST_NAME} cannot be read: {e}"))
            })?;
            (bytes, path.clone())
        }
    };
    let manifest: BackupManifest = serde_json::from_slice(&bytes).map_err(|e| {
        DumpError::backup(
            &shown,
            format!(
                "{MANIFEST_NAME} is damaged (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    manifest.validate(&shown)?;
    Ok(manifest)
}

/// One backup of a chain.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) location: Location,
    pub(crate) manifest: BackupManifest,
}

/// A backup and the backups it builds on, oldest (the full backup) first.
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    pub(crate) members: Vec<Member>,
}

impl Chain {
    /// The backup asked for (the last of the chain).
    pub(crate) fn target(&self) -> &Member {
        // A chain is built with at least the target in it.
        &self.members[self.members.len() - 1]
    }

    /// The member whose id is `id`.
    pub(crate) fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.manifest.id == id)
    }

    /// Files of the target by path.
    pub(crate) fn files(&self) -> BTreeMap<&str, &BackupFile> {
        self.target()
            .manifest
            .files
            .iter()
            .map(|f| (f.path.as_str(), f))
            .collect()
    }
}

/// Where the parent of a backup at `child` is, as recorded: relative to the child's folder
/// when the two share one.
pub(crate) fn parent_location_text(child: &Path, parent: &Path) -> String {
    let child_dir = parent_of(child);
    let parent_dir = parent_of(parent);
    let same = match (child_dir.canonicalize(), parent_dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same && let Some(name) = parent.file_name() {
        return name.to_string_lossy().into_owned();
    }
    parent
        .canonicalize()
        .unwrap_or_else(|_| parent.to_path_buf())
        .display()
        .to_string()
}

/// Loads a backup and, following `parent` references, every backup it builds on.
pub(crate) fn resolve_chain(path: &Path) -> Result<Chain, DumpError> {
    let mut members = Vec::new();
    let mut location = Location::existing(path)?;
    loop {
        let manifest = read_manifest(&location)?;
        let parent = manifest.parent.clone();
        if let Some(expected) = members.last().map(|m: &Member| {
            m.manifest
                .parent
                .as_ref()
                .map(|p| p.id.clone())
                .unwrap_or_default()
        }) && expected != manifest.id
        {
            return Err(DumpError::backup(
                location.path(),
                format!(
                    "expected backup {expected} of the chain here, found backup {}",
                    manifest.id
                ),
            ));
        }
        let next = parent.map(|p| {
            let candidate = PathBuf::from(&p.location);
            if candidate.is_absolute() {
                candidate
            } else {
                parent_of(location.path()).join(candidate)
            }
        });
        members.push(Member { location, manifest });
        if members.len() > 10_000 {
            return Err(DumpError::backup(path, "the chain loops"));
        }
        match next {
            None => break,
            Some(next_path) => {
                location = Location::existing(&next_path).map_err(|e| {
                    DumpError::backup(
                        path,
                        format!(
                            "the chain needs the backup at {}, which cannot be opened ({e}); keep every backup of a chain, or restore from the full backup",
                            next_path.display()
                        ),
                    )
                })?;
            }
        }
    }
    members.reverse();
    let chain = Chain { members };
    let expected: Vec<String> = chain
        .members
        .iter()
        .map(|m| m.manifest.id.clone())
        .collect();
    if chain.target().manifest.chain != expected {
        return Err(DumpError::backup(
            path,
            format!(
                "the manifest's chain {:?} disagrees with the backups found {:?}",
                chain.target().manifest.chain,
                expected
            ),
        ));
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_accepted() {
        assert!(is_plain_relative("dbs/telemetry/MANIFEST"));
        assert!(is_plain_relative("dbs/a%2Fb/wal/00000000000000000001.wal"));
        assert!(!is_plain_relative("/etc/passwd"));
        assert!(!is_plain_relative("dbs/../../x"));
        assert!(!is_plain_relative("dbs//x"));
        assert!(!is_plain_relative(""));
    }

    #[test]
    fn archive_outputs_are_told_by_their_suffix() {
        assert!(matches!(
            Location::for_output(Path::new("/b/monday.tar.zst")),
            Location::Archive(_)
        ));
        assert!(matches!(
            Location::for_output(Path::new("/b/monday")),
            Location::Directory(_)
        ));
    }
}
