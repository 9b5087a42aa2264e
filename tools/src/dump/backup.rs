//! `tally-dump backup`: from a running server (through a snapshot) or a stopped data
//! directory (under its lock), full or incremental, into a directory or one `.tar.zst`.
//!
//! The work has two phases. The plan lists every file the instant needs with its size and
//! checksum (the server computes them for a snapshot; a directory's files are checksummed
//! here), applies the time-range selection (whole segments whose block overlaps the range,
//! with the database's manifest rewritten to name only those), and decides for each file
//! whether an earlier backup of the chain already holds it. The copy then streams the files
//! that must be stored, checking each against its planned checksum, into the output under a
//! temporary name, renamed into place at the end.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use tally_engine::offline::{self, FileKind};

use super::error::DumpError;
use super::http::{Server, encode_path};
use super::manifest::{
    ARCHIVE_SUFFIX, BackupDatabase, BackupFile, BackupManifest, CHECKSUM, FILES_DIR, FORMAT_NAME,
    FORMAT_VERSION, Location, MANIFEST_NAME, ParentRef, Selection, parent_location_text,
    resolve_chain,
};
use super::util::{
    Progress, RateLimit, compact_time, copy_with_crc, crc_hex, file_crc, format_time, human_bytes,
    now_ns, parent_of, sync_dir, temporary_sibling,
};

/// What `backup` was asked to do.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    pub host: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub output: PathBuf,
    pub databases: Vec<String>,
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
    pub incremental_from: Option<PathBuf>,
    pub max_rate: Option<u64>,
    pub keep_snapshot: bool,
    /// zstd level of archives.
    pub compression_level: i32,
}

/// Where a planned file's bytes come from.
enum Content {
    /// A file of the snapshot on the server (its path under the snapshot).
    Remote(String),
    /// A file of a locked data directory.
    Local(PathBuf),
    /// A manifest rewritten for a time-range selection.
    Memory(Vec<u8>),
}

struct Planned {
    file: BackupFile,
    content: Content,
}

/// The source of a backup, open until the backup ends.
enum Source {
    Server {
        server: Server,
        snapshot_id: String,
        keep: bool,
    },
    Directory {
        _lock: offline::DataDirLock,
    },
}

impl Source {
    fn finish(&self) {
        if let Source::Server {
            server,
            snapshot_id,
            keep: false,
        } = self
        {
            // The server removes it after its ttl anyway; a failure here costs nothing else.
            if let Err(e) = server.delete(&format!("/api/v1/snapshots/{snapshot_id}")) {
                eprintln!("tally-dump: could not delete snapshot {snapshot_id}: {e}");
            }
        }
    }

    fn open(&self, content: &Content) -> Result<Box<dyn Read + Send>, DumpError> {
        match (self, content) {
            (
                Source::Server {
                    server,
                    snapshot_id,
                    ..
                },
                Content::Remote(path),
            ) => Ok(server
                .get_stream(&format!(
                    "/api/v1/snapshots/{snapshot_id}/files/{}",
                    encode_path(path)
                ))?
                .0),
            (_, Content::Local(path)) => Ok(Box::new(
                File::open(path).map_err(|e| DumpError::io(path, e))?,
            )),
            (_, Content::Memory(bytes)) => Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
            (Source::Directory { .. }, Content::Remote(path)) => Err(DumpError::Failed(format!(
                "BUG: a server file {path} planned for a directory backup"
            ))),
        }
    }
}

fn overlaps(segment: &offline::SegmentSummary, start: Option<i64>, end: Option<i64>) -> bool {
    // Blocks are [block_start, block_end).
    start.is_none_or(|s| segment.block_end > s) && end.is_none_or(|e| segment.block_start <= e)
}

/// The JSON the snapshot endpoint answers.
#[derive(serde::Deserialize)]
struct SnapshotAnswer {
    id: String,
    created_ns: i64,
    databases: Vec<SnapshotDatabase>,
    files: Vec<SnapshotFile>,
}

#[derive(serde::Deserialize)]
struct SnapshotDatabase {
    name: String,
    directory: String,
}

#[derive(serde::Deserialize)]
struct SnapshotFile {
    path: String,
    database: String,
    kind: String,
    size: u64,
    crc32c: String,
    format_version: u32,
}

