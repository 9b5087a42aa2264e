//! Offline access to a data directory for `tally-dump`: locking a stopped directory, listing a
//! database's live files from its manifest, rewriting a manifest for a time-range selection,
//! verifying files (every crc, every chunk, index and manifest agreement, segment footers, WAL
//! frames) and inspecting structure.
//!
//! Nothing here writes to the files it reads: verification and inspection read a directory as
//! it is, so they can run against a backup, a snapshot, or a server's directory without its
//! lock. The files of one database need not live in one directory ([`DatabaseFiles`] maps each
//! name to a path), because an incremental backup keeps unchanged files in an earlier backup.
//!
//! Problems are collected, not returned at the first one: an operator wants every damaged file
//! and offset in one report. Each problem names the file and, where it is known, the byte offset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::chunk::{ColumnValues, FLAG_ROLLUP, decode_chunk, decode_rollup_chunk};
use crate::database::{apply_record, head_options};
use crate::error::{EngineError, Result};
use crate::fsutil::DirLock;
use crate::head::Head;
use crate::index_file::{self, INDEX_MAGIC, INDEX_VERSION, IndexMeta};
use crate::manifest::{MANIFEST_FILE, MANIFEST_MAGIC, MANIFEST_VERSION, Manifest};
use crate::model::FieldType;
use crate::options::EngineOptions;
use crate::segment::{SEGMENT_MAGIC, SEGMENT_VERSION, Segment, SegmentMeta};
use crate::wal::{self, ReplayReport, WAL_MAGIC, WAL_VERSION};

/// The folder of a data directory that holds one directory per database.
pub const DATABASES_DIR: &str = "dbs";
/// The folder of a database directory that holds its WAL files.
pub const WAL_DIR: &str = "wal";
/// The name of a database's manifest file.
pub const MANIFEST_NAME: &str = MANIFEST_FILE;
/// Prefix of a database directory whose drop was interrupted (removed at start).
const DROPPED_PREFIX: &str = ".dropped-";

/// The lock of a stopped data directory, held while a tool reads or writes it, so that tallyd
/// cannot start on it meanwhile. Released when dropped (or when the process dies).
pub struct DataDirLock {
    _lock: DirLock,
}

/// Takes the lock of a data directory, as tallyd does at start. Fails with
/// [`EngineError::Locked`] naming the holder when a server (or another tool) holds it.
pub fn lock_data_dir(dir: &Path) -> Result<DataDirLock> {
    Ok(DataDirLock {
        _lock: DirLock::acquire(dir)?,
    })
}

/// The kinds of file in a database directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FileKind {
    Manifest,
    Segment,
    Index,
    Wal,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Manifest => "manifest",
            FileKind::Segment => "segment",
            FileKind::Index => "index",
            FileKind::Wal => "wal",
        }
    }

    /// The kind of a file, from its name (`MANIFEST`, `*.tseg`, `*.tidx`, `*.wal`).
    pub fn from_file_name(name: &str) -> Option<FileKind> {
        if name == MANIFEST_FILE {
            Some(FileKind::Manifest)
        } else if name.ends_with(".tseg") {
            Some(FileKind::Segment)
        } else if name.ends_with(".tidx") {
            Some(FileKind::Index)
        } else if name.ends_with(".wal") {
            Some(FileKind::Wal)
        } else {
            None
        }
    }

    /// Segment and index files are never modified after they are renamed into place, so a
    /// name, size and checksum identify their content for good.
    pub fn is_immutable(self) -> bool {
        matches!(self, FileKind::Segment | FileKind::Index)
    }

    /// The format version this build writes and reads for the kind.
    pub fn supported_version(self) -> u32 {
        match self {
            FileKind::Manifest => MANIFEST_VERSION,
            FileKind::Segment => SEGMENT_VERSION,
            FileKind::Index => INDEX_VERSION,
            FileKind::Wal => WAL_VERSION,
        }
    }
}

/// The kind and format version a file declares in its first 12 bytes (magic and version), or
/// `None` when the bytes are not a Tally file header.
pub fn file_format(header: &[u8]) -> Option<(FileKind, u32)> {
    let magic = header.get(0..8)?;
    let version = header.get(8..12)?;
    let version = u32::from_le_bytes([version[0], version[1], version[2], version[3]]);
    let kind = if magic == MANIFEST_MAGIC {
        FileKind::Manifest
    } else if magic == SEGMENT_MAGIC {
        FileKind::Segment
    } else if magic == INDEX_MAGIC {
        FileKind::Index
    } else if magic == WAL_MAGIC {
        FileKind::Wal
    } else {
        return None;
    };
    Some((kind, version))
}

