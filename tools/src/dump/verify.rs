//! `tally-dump verify`: checks a backup (every file's size and CRC-32C against the manifest,
//! then the structure of every database: manifest, index files, WAL frames, segment footers,
//! every chunk decoded) or a data directory (the structure). `restore` runs the same checks
//! before it touches its target and refuses with the same report.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use tally_engine::offline::{self, DatabaseFiles, FileKind, VerifyReport};

use super::error::DumpError;
use super::manifest::{Chain, FILES_DIR, Location, open_archive, resolve_chain};
use super::util::{Progress, RateLimit, copy_with_crc, crc_hex, human_bytes, temporary_sibling};

/// One finding, named for people: the file as the operator knows it, the byte offset where
/// known, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub offset: Option<u64>,
    pub reason: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(offset) => write!(f, "{} at byte {offset}: {}", self.file, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// What was verified.
    pub subject: String,
    pub problems: Vec<Finding>,
    pub notes: Vec<Finding>,
    pub counts: VerifyReport,
    /// Bytes whose checksum was compared with the backup manifest.
    pub checksummed_bytes: u64,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report as printed by `verify` and by a refusing `restore`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for problem in &self.problems {
            out.push_str(&format!("PROBLEM {problem}\n"));
        }
        for note in &self.notes {
            out.push_str(&format!("note    {note}\n"));
        }
        let c = &self.counts;
        out.push_str(&format!(
            "{}: {} problem(s); checked {} files ({}), {} chunks, {} points, {} WAL records{}\n",
            self.subject,
            self.problems.len(),
            c.files_checked,
            human_bytes(c.bytes_checked.max(self.checksummed_bytes)),
            c.chunks_checked,
            c.points_checked,
            c.wal_records,
            if self.checksummed_bytes > 0 {
                format!(
                    ", {} checksummed against the backup manifest",
                    human_bytes(self.checksummed_bytes)
                )
            } else {
                String::new()
            }
        ));
        out
    }

    fn add_engine(&mut self, report: VerifyReport, display: &HashMap<PathBuf, String>) {
        let name = |path: &Path| {
            display
                .get(path)
                .cloned()
                .unwrap_or_else(|| path.display().to_string())
        };
        for p in &report.problems {
            self.problems.push(Finding {
                file: name(&p.path),
                offset: p.offset,
                reason: p.reason.clone(),
            });
        }
        for n in &report.notes {
            self.notes.push(Finding {
                file: name(&n.path),
                offset: n.offset,
                reason: n.reason.clone(),
            });
        }
        let mut counts = report;
        counts.problems.clear();
        counts.notes.clear();
        self.counts.merge(counts);
    }
}

/// The files of a backup's instant, where their verified bytes are on disk.
pub(crate) struct Available {
    /// Relative path (`dbs/<dir>/...`) -> file on disk.
    pub(crate) paths: BTreeMap<String, PathBuf>,
    /// File on disk -> the name reports give it.
    pub(crate) display: HashMap<PathBuf, String>,
}