fn file_kind(name: &str) -> Option<FileKind> {
    match name {
        "manifest" => Some(FileKind::Manifest),
        "segment" => Some(FileKind::Segment),
        "index" => Some(FileKind::Index),
        "wal" => Some(FileKind::Wal),
        _ => None,
    }
}

/// Rewrites a database's manifest for the time range, dropping the segments outside it.
fn apply_time_range(
    planned: &mut Vec<Planned>,
    manifest_index: usize,
    manifest_bytes: &[u8],
    database_dir: &str,
    options: &BackupOptions,
) -> Result<(), DumpError> {
    if options.start_ns.is_none() && options.end_ns.is_none() {
        return Ok(());
    }
    let shown = PathBuf::from(format!("{database_dir}/MANIFEST"));
    let summary = offline::read_manifest(&shown, manifest_bytes)?;
    let dropped: Vec<String> = summary
        .segments
        .iter()
        .filter(|s| !overlaps(s, options.start_ns, options.end_ns))
        .map(|s| format!("{database_dir}/{}", s.file_name))
        .collect();
    let rewritten = offline::manifest_with_segments(&shown, manifest_bytes, |s| {
        overlaps(s, options.start_ns, options.end_ns)
    })?;
    if let Some(entry) = planned.get_mut(manifest_index) {
        entry.file.size = rewritten.len() as u64;
        entry.file.checksum = crc_hex(crc32c::crc32c(&rewritten));
        entry.content = Content::Memory(rewritten);
    }
    planned.retain(|p| !dropped.contains(&p.file.path));
    Ok(())
}

fn plan_from_server(
    options: &BackupOptions,
    host: &str,
) -> Result<(Source, Vec<Planned>, Vec<BackupDatabase>, i64), DumpError> {
    let server = Server::new(host)?;
    let params: Vec<(&str, &str)> = options
        .databases
        .iter()
        .map(|d| ("db", d.as_str()))
        .collect();
    let answer = server.post_empty("/api/v1/snapshots", &params)?;
    let url = server.url("/api/v1/snapshots");
    if answer.status != 201 {
        return Err(DumpError::http(
            url,
            format!(
                "the server refused the snapshot (status {}): {}",
                answer.status,
                answer.body.trim()
            ),
        ));
    }
    let snapshot: SnapshotAnswer = serde_json::from_str(&answer.body)
        .map_err(|e| DumpError::http(&url, format!("unexpected snapshot answer: {e}")))?;
    let source = Source::Server {
        server: server.clone(),
        snapshot_id: snapshot.id.clone(),
        keep: options.keep_snapshot,
    };
    let mut planned = Vec::new();
    for file in snapshot.files {
        if file_kind(&file.kind).is_none() || !super::manifest::is_plain_relative(&file.path) {
            source.finish();
            return Err(DumpError::http(
                &url,
                format!(
                    "the snapshot lists an unexpected file {:?} ({})",
                    file.path, file.kind
                ),
            ));
        }
        planned.push(Planned {
            content: Content::Remote(file.path.clone()),
            file: BackupFile {
                path: file.path,
                database: file.database,
                kind: file.kind,
                size: file.size,
                checksum: file.crc32c,
                format_version: file.format_version,
                stored_in: String::new(),
            },
        });
    }
    let databases: Vec<BackupDatabase> = snapshot
        .databases
        .into_iter()
        .map(|d| BackupDatabase {
            name: d.name,
            directory: d.directory,
        })
        .collect();
    if options.start_ns.is_some() || options.end_ns.is_some() {
        for database in &databases {
            let manifest_path = format!("{}/MANIFEST", database.directory);
            let Some(index) = planned.iter().position(|p| p.file.path == manifest_path) else {
                continue;
            };
            let mut bytes = Vec::new();
            source
                .open(&planned[index].content)?
                .read_to_end(&mut bytes)
                .map_err(|e| DumpError::http(&url, format!("cannot read {manifest_path}: {e}")))?;
            if let Err(e) =
                apply_time_range(&mut planned, index, &bytes, &database.directory, options)
            {
                source.finish();
                return Err(e);
            }
        }
    }
    Ok((source, planned, databases, snapshot.created_ns))
}