/// What a manifest says about one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    pub file_name: String,
    pub seq: u64,
    /// The time block the segment covers, `[block_start, block_end)` in nanoseconds.
    pub block_start: i64,
    pub block_end: i64,
    pub size: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub n_columns: u32,
    pub n_points: u64,
}

/// What a manifest says about one index file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSummary {
    pub file_name: String,
    pub first_series: u32,
    pub n_series: u32,
    pub first_column: u32,
    pub n_columns: u32,
    pub size: u64,
}

/// A decoded manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestSummary {
    /// The database's name.
    pub name: String,
    pub next_file_seq: u64,
    /// The first WAL file replay reads.
    pub wal_start_seq: u64,
    pub segments: Vec<SegmentSummary>,
    pub index_files: Vec<IndexSummary>,
}

fn summarize(manifest: &Manifest) -> ManifestSummary {
    ManifestSummary {
        name: manifest.name.clone(),
        next_file_seq: manifest.next_file_seq,
        wal_start_seq: manifest.wal_start_seq,
        segments: manifest
            .segments
            .iter()
            .map(|s| SegmentSummary {
                file_name: s.file_name.clone(),
                seq: s.seq,
                block_start: s.block_start,
                block_end: s.block_end,
                size: s.size,
                min_time: s.min_time,
                max_time: s.max_time,
                n_columns: s.n_columns,
                n_points: s.n_points,
            })
            .collect(),
        index_files: manifest
            .index_files
            .iter()
            .map(|i| IndexSummary {
                file_name: i.file_name.clone(),
                first_series: i.first_series,
                n_series: i.n_series,
                first_column: i.first_column,
                n_columns: i.n_columns,
                size: i.size,
            })
            .collect(),
    }
}

/// Decodes manifest bytes; `path` names the file in errors.
pub fn read_manifest(path: &Path, bytes: &[u8]) -> Result<ManifestSummary> {
    Manifest::decode(path, bytes).map(|m| summarize(&m))
}

/// Re-encodes a manifest keeping only the segments `keep` accepts (a time-range selection):
/// the result opens as a database that holds the kept segments, every index file and the WAL.
pub fn manifest_with_segments(
    path: &Path,
    bytes: &[u8],
    keep: impl Fn(&SegmentSummary) -> bool,
) -> Result<Vec<u8>> {
    let mut manifest = Manifest::decode(path, bytes)?;
    let summary = summarize(&manifest);
    let kept: Vec<SegmentMeta> = manifest
        .segments
        .iter()
        .zip(&summary.segments)
        .filter(|(_, s)| keep(s))
        .map(|(m, _)| m.clone())
        .collect();
    manifest.segments = kept;
    Ok(manifest.encode())
}

/// The WAL file name of a sequence number (`00000000000000000001.wal`).
pub fn wal_file_name(seq: u64) -> String {
    wal::wal_file_name(seq)
}

/// The sequence number of a WAL file name, if it is one.
pub fn wal_file_seq(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".wal")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// One live file of a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveFile {
    pub kind: FileKind,
    /// Path relative to the database directory: `MANIFEST`, `<name>.tseg`, `<name>.tidx` or
    /// `wal/<seq>.wal`, always with `/` separators.
    pub relative: String,
    /// Size on disk when listed.
    pub size: u64,
}

/// The live files of one database directory, as its manifest names them.
#[derive(Clone, Debug)]
pub struct DatabaseListing {
    /// The database's name (from its manifest).
    pub name: String,
    /// The directory's name under `dbs/` (an escaped form of the name).
    pub dir_name: String,
    /// The database directory.
    pub dir: PathBuf,
    pub manifest: ManifestSummary,
    /// The manifest, every segment and index file it names, and the WAL files replay reads.
    pub files: Vec<LiveFile>,
}

fn file_size(path: &Path) -> Result<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| EngineError::io(path, e))
}