/// Checks every file of the chain's target against its manifest entry (present, size,
/// CRC-32C). With `copy_to`, each file is also copied to `copy_to/<path>` as it is read (the
/// copy is what later checks read); without it, directory backups are read in place and
/// archives must not occur.
pub(crate) fn check_files(
    chain: &Chain,
    copy_to: Option<&Path>,
    report: &mut Report,
    limit: &mut RateLimit,
    progress: &Progress,
) -> Result<Available, DumpError> {
    let files = chain.files();
    let total: u64 = files.values().map(|f| f.size).sum();
    let bar = progress.bytes(
        if copy_to.is_some() {
            "copy"
        } else {
            "checksum"
        },
        total,
    );
    let mut available = Available {
        paths: BTreeMap::new(),
        display: HashMap::new(),
    };
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let check = |file: &super::manifest::BackupFile,
                 size: u64,
                 crc: u32,
                 shown: &str,
                 report: &mut Report| {
        if size != file.size {
            report.problems.push(Finding {
                file: shown.to_string(),
                offset: Some(size.min(file.size)),
                reason: format!(
                    "the file has {size} bytes, the backup manifest says {} ({})",
                    file.size,
                    if size < file.size {
                        "truncated"
                    } else {
                        "bytes added"
                    }
                ),
            });
        } else if crc_hex(crc) != file.checksum {
            report.problems.push(Finding {
                file: shown.to_string(),
                offset: None,
                reason: format!(
                    "CRC-32C {} does not match the backup manifest's {}: the file is damaged",
                    crc_hex(crc),
                    file.checksum
                ),
            });
        }
    };
    for member in &chain.members {
        let id = &member.manifest.id;
        let wanted: Vec<&super::manifest::BackupFile> = files
            .values()
            .filter(|f| &f.stored_in == id)
            .copied()
            .collect();
        if wanted.is_empty() {
            continue;
        }
        match &member.location {
            Location::Directory(dir) => {
                for file in wanted {
                    let source = dir.join(FILES_DIR).join(&file.path);
                    let shown = member.location.display_file(&file.path);
                    seen.insert(file.path.clone());
                    let mut reader = match File::open(&source) {
                        Ok(f) => f,
                        Err(e) => {
                            report.problems.push(Finding {
                                file: shown,
                                offset: None,
                                reason: if e.kind() == std::io::ErrorKind::NotFound {
                                    "missing: the backup manifest lists it".into()
                                } else {
                                    format!("cannot be read: {e}")
                                },
                            });
                            continue;
                        }
                    };
                    let (size, crc) = match copy_to {
                        Some(root) => {
                            let target = root.join(&file.path);
                            let (size, crc, _) = copy_into(&mut reader, &target, limit, &bar)?;
                            available.paths.insert(file.path.clone(), target.clone());
                            available.display.insert(target, shown.clone());
                            (size, crc)
                        }
                        None => {
                            let (size, crc, _) =
                                copy_with_crc(&mut reader, &mut std::io::sink(), limit, &bar)
                                    .map_err(|e| DumpError::io(&source, e))?;
                            available.paths.insert(file.path.clone(), source.clone());
                            available.display.insert(source.clone(), shown.clone());
                            (size, crc)
                        }
                    };
                    report.checksummed_bytes += size;
                    check(file, size, crc, &shown, report);
                }
            }
            Location::Archive(path) => {
                let Some(root) = copy_to else {
                    return Err(DumpError::Failed(
                        "BUG: an archive checked without a place to extract it".into(),
                    ));
                };
                let wanted: HashMap<&str, &super::manifest::BackupFile> =
                    wanted.iter().map(|f| (f.path.as_str(), *f)).collect();
                let mut archive = open_archive(path)?;
                let entries = match archive.entries() {
                    Ok(entries) => entries,
                    Err(e) => {
                        report.problems.push(Finding {
                            file: path.display().to_string(),
                            offset: None,
                            reason: format!("the archive cannot be read: {e}"),
                        });
                        continue;
                    }
                };
                for entry in entries {
                    let mut entry = match entry {
                        Ok(entry) => entry,
                        Err(e) => {
                            report.problems.push(Finding {
                                file: path.display().to_string(),
                                offset: None,
                                reason: format!(
                                    "the archive is damaged after its last good entry: {e}"
                                ),
                            });
                            break;
                        }
                    };
                    let name = entry
                        .path()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let Some(relative) = name.strip_prefix(&format!("{FILES_DIR}/")) else {
                        continue;
                    };
                    let Some(file) = wanted.get(relative) else {
                        continue;
                    };
                    let shown = member.location.display_file(relative);
                    seen.insert(relative.to_string());
                    let target = root.join(relative);
                    match copy_into(&mut entry, &target, limit, &bar) {
                        Ok((size, crc, _)) => {
                            report.checksummed_bytes += size;
                            check(file, size, crc, &shown, report);
                            available.paths.insert(relative.to_string(), target.clone());
                            available.display.insert(target, shown);
                        }
                        Err(DumpError::Io {
                            path: failed,
                            source,
                        }) if failed != target => {
                            report.problems.push(Finding {
                                file: shown,
                                offset: None,
                                reason: format!(
                                    "the archive is damaged inside this entry: {source}"
                                ),
                            });
                            break;
                        }
                        Err(other) => return Err(other),
                    }
                }
            }
        }
    }
    for file in files.values() {
        if !seen.contains(&file.path) {
            let shown = chain
                .member(&file.stored_in)
                .map(|m| m.location.display_file(&file.path))
                .unwrap_or_else(|| file.path.clone());
            report.problems.push(Finding {
                file: shown,
                offset: None,
                reason: "missing: the backup manifest lists it".into(),
            });
        }
    }
    bar.finish_and_clear();
    Ok(available)
}

/// Copies a reader into a new file (parents created), fsynced; returns size, CRC and header.
/// A read error is reported with the reader's side named by a path other than `target`.
fn copy_into(
    reader: &mut dyn Read,
    target: &Path,
    limit: &mut RateLimit,
    bar: &indicatif::ProgressBar,
) -> Result<(u64, u32, Vec<u8>), DumpError> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DumpError::io(parent, e))?;
    }
    let file = File::create(target).map_err(|e| DumpError::io(target, e))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut read_error = None;
    let mut guarded = ReadErrors {
        inner: reader,
        error: &mut read_error,
    };
    let copied = copy_with_crc(&mut guarded, &mut writer, limit, bar);
    if let Some(e) = read_error {
        return Err(DumpError::io("<archive>", e));
    }
    let result = copied.map_err(|e| DumpError::io(target, e))?;
    let file = writer
        .into_inner()
        .map_err(|e| DumpError::io(target, e.into_error()))?;
    file.sync_all().map_err(|e| DumpError::io(target, e))?;
    Ok(result)
}

/// Remembers a read error so it can be told apart from a write error.
struct ReadErrors<'a> {
    inner: &'a mut dyn Read,
    error: &'a mut Option<std::io::Error>,
}

impl Read for ReadErrors<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            *self.error = Some(std::io::Error::new(e.kind(), e.to_string()));
        })
    }
}