fn plan_from_directory(
    options: &BackupOptions,
    data_dir: &Path,
    progress: &Progress,
) -> Result<(Source, Vec<Planned>, Vec<BackupDatabase>, i64), DumpError> {
    let lock = offline::lock_data_dir(data_dir).map_err(|e| match e {
        tally_engine::EngineError::Locked { holder, .. } => DumpError::Failed(format!(
            "{} is in use by a running tallyd ({holder}): back it up online with --host URL, or stop the server first",
            data_dir.display()
        )),
        other => DumpError::Engine(other),
    })?;
    let snapshot_ns = now_ns();
    let mut listings = offline::list_databases(data_dir)?;
    if !options.databases.is_empty() {
        for wanted in &options.databases {
            if !listings.iter().any(|l| &l.name == wanted) {
                return Err(DumpError::Failed(format!(
                    "database {wanted:?} does not exist in {}",
                    data_dir.display()
                )));
            }
        }
        listings.retain(|l| options.databases.contains(&l.name));
    }
    let total: u64 = listings.iter().flat_map(|l| &l.files).map(|f| f.size).sum();
    let bar = progress.bytes("checksum", total);
    let mut planned = Vec::new();
    let mut databases = Vec::new();
    for listing in &listings {
        let directory = format!("{}/{}", offline::DATABASES_DIR, listing.dir_name);
        databases.push(BackupDatabase {
            name: listing.name.clone(),
            directory: directory.clone(),
        });
        let mut manifest_index = None;
        let mut manifest_bytes = Vec::new();
        for live in &listing.files {
            let path = listing.dir.join(&live.relative);
            let (size, crc, header) = file_crc(&path, &bar)?;
            if live.kind == FileKind::Manifest {
                manifest_index = Some(planned.len());
                manifest_bytes = std::fs::read(&path).map_err(|e| DumpError::io(&path, e))?;
            }
            planned.push(Planned {
                file: BackupFile {
                    path: format!("{directory}/{}", live.relative),
                    database: listing.name.clone(),
                    kind: live.kind.name().to_string(),
                    size,
                    checksum: crc_hex(crc),
                    format_version: offline::file_format(&header).map_or(0, |(_, v)| v),
                    stored_in: String::new(),
                },
                content: Content::Local(path),
            });
        }
        if let Some(index) = manifest_index {
            apply_time_range(&mut planned, index, &manifest_bytes, &directory, options)?;
        }
    }
    bar.finish_and_clear();
    Ok((
        Source::Directory { _lock: lock },
        planned,
        databases,
        snapshot_ns,
    ))
}

/// Where the copy goes.
enum Output {
    Directory {
        temporary: PathBuf,
    },
    Archive {
        temporary: PathBuf,
        builder: tar::Builder<zstd::Encoder<'static, BufWriter<File>>>,
    },
}

impl Output {
    fn create(location: &Location, level: i32) -> Result<Output, DumpError> {
        let final_path = location.path();
        let temporary = temporary_sibling(final_path, "tmp");
        if temporary.exists() {
            let _ = std::fs::remove_dir_all(&temporary);
            let _ = std::fs::remove_file(&temporary);
        }
        match location {
            Location::Directory(_) => {
                std::fs::create_dir_all(temporary.join(FILES_DIR))
                    .map_err(|e| DumpError::io(&temporary, e))?;
                Ok(Output::Directory { temporary })
            }
            Location::Archive(_) => {
                let file = File::create(&temporary).map_err(|e| DumpError::io(&temporary, e))?;
                let encoder = zstd::Encoder::new(BufWriter::with_capacity(1 << 20, file), level)
                    .map_err(|e| DumpError::io(&temporary, e))?;
                let mut builder = tar::Builder::new(encoder);
                builder.mode(tar::HeaderMode::Deterministic);
                Ok(Output::Archive { temporary, builder })
            }
        }
    }

    fn temporary(&self) -> &Path {
        match self {
            Output::Directory { temporary } | Output::Archive { temporary, .. } => temporary,
        }
    }

    fn discard(self) {
        match self {
            Output::Directory { temporary } => {
                let _ = std::fs::remove_dir_all(temporary);
            }
            Output::Archive { temporary, .. } => {
                let _ = std::fs::remove_file(temporary);
            }
        }
    }