/// Lists a database directory's live files from its manifest. The directory should be
/// locked (or a snapshot), or files may change while they are copied.
pub fn list_database(dir: &Path) -> Result<DatabaseListing> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&manifest_path).map_err(|e| EngineError::io(&manifest_path, e))?;
    let manifest = read_manifest(&manifest_path, &bytes)?;
    let mut files = vec![LiveFile {
        kind: FileKind::Manifest,
        relative: MANIFEST_FILE.to_string(),
        size: bytes.len() as u64,
    }];
    for index in &manifest.index_files {
        files.push(LiveFile {
            kind: FileKind::Index,
            relative: index.file_name.clone(),
            size: file_size(&dir.join(&index.file_name))?,
        });
    }
    for segment in &manifest.segments {
        files.push(LiveFile {
            kind: FileKind::Segment,
            relative: segment.file_name.clone(),
            size: file_size(&dir.join(&segment.file_name))?,
        });
    }
    for (seq, path) in wal::list_files(&dir.join(WAL_DIR))? {
        if seq < manifest.wal_start_seq {
            continue;
        }
        files.push(LiveFile {
            kind: FileKind::Wal,
            relative: format!("{WAL_DIR}/{}", wal::wal_file_name(seq)),
            size: file_size(&path)?,
        });
    }
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(DatabaseListing {
        name: manifest.name.clone(),
        dir_name,
        dir: dir.to_path_buf(),
        manifest,
        files,
    })
}

/// The database directories of a data directory (`dbs/*`), sorted, skipping interrupted drops.
pub fn database_dirs(data_dir: &Path) -> Result<Vec<PathBuf>> {
    let root = data_dir.join(DATABASES_DIR);
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EngineError::io(&root, e)),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io(&root, e))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(DROPPED_PREFIX) {
            continue;
        }
        if entry.path().is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Lists every database of a data directory.
pub fn list_databases(data_dir: &Path) -> Result<Vec<DatabaseListing>> {
    database_dirs(data_dir)?
        .iter()
        .map(|dir| list_database(dir))
        .collect()
}

/// Where the files of one database are, for verification and inspection.
#[derive(Clone, Debug, Default)]
pub struct DatabaseFiles {
    /// A name for reports (the database directory's name).
    pub label: String,
    /// The manifest file.
    pub manifest: PathBuf,
    /// Segment and index files by file name.
    pub files: BTreeMap<String, PathBuf>,
    /// WAL files by sequence number.
    pub wal: BTreeMap<u64, PathBuf>,
}

impl DatabaseFiles {
    /// The files of a database directory laid out as tallyd writes it. Segment and index files
    /// are looked up by the names the manifest gives; every `wal/*.wal` file is included.
    pub fn in_directory(dir: &Path) -> Result<DatabaseFiles> {
        let mut files = BTreeMap::new();
        let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| EngineError::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if matches!(
                FileKind::from_file_name(&name),
                Some(FileKind::Segment | FileKind::Index)
            ) {
                files.insert(name, entry.path());
            }
        }
        let wal = wal::list_files(&dir.join(WAL_DIR))?.into_iter().collect();
        Ok(DatabaseFiles {
            label: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            manifest: dir.join(MANIFEST_FILE),
            files,
            wal,
        })
    }
}

/// One problem (or note) found by verification: the file, the byte offset where known, and
/// what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub offset: Option<u64>,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(offset) => write!(
                f,
                "{} at byte {offset}: {}",
                self.path.display(),
                self.reason
            ),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

impl Problem {
    fn new(path: impl Into<PathBuf>, offset: Option<u64>, reason: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// A problem from an engine error: corruption keeps its file and offset.
    pub fn from_error(fallback_path: &Path, error: &EngineError) -> Problem {
        match error {
            EngineError::Corrupt {
                path,
                offset,
                reason,
            } => Problem::new(path.clone(), Some(*offset), reason.clone()),
            EngineError::WalCorruptInMiddle {
                path,
                offset,
                reason,
            } => Problem::new(
                path.clone(),
                Some(*offset),
                format!("{reason}, followed by valid records"),
            ),
            EngineError::UnsupportedVersion {
                path,
                kind,
                found,
                supported,
            } => Problem::new(
                path.clone(),
                Some(8),
                format!(
                    "written by {kind} format version {found}; this build reads up to version {supported}"
                ),
            ),
            EngineError::Io { path, source } => {
                Problem::new(path.clone(), None, source.to_string())
            }
            other => Problem::new(fallback_path, None, other.to_string()),
        }
    }
}

/// What verification found and how much it read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Damage: each makes `tally-dump verify` exit non-zero.
    pub problems: Vec<Problem>,
    /// Worth knowing but not damage, such as a torn WAL tail (the process stopped mid-write;
    /// the record was never acknowledged and is dropped at start).
    pub notes: Vec<Problem>,
    pub files_checked: u64,
    pub bytes_checked: u64,
    pub chunks_checked: u64,
    pub points_checked: u64,
    pub wal_records: u64,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Adds another report's findings and counts to this one.
    pub fn merge(&mut self, other: VerifyReport) {
        self.problems.extend(other.problems);
        self.notes.extend(other.notes);
        self.files_checked += other.files_checked;
        self.bytes_checked += other.bytes_checked;
        self.chunks_checked += other.chunks_checked;
        self.points_checked += other.points_checked;
        self.wal_records += other.wal_records;
    }
}