/// The databases of the chain's target, with their files located in `available`.
pub(crate) fn database_files(chain: &Chain, available: &Available) -> Vec<DatabaseFiles> {
    let mut out = Vec::new();
    for database in &chain.target().manifest.databases {
        let prefix = format!("{}/", database.directory);
        let mut files = DatabaseFiles {
            label: database.name.clone(),
            manifest: available
                .paths
                .get(&format!("{prefix}MANIFEST"))
                .cloned()
                .unwrap_or_else(|| PathBuf::from(format!("{prefix}MANIFEST"))),
            ..DatabaseFiles::default()
        };
        for (relative, path) in available.paths.range(prefix.clone()..) {
            let Some(rest) = relative.strip_prefix(&prefix) else {
                break;
            };
            if let Some(name) = rest.strip_prefix(&format!("{}/", offline::WAL_DIR)) {
                if let Some(seq) = offline::wal_file_seq(name) {
                    files.wal.insert(seq, path.clone());
                }
            } else if matches!(
                FileKind::from_file_name(rest),
                Some(FileKind::Segment | FileKind::Index)
            ) {
                files.files.insert(rest.to_string(), path.clone());
            }
        }
        out.push(files);
    }
    out
}

/// Checks the structure of every database of the chain's target.
pub(crate) fn check_structure(
    chain: &Chain,
    available: &Available,
    report: &mut Report,
    progress: &Progress,
) {
    let total: u64 = chain.files().values().map(|f| f.size).sum();
    let bar = progress.bytes("verify", total);
    for files in database_files(chain, available) {
        if !files.manifest.exists() {
            // Reported as missing by the file checks.
            continue;
        }
        let result = offline::verify_database(&files, &mut |n| bar.inc(n));
        report.add_engine(result, &available.display);
    }
    bar.finish_and_clear();
}

/// Verifies a backup (and the chain it builds on).
pub fn verify_backup(path: &Path, progress: &Progress) -> Result<Report, DumpError> {
    let chain = resolve_chain(path)?;
    let mut report = Report {
        subject: format!(
            "backup {} ({}, {} backup(s) in its chain)",
            path.display(),
            chain.target().manifest.id,
            chain.members.len()
        ),
        ..Report::default()
    };
    let mut limit = RateLimit::new(None);
    let has_archive = chain
        .members
        .iter()
        .any(|m| matches!(m.location, Location::Archive(_)));
    if has_archive {
        // Structure checks need the files on disk: extract next to the backup, remove after.
        let scratch = temporary_sibling(path, "verify");
        let _ = std::fs::remove_dir_all(&scratch);
        let result = (|| -> Result<(), DumpError> {
            let available = check_files(&chain, Some(&scratch), &mut report, &mut limit, progress)?;
            check_structure(&chain, &available, &mut report, progress);
            Ok(())
        })();
        let _ = std::fs::remove_dir_all(&scratch);
        result?;
    } else {
        let available = check_files(&chain, None, &mut report, &mut limit, progress)?;
        check_structure(&chain, &available, &mut report, progress);
    }
    Ok(report)
}

/// Verifies a data directory. A stopped one is locked while it is read; one a running tallyd
/// holds is read without the lock (its segment and index files never change), and a database
/// whose manifest changed meanwhile is checked again.
pub fn verify_data_dir(dir: &Path, progress: &Progress) -> Result<Report, DumpError> {
    let mut report = Report {
        subject: format!("data directory {}", dir.display()),
        ..Report::default()
    };
    let lock = match offline::lock_data_dir(dir) {
        Ok(lock) => Some(lock),
        Err(tally_engine::EngineError::Locked { holder, .. }) => {
            report.notes.push(Finding {
                file: dir.display().to_string(),
                offset: None,
                reason: format!(
                    "in use by a running tallyd ({holder}): verified without the lock; files written meanwhile are not checked"
                ),
            });
            None
        }
        Err(e) => return Err(DumpError::Engine(e)),
    };
    let databases = offline::database_dirs(dir)?;
    if databases.is_empty() {
        report.notes.push(Finding {
            file: dir.display().to_string(),
            offset: None,
            reason: "holds no database (is this a data directory?)".into(),
        });
    }
    let bar = progress.counter("verify");
    for db_dir in databases {
        let manifest_path = db_dir.join(offline::MANIFEST_NAME);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let before = std::fs::read(&manifest_path).ok();
            let files = DatabaseFiles::in_directory(&db_dir)?;
            let result = offline::verify_database(&files, &mut |n| bar.inc(n));
            let after = std::fs::read(&manifest_path).ok();
            let changed = lock.is_none() && before != after;
            if changed && !result.is_clean() && attempt < 3 {
                // A flush or compaction replaced files while they were read: read again.
                continue;
            }
            report.add_engine(result, &HashMap::new());
            break;
        }
    }
    bar.finish_and_clear();
    Ok(report)
}

/// Whether `path` is a data directory (holds `dbs/`) rather than a backup.
pub(crate) fn is_data_dir(path: &Path) -> bool {
    path.join(offline::DATABASES_DIR).is_dir()
        && !path.join(super::manifest::MANIFEST_NAME).exists()
}