    /// Adds an entry from a reader of exactly `size` bytes; returns what was read.
    fn add(
        &mut self,
        relative: &str,
        size: u64,
        reader: &mut dyn Read,
        limit: &mut RateLimit,
        bar: &indicatif::ProgressBar,
    ) -> Result<(u64, u32, Vec<u8>), DumpError> {
        match self {
            Output::Directory { temporary } => {
                let path = temporary.join(FILES_DIR).join(relative);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| DumpError::io(parent, e))?;
                }
                let file = File::create(&path).map_err(|e| DumpError::io(&path, e))?;
                let mut writer = BufWriter::with_capacity(1 << 20, file);
                let result = copy_with_crc(reader, &mut writer, limit, bar)
                    .map_err(|e| DumpError::io(&path, e))?;
                let file = writer
                    .into_inner()
                    .map_err(|e| DumpError::io(&path, e.into_error()))?;
                file.sync_all().map_err(|e| DumpError::io(&path, e))?;
                Ok(result)
            }
            Output::Archive { temporary, builder } => {
                let mut header = tar::Header::new_gnu();
                header.set_size(size);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                let mut counted = CrcReader {
                    inner: reader,
                    limit,
                    bar,
                    read: 0,
                    crc: 0,
                    header: Vec::with_capacity(12),
                    error: None,
                };
                let name = format!("{FILES_DIR}/{relative}");
                let appended = builder.append_data(&mut header, &name, (&mut counted).take(size));
                if let Some(e) = counted.error.take() {
                    return Err(e);
                }
                appended.map_err(|e| DumpError::io(&*temporary, e))?;
                Ok((counted.read, counted.crc, counted.header))
            }
        }
    }

    fn add_manifest(&mut self, bytes: &[u8]) -> Result<(), DumpError> {
        match self {
            Output::Directory { temporary } => {
                let path = temporary.join(MANIFEST_NAME);
                let mut file = File::create(&path).map_err(|e| DumpError::io(&path, e))?;
                file.write_all(bytes).map_err(|e| DumpError::io(&path, e))?;
                file.sync_all().map_err(|e| DumpError::io(&path, e))
            }
            Output::Archive { temporary, builder } => {
                let mut header = tar::Header::new_gnu();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                builder
                    .append_data(&mut header, MANIFEST_NAME, bytes)
                    .map_err(|e| DumpError::io(&*temporary, e))
            }
        }
    }

    /// Makes the output durable and renames it into place.
    fn commit(self, final_path: &Path) -> Result<(), DumpError> {
        let temporary = match self {
            Output::Directory { temporary } => {
                sync_tree(&temporary)?;
                temporary
            }
            Output::Archive { temporary, builder } => {
                let encoder = builder
                    .into_inner()
                    .map_err(|e| DumpError::io(&temporary, e))?;
                let writer = encoder.finish().map_err(|e| DumpError::io(&temporary, e))?;
                let file = writer
                    .into_inner()
                    .map_err(|e| DumpError::io(&temporary, e.into_error()))?;
                file.sync_all().map_err(|e| DumpError::io(&temporary, e))?;
                temporary
            }
        };
        if final_path.exists() {
            return Err(DumpError::Failed(format!(
                "{} appeared while the backup was written; the backup is left at {}",
                final_path.display(),
                temporary.display()
            )));
        }
        std::fs::rename(&temporary, final_path).map_err(|e| DumpError::io(final_path, e))?;
        sync_dir(&parent_of(final_path))
    }
}

/// Fsyncs every directory under `root` (files were fsynced as they were written).
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

/// A reader that checksums, paces and counts what passes through it. Errors of the inner
/// reader are kept so they can be reported with their cause rather than as a short entry.
struct CrcReader<'a> {
    inner: &'a mut dyn Read,
    limit: &'a mut RateLimit,
    bar: &'a indicatif::ProgressBar,
    read: u64,
    crc: u32,
    header: Vec<u8>,
    error: Option<DumpError>,
}