/// The catalog and head rebuilt from a database's index files and WAL, as a start would.
struct Loaded {
    manifest: Manifest,
    catalog: Catalog,
    /// Whether every index file and WAL file loaded, so column ids can be checked.
    catalog_complete: bool,
    head: Head,
    wal_files: Vec<(u64, PathBuf, u64, u64)>,
}

/// Loads the manifest, the index files and the WAL, recording problems. `None` when the
/// manifest itself cannot be read (nothing else can be checked without it).
fn load(
    files: &DatabaseFiles,
    report: &mut VerifyReport,
    progress: &mut dyn FnMut(u64),
) -> Option<Loaded> {
    let manifest_bytes = match std::fs::read(&files.manifest) {
        Ok(bytes) => bytes,
        Err(e) => {
            report.problems.push(Problem::new(
                &files.manifest,
                None,
                format!("cannot read the manifest: {e}"),
            ));
            return None;
        }
    };
    report.files_checked += 1;
    report.bytes_checked += manifest_bytes.len() as u64;
    progress(manifest_bytes.len() as u64);
    let manifest = match Manifest::decode(&files.manifest, &manifest_bytes) {
        Ok(m) => m,
        Err(e) => {
            report
                .problems
                .push(Problem::from_error(&files.manifest, &e));
            return None;
        }
    };
    let mut catalog = Catalog::default();
    let mut catalog_complete = true;
    for meta in &manifest.index_files {
        let Some(path) = files.files.get(&meta.file_name) else {
            report.problems.push(Problem::new(
                files.manifest.with_file_name(&meta.file_name),
                None,
                "index file named by the manifest is missing",
            ));
            catalog_complete = false;
            break;
        };
        report.files_checked += 1;
        if let Ok(size) = file_size(path) {
            report.bytes_checked += size;
            progress(size);
            if size != meta.size {
                report.problems.push(Problem::new(
                    path,
                    Some(size.min(meta.size)),
                    format!(
                        "the manifest says the index file has {} bytes, it has {size}",
                        meta.size
                    ),
                ));
            }
        }
        if let Err(e) = index_file::load_index(
            path,
            meta,
            &mut catalog,
            &manifest.dead_series,
            &manifest.dead_columns,
        ) {
            report.problems.push(Problem::from_error(path, &e));
            // Later files continue the id ranges of this one: they cannot be loaded.
            catalog_complete = false;
            break;
        }
    }
    // As at start: dropped and expired columns leave the catalog before the WAL is replayed.
    catalog.forget(&manifest.dead_columns);
    let options = EngineOptions::default();
    let mut head = Head::new(head_options(&options));
    let mut wal_files = Vec::new();
    if catalog_complete {
        for (&seq, path) in files.wal.range(manifest.wal_start_seq..) {
            let data = match std::fs::read(path) {
                Ok(data) => data,
                Err(e) => {
                    report.problems.push(Problem::new(
                        path,
                        None,
                        format!("cannot read the WAL file: {e}"),
                    ));
                    catalog_complete = false;
                    break;
                }
            };
            report.files_checked += 1;
            report.bytes_checked += data.len() as u64;
            progress(data.len() as u64);
            let mut replay = ReplayReport::default();
            let result = wal::replay_file(path, &data, false, &mut replay, &mut |record| {
                apply_record(&mut catalog, &mut head, record.payload).map_err(|e| {
                    EngineError::corrupt(
                        record.path,
                        record.offset + wal::FRAME_HEADER_LEN as u64 + e.offset as u64,
                        e.reason,
                    )
                })
            });
            report.wal_records += replay.records;
            wal_files.push((seq, path.clone(), data.len() as u64, replay.records));
            for (torn_path, offset, reason) in replay.truncated {
                report.notes.push(Problem::new(
                    torn_path,
                    Some(offset),
                    format!(
                        "torn WAL tail ({reason}): the process stopped while appending this record, \
                         which was never acknowledged; tallyd drops it at start"
                    ),
                ));
            }
            if let Err(e) = result {
                report.problems.push(Problem::from_error(path, &e));
                catalog_complete = false;
                break;
            }
        }
    }
    Some(Loaded {
        manifest,
        catalog,
        catalog_complete,
        head,
        wal_files,
    })
}

/// Per-encoding use, for inspection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodingUse {
    pub chunks: u64,
    pub points: u64,
    /// Stored bytes of the chunks (headers included).
    pub bytes: u64,
}