impl Read for CrcReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                self.error = Some(DumpError::Failed(format!(
                    "reading a file for the backup failed: {e}"
                )));
                return Err(e);
            }
        };
        let chunk = &buf[..n];
        if self.header.len() < 12 {
            let take = (12 - self.header.len()).min(n);
            self.header.extend_from_slice(&chunk[..take]);
        }
        self.crc = crc32c::crc32c_append(self.crc, chunk);
        self.read += n as u64;
        self.bar.inc(n as u64);
        self.limit.pace(n as u64);
        Ok(n)
    }
}

/// A new backup id: the UTC time and a few hex digits from the clock and the process.
fn new_id(now: i64) -> String {
    let mix =
        (now as u64 ^ (u64::from(std::process::id()) << 20)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{}-{:06x}", compact_time(now), mix >> 40)
}

/// What a backup did, for the summary line and tests.
#[derive(Clone, Debug)]
pub struct BackupSummary {
    pub manifest: BackupManifest,
    pub files_stored: usize,
    pub files_referenced: usize,
}

/// Runs `backup`.
pub fn backup(options: &BackupOptions, progress: &Progress) -> Result<BackupSummary, DumpError> {
    let location = Location::for_output(&options.output);
    if options.output.exists() {
        return Err(DumpError::Failed(format!(
            "{} already exists; backups are never overwritten: choose a new name",
            options.output.display()
        )));
    }
    if let (Some(start), Some(end)) = (options.start_ns, options.end_ns)
        && start > end
    {
        return Err(DumpError::Usage(format!(
            "--start ({}) is after --end ({})",
            format_time(start),
            format_time(end)
        )));
    }
    let parent = match &options.incremental_from {
        Some(path) => Some(resolve_chain(path)?),
        None => None,
    };
    let (source, mut planned, databases, snapshot_ns) = match (&options.host, &options.data_dir) {
        (Some(host), None) => plan_from_server(options, host)?,
        (None, Some(dir)) => plan_from_directory(options, dir, progress)?,
        _ => {
            return Err(DumpError::Usage(
                "backup needs exactly one source: --host URL (a running tallyd) or --data-dir DIR (a stopped one)".into(),
            ));
        }
    };
    let result = write_backup(
        options,
        &location,
        &source,
        &mut planned,
        databases,
        snapshot_ns,
        parent.as_ref(),
        progress,
    );
    source.finish();
    result
}

#[allow(
    clippy::too_many_arguments,
    reason = "the pieces of one backup, planned above"
)]
fn write_backup(
    options: &BackupOptions,
    location: &Location,
    source: &Source,
    planned: &mut [Planned],
    databases: Vec<BackupDatabase>,
    snapshot_ns: i64,
    parent: Option<&super::manifest::Chain>,
    progress: &Progress,
) -> Result<BackupSummary, DumpError> {
    let created_ns = now_ns();
    let id = new_id(created_ns);
    // Files an earlier backup of the chain holds: (path, size, checksum) -> the id storing it.
    let mut known: HashMap<(String, u64, String), String> = HashMap::new();
    if let Some(chain) = parent {
        for file in &chain.target().manifest.files {
            let immutable = file_kind(&file.kind).is_some_and(FileKind::is_immutable);
            if immutable {
                known.insert(
                    (file.path.clone(), file.size, file.checksum.clone()),
                    file.stored_in.clone(),
                );
            }
        }
    }
    let mut referenced = 0usize;
    for entry in planned.iter_mut() {
        let key = (
            entry.file.path.clone(),
            entry.file.size,
            entry.file.checksum.clone(),
        );
        match known.get(&key) {
            Some(holder) => {
                entry.file.stored_in = holder.clone();
                referenced += 1;
            }
            None => entry.file.stored_in = id.clone(),
        }
    }
    let stored_bytes: u64 = planned
        .iter()
        .filter(|p| p.file.stored_in == id)
        .map(|p| p.file.size)
        .sum();
    let mut chain_ids: Vec<String> = parent
        .map(|c| c.target().manifest.chain.clone())
        .unwrap_or_default();
    chain_ids.push(id.clone());
    let mut manifest = BackupManifest {
        format: FORMAT_NAME.to_string(),
        format_version: FORMAT_VERSION,
        id: id.clone(),
        tally_version: env!("CARGO_PKG_VERSION").to_string(),
        created_ns,
        snapshot_ns,
        source: options
            .host
            .clone()
            .or_else(|| options.data_dir.as_ref().map(|d| d.display().to_string()))
            .unwrap_or_default(),
        selection: Selection {
            databases: (!options.databases.is_empty()).then(|| options.databases.clone()),
            start_ns: options.start_ns,
            end_ns: options.end_ns,
        },
        checksum: CHECKSUM.to_string(),
        kind: if parent.is_some() {
            "incremental"
        } else {
            "full"
        }
        .to_string(),
        parent: parent.map(|c| ParentRef {
            id: c.target().manifest.id.clone(),
            location: parent_location_text(location.path(), c.target().location.path()),
        }),
        chain: chain_ids,
        databases,
        files: planned.iter().map(|p| p.file.clone()).collect(),
        stored_bytes,
        total_bytes: planned.iter().map(|p| p.file.size).sum(),
    };
    let mut output = Output::create(location, options.compression_level)?;
    let copy = (|| -> Result<(), DumpError> {
        if let Output::Archive { .. } = output {
            // Archives carry the manifest first, so a chain can be followed without reading
            // whole archives; checksums are known from the plan.
            let bytes = serde_json::to_vec_pretty(&manifest)
                .map_err(|e| DumpError::Failed(format!("cannot encode the manifest: {e}")))?;
            output.add_manifest(&bytes)?;
        }
        let bar = progress.bytes("backup", stored_bytes);
        let mut limit = RateLimit::new(options.max_rate);
        for entry in planned.iter().filter(|p| p.file.stored_in == id) {
            let mut reader = source.open(&entry.content)?;
            let (size, crc, header) = output.add(
                &entry.file.path,
                entry.file.size,
                &mut *reader,
                &mut limit,
                &bar,
            )?;
            if size != entry.file.size || crc_hex(crc) != entry.file.checksum {
                return Err(DumpError::Failed(format!(
                    "{} changed while it was copied: planned {} bytes with CRC-32C {}, read {size} bytes with {}",
                    entry.file.path,
                    entry.file.size,
                    entry.file.checksum,
                    crc_hex(crc)
                )));
            }
            if let Some((_, version)) = offline::file_format(&header)
                && version != entry.file.format_version
            {
                return Err(DumpError::Failed(format!(
                    "{}: the file's header says format version {version}, the plan says {}",
                    entry.file.path, entry.file.format_version
                )));
            }
        }
        bar.finish_and_clear();
        if let Output::Directory { .. } = output {
            manifest.created_ns = now_ns();
            let bytes = serde_json::to_vec_pretty(&manifest)
                .map_err(|e| DumpError::Failed(format!("cannot encode the manifest: {e}")))?;
            output.add_manifest(&bytes)?;
        }
        Ok(())
    })();
    if let Err(e) = copy {
        output.discard();
        return Err(e);
    }
    let temporary = output.temporary().to_path_buf();
    output.commit(location.path()).map_err(|e| {
        DumpError::Failed(format!(
            "{e} (the finished backup is at {})",
            temporary.display()
        ))
    })?;
    let files_stored = manifest.files.iter().filter(|f| f.stored_in == id).count();
    Ok(BackupSummary {
        files_stored,
        files_referenced: referenced,
        manifest,
    })
}

/// The summary printed after a backup.
pub(crate) fn describe(summary: &BackupSummary, output: &Path) -> String {
    let m = &summary.manifest;
    let mut text = format!(
        "backup {} ({}) written to {}: {} database(s), {} files, {} stored",
        m.id,
        m.kind,
        output.display(),
        m.databases.len(),
        m.files.len(),
        human_bytes(m.stored_bytes),
    );
    if let Some(parent) = &m.parent {
        text.push_str(&format!(
            ", {} files ({}) referenced from the chain ending at {}",
            summary.files_referenced,
            human_bytes(m.total_bytes - m.stored_bytes),
            parent.id
        ));
    }
    text.push_str(&format!("; snapshot at {}", format_time(m.snapshot_ns)));
    if output.to_string_lossy().ends_with(ARCHIVE_SUFFIX) {
        text.push_str(" (archive)");
    }
    text
}