/// What was learned about one segment while checking it.
#[derive(Clone, Debug, Default)]
struct SegmentFacts {
    chunks: u64,
    points: u64,
    /// "timestamps <name>" and "<type> <name>" -> use.
    encodings: BTreeMap<String, EncodingUse>,
    zstd_chunks: u64,
}

/// Checks one segment completely: size against the manifest, trailer and footer (through
/// `Segment::open`), every chunk header and payload (decoded), column ids and types against the
/// catalog, time ordering, and the manifest's counts.
fn check_segment(
    path: &Path,
    meta: &SegmentMeta,
    catalog: Option<&Catalog>,
    decode: bool,
    report: &mut VerifyReport,
) -> SegmentFacts {
    let mut facts = SegmentFacts::default();
    report.files_checked += 1;
    match file_size(path) {
        Ok(size) => {
            report.bytes_checked += size;
            if size != meta.size {
                report.problems.push(Problem::new(
                    path,
                    Some(size.min(meta.size)),
                    format!(
                        "the manifest says the segment has {} bytes, it has {size}",
                        meta.size
                    ),
                ));
            }
        }
        Err(e) => {
            report.problems.push(Problem::from_error(path, &e));
            return facts;
        }
    }
    let segment = match Segment::open(path, meta.clone()) {
        Ok(s) => s,
        Err(e) => {
            report.problems.push(Problem::from_error(path, &e));
            return facts;
        }
    };
    let mut ts = Vec::new();
    let mut values = ColumnValues::new(FieldType::Float);
    let mut min_time = i64::MAX;
    let mut max_time = i64::MIN;
    let mut n_columns = 0u32;
    let mut index = 0usize;
    while let Some(entry) = segment.entry_at(index) {
        index += 1;
        n_columns += 1;
        let expected_type = match catalog {
            Some(catalog) => match catalog.column(entry.column) {
                Some(c) => Some(c.field_type),
                None if catalog.is_dead(entry.column) => None,
                None => {
                    report.problems.push(Problem::new(
                        path,
                        None,
                        format!(
                            "column {} is not in the catalog ({} columns are defined): the index files and the segment disagree",
                            entry.column,
                            catalog.column_count()
                        ),
                    ));
                    None
                }
            },
            None => None,
        };
        let mut previous_max: Option<i64> = None;
        let mut first_min: Option<i64> = None;
        let result = segment.for_each_chunk(&entry, |offset, header, bytes| {
            facts.chunks += 1;
            report.chunks_checked += 1;
            facts.points += u64::from(header.stats.count);
            min_time = min_time.min(header.stats.min_time);
            max_time = max_time.max(header.stats.max_time);
            let stored = u64::from(header.chunk_len);
            for key in [
                format!("timestamps {}", header.ts_encoding.name()),
                format!("{} {}", header.value_type, header.value_encoding.name()),
            ] {
                let use_ = facts.encodings.entry(key).or_default();
                use_.chunks += 1;
                use_.points += u64::from(header.stats.count);
                use_.bytes += stored;
            }
            if header.flags & 1 != 0 {
                facts.zstd_chunks += 1;
            }
            if let Some(expected) = expected_type
                && expected != header.value_type
            {
                report.problems.push(Problem::new(
                    path,
                    Some(offset + 24),
                    format!(
                        "chunk of column {} holds {} values but the catalog says the column is {expected}",
                        entry.column, header.value_type
                    ),
                ));
            }
            if previous_max.is_some_and(|p| p >= header.stats.min_time) {
                report.problems.push(Problem::new(
                    path,
                    Some(offset + 8),
                    format!(
                        "chunk of column {} starts at {} but the previous chunk ends at {}: chunks overlap or are out of order",
                        entry.column,
                        header.stats.min_time,
                        previous_max.unwrap_or_default()
                    ),
                ));
            }
            previous_max = Some(header.stats.max_time);
            first_min.get_or_insert(header.stats.min_time);
            if header.stats.min_time < meta.block_start || header.stats.max_time >= meta.block_end {
                report.problems.push(Problem::new(
                    path,
                    Some(offset + 8),
                    format!(
                        "chunk of column {} spans {}..{}, outside the segment's block {}..{}",
                        entry.column,
                        header.stats.min_time,
                        header.stats.max_time,
                        meta.block_start,
                        meta.block_end
                    ),
                ));
            }
            if decode {
                let decoded = if header.flags & FLAG_ROLLUP != 0 {
                    decode_rollup_chunk(bytes).map(|rows| rows.len() as u64)
                } else {
                    decode_chunk(bytes, &mut ts, &mut values).map(|_| ts.len() as u64)
                };
                match decoded {
                    Ok(n) => report.points_checked += n,
                    Err(e) => report.problems.push(Problem::new(
                        path,
                        Some(offset + e.offset as u64),
                        e.reason,
                    )),
                }
            }
            Ok(true)
        });
        match result {
            Err(e) => report.problems.push(Problem::from_error(path, &e)),
            Ok(()) => {
                if first_min != Some(entry.min_time) || previous_max != Some(entry.max_time) {
                    report.problems.push(Problem::new(
                        path,
                        None,
                        format!(
                            "the footer entry of column {} says its chunks span {}..{}, they span {}..{}",
                            entry.column,
                            entry.min_time,
                            entry.max_time,
                            first_min.unwrap_or_default(),
                            previous_max.unwrap_or_default()
                        ),
                    ));
                }
            }
        }
    }
    let mut disagree = Vec::new();
    if facts.points != meta.n_points {
        disagree.push(format!(
            "{} points (manifest: {})",
            facts.points, meta.n_points
        ));
    }
    if n_columns != meta.n_columns {
        disagree.push(format!(
            "{n_columns} columns (manifest: {})",
            meta.n_columns
        ));
    }
    if n_columns > 0 && (min_time != meta.min_time || max_time != meta.max_time) {
        disagree.push(format!(
            "times {min_time}..{max_time} (manifest: {}..{})",
            meta.min_time, meta.max_time
        ));
    }
    if !disagree.is_empty() {
        report.problems.push(Problem::new(
            path,
            None,
            format!(
                "the segment and the manifest disagree: the segment holds {}",
                disagree.join(", ")
            ),
        ));
    }
    facts
}

/// Verifies one database: the manifest, every index file (crc, id ranges against the manifest,
/// postings), every WAL frame and record (crc, decoding, definitions), every segment (size,
/// footer, every chunk decoded, columns and types against the catalog, counts against the
/// manifest). `progress` is called with bytes as they are read.
pub fn verify_database(files: &DatabaseFiles, progress: &mut dyn FnMut(u64)) -> VerifyReport {
    let mut report = VerifyReport::default();
    let Some(loaded) = load(files, &mut report, progress) else {
        return report;
    };
    let catalog = loaded.catalog_complete.then_some(&loaded.catalog);
    for meta in &loaded.manifest.segments {
        let Some(path) = files.files.get(&meta.file_name) else {
            report.problems.push(Problem::new(
                files.manifest.with_file_name(&meta.file_name),
                None,
                "segment named by the manifest is missing",
            ));
            continue;
        };
        let before = report.bytes_checked;
        check_segment(path, meta, catalog, true, &mut report);
        progress(report.bytes_checked - before);
    }
    report
}

/// The structure of one segment.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentInspection {
    pub file_name: String,
    /// Resolution tier: `raw`, or a rollup tier's resolution such as `1m`.
    pub tier: String,
    pub block_start: i64,
    pub block_end: i64,
    pub min_time: i64,
    pub max_time: i64,
    pub size: u64,
    pub columns: u32,
    pub chunks: u64,
    pub points: u64,
    /// Chunks whose payload is zstd-wrapped.
    pub zstd_chunks: u64,
}

/// A measurement's share of a database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeasurementInspection {
    pub name: String,
    pub series: u64,
    pub columns: u64,
    /// Field keys and types.
    pub fields: Vec<(String, FieldType)>,
}

/// The structure of one database.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseInspection {
    pub name: String,
    pub series: u64,
    pub columns: u64,
    pub measurements: Vec<MeasurementInspection>,
    pub segments: Vec<SegmentInspection>,
    /// (file name, size, series, columns).
    pub index_files: Vec<(String, u64, u32, u32)>,
    /// (file name, size, records).
    pub wal_files: Vec<(String, u64, u64)>,
    /// Points held by the WAL (not yet in segments).
    pub wal_points: u64,
    /// Encoding name ("timestamps delta-of-delta", "float gorilla-xor", ...) -> use.
    pub encodings: BTreeMap<String, EncodingUse>,
    /// Problems met while reading (inspection reads what it can and reports the rest).
    pub problems: Vec<Problem>,
}

impl DatabaseInspection {
    pub fn segment_points(&self) -> u64 {
        self.segments.iter().map(|s| s.points).sum()
    }

    pub fn segment_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }
}

/// A tier's name: `raw` for resolution 0, else the resolution in the largest whole unit.
fn tier_name(resolution_ns: i64) -> String {
    if resolution_ns <= 0 {
        return "raw".to_string();
    }
    const UNITS: [(i64, &str); 5] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
    ];
    for (unit, name) in UNITS {
        if resolution_ns % unit == 0 {
            return format!("{}{name}", resolution_ns / unit);
        }
    }
    format!("{resolution_ns}ns")
}

/// Reads a database's structure: catalog (series, columns, measurements), segments (blocks,
/// tiers, counts, bytes per value, encodings) and WAL. Chunk headers are read, payloads are
/// not decoded.
pub fn inspect_database(files: &DatabaseFiles) -> Result<DatabaseInspection> {
    let mut report = VerifyReport::default();
    let loaded = load(files, &mut report, &mut |_| {}).ok_or_else(|| {
        report.problems.first().map_or_else(
            || EngineError::corrupt(&files.manifest, 0, "the manifest cannot be read"),
            |p| EngineError::corrupt(&p.path, p.offset.unwrap_or(0), p.reason.clone()),
        )
    })?;
    let catalog = &loaded.catalog;
    let mut measurements: BTreeMap<String, MeasurementInspection> = BTreeMap::new();
    for (name, entry) in &catalog.measurements {
        measurements.insert(
            name.to_string(),
            MeasurementInspection {
                name: name.to_string(),
                series: entry.series.len(),
                columns: entry.columns.len(),
                fields: entry
                    .fields
                    .iter()
                    .map(|(k, f)| (k.to_string(), f.field_type))
                    .collect(),
            },
        );
    }
    let series = (0..catalog.series_count())
        .filter(|s| !catalog.dead_series.contains(*s))
        .count() as u64;
    let mut segments = Vec::new();
    let mut encodings: BTreeMap<String, EncodingUse> = BTreeMap::new();
    for meta in &loaded.manifest.segments {
        let Some(path) = files.files.get(&meta.file_name) else {
            report.problems.push(Problem::new(
                files.manifest.with_file_name(&meta.file_name),
                None,
                "segment named by the manifest is missing",
            ));
            continue;
        };
        let facts = check_segment(path, meta, Some(catalog), false, &mut report);
        for (k, v) in facts.encodings {
            let total = encodings.entry(k).or_default();
            total.chunks += v.chunks;
            total.points += v.points;
            total.bytes += v.bytes;
        }
        segments.push(SegmentInspection {
            file_name: meta.file_name.clone(),
            tier: tier_name(meta.resolution),
            block_start: meta.block_start,
            block_end: meta.block_end,
            min_time: meta.min_time,
            max_time: meta.max_time,
            size: meta.size,
            columns: meta.n_columns,
            chunks: facts.chunks,
            points: facts.points,
            zstd_chunks: facts.zstd_chunks,
        });
    }
    Ok(DatabaseInspection {
        name: loaded.manifest.name.clone(),
        series,
        columns: u64::from(catalog.column_count()),
        measurements: measurements.into_values().collect(),
        segments,
        index_files: loaded
            .manifest
            .index_files
            .iter()
            .map(|m: &IndexMeta| (m.file_name.clone(), m.size, m.n_series, m.n_columns))
            .collect(),
        wal_files: loaded
            .wal_files
            .iter()
            .map(|(seq, _, size, records)| (wal::wal_file_name(*seq), *size, *records))
            .collect(),
        wal_points: loaded.head.usage().points,
        encodings,
        problems: report.problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::model::{FieldValue, PointBatch};

    fn options() -> EngineOptions {
        EngineOptions {
            fsync: crate::wal::FsyncPolicy::Never,
            ..EngineOptions::default()
        }
    }

    /// A database with flushed segments over two days and points still in the WAL.
    fn sample_directory() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), options()).unwrap();
        let db = engine.create_database("metrics").unwrap();
        let day = 86_400_000_000_000i64;
        for round in 0..2i64 {
            let mut batch = PointBatch::new();
            for i in 0..500i64 {
                batch.start_point("cpu".into());
                batch.add_tag("host".into(), format!("h{}", i % 3).into());
                batch.add_field("usage".into(), FieldValue::Float(i as f64 * 0.5));
                batch.add_field("n".into(), FieldValue::Integer(i));
                batch.finish_point(round * day + i * 1_000_000_000).unwrap();
            }
            db.write(&batch).unwrap();
            db.flush(true).unwrap();
        }
        let mut batch = PointBatch::new();
        batch.start_point("cpu".into());
        batch.add_tag("host".into(), "h9".into());
        batch.add_field("usage".into(), FieldValue::Float(1.0));
        batch.finish_point(3 * day).unwrap();
        db.write(&batch).unwrap();
        drop(engine);
        dir
    }

    fn db_dir(root: &Path) -> PathBuf {
        database_dirs(root).unwrap().remove(0)
    }

    #[test]
    fn listing_names_the_manifest_segments_index_files_and_wal() {
        let dir = sample_directory();
        let listing = list_database(&db_dir(dir.path())).unwrap();
        assert_eq!(listing.name, "metrics");
        let kinds: Vec<FileKind> = listing.files.iter().map(|f| f.kind).collect();
        assert_eq!(kinds[0], FileKind::Manifest);
        assert_eq!(kinds.iter().filter(|k| **k == FileKind::Segment).count(), 2);
        assert!(kinds.contains(&FileKind::Index));
        assert!(kinds.contains(&FileKind::Wal));
    }

    #[test]
    fn a_clean_directory_verifies_with_every_chunk_decoded() {
        let dir = sample_directory();
        let files = DatabaseFiles::in_directory(&db_dir(dir.path())).unwrap();
        let report = verify_database(&files, &mut |_| {});
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!(report.points_checked, 2000);
        assert!(report.wal_records > 0);
    }

    #[test]
    fn a_flipped_byte_in_a_segment_is_reported_with_file_and_offset() {
        let dir = sample_directory();
        let db = db_dir(dir.path());
        let listing = list_database(&db).unwrap();
        let segment = listing
            .files
            .iter()
            .find(|f| f.kind == FileKind::Segment)
            .unwrap();
        let path = db.join(&segment.relative);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[200] ^= 0x04;
        std::fs::write(&path, &bytes).unwrap();
        let report = verify_database(&DatabaseFiles::in_directory(&db).unwrap(), &mut |_| {});
        assert!(!report.is_clean());
        let problem = &report.problems[0];
        assert_eq!(problem.path, path);
        assert!(problem.offset.is_some(), "{problem}");
    }

    #[test]
    fn a_missing_segment_and_a_truncated_index_file_are_both_reported() {
        let dir = sample_directory();
        let db = db_dir(dir.path());
        let listing = list_database(&db).unwrap();
        let segment = &listing.manifest.segments[0].file_name;
        std::fs::remove_file(db.join(segment)).unwrap();
        let index = &listing.manifest.index_files[0].file_name;
        let bytes = std::fs::read(db.join(index)).unwrap();
        std::fs::write(db.join(index), &bytes[..bytes.len() - 7]).unwrap();
        let report = verify_database(&DatabaseFiles::in_directory(&db).unwrap(), &mut |_| {});
        let text: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains(segment.as_str()) && t.contains("missing")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.contains(index.as_str())), "{text:?}");
    }

    #[test]
    fn a_manifest_restricted_to_a_time_range_keeps_only_overlapping_blocks() {
        let dir = sample_directory();
        let db = db_dir(dir.path());
        let path = db.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).unwrap();
        let day = 86_400_000_000_000i64;
        let kept = manifest_with_segments(&path, &bytes, |s| s.block_start >= day).unwrap();
        let summary = read_manifest(&path, &kept).unwrap();
        assert_eq!(summary.segments.len(), 1);
        assert_eq!(summary.segments[0].block_start, day);
        assert_eq!(summary.index_files.len(), 1);
    }

    #[test]
    fn inspection_counts_series_points_and_encodings() {
        let dir = sample_directory();
        let files = DatabaseFiles::in_directory(&db_dir(dir.path())).unwrap();
        let inspection = inspect_database(&files).unwrap();
        assert_eq!(inspection.series, 4);
        assert_eq!(inspection.segment_points(), 2000);
        assert_eq!(inspection.wal_points, 1);
        assert_eq!(inspection.measurements[0].name, "cpu");
        assert!(
            inspection
                .encodings
                .keys()
                .any(|k| k.starts_with("timestamps "))
        );
        assert!(inspection.problems.is_empty(), "{:?}", inspection.problems);
    }

    #[test]
    fn file_headers_name_their_kind_and_version() {
        let dir = sample_directory();
        let db = db_dir(dir.path());
        for file in list_database(&db).unwrap().files {
            let bytes = std::fs::read(db.join(&file.relative)).unwrap();
            assert_eq!(
                file_format(&bytes),
                Some((file.kind, 1)),
                "{}",
                file.relative
            );
        }
        assert_eq!(file_format(b"not a tally file"), None);
    }

    #[test]
    fn a_locked_directory_cannot_be_locked_again() {
        let dir = tempfile::tempdir().unwrap();
        let _lock = lock_data_dir(dir.path()).unwrap();
        assert!(matches!(
            lock_data_dir(dir.path()),
            Err(EngineError::Locked { .. })
        ));
    }
}
