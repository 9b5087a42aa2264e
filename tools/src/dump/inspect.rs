//! `tally-dump inspect`: the structure of a data directory or a backup: databases, series,
//! columns and measurements, segments by block and tier with their value counts and bytes per
//! value, the encodings in use, index files and the WAL.

use std::fmt::Write as _;
use std::path::Path;

use tally_engine::offline::{self, DatabaseFiles, DatabaseInspection};

use super::error::DumpError;
use super::manifest::{Location, resolve_chain};
use super::util::{Progress, RateLimit, format_time, human_bytes, temporary_sibling};
use super::verify::{Report, check_files, database_files, is_data_dir};

fn per_value(bytes: u64, values: u64) -> String {
    if values == 0 {
        "-".to_string()
    } else {
        format!("{:.2}", bytes as f64 / values as f64)
    }
}

fn render(out: &mut String, inspection: &DatabaseInspection) {
    let points = inspection.segment_points();
    let bytes = inspection.segment_bytes();
    let _ = writeln!(
        out,
        "database {:?}: {} series, {} columns, {} measurements; {} segments ({}), {} values in segments ({} bytes/value), {} in the WAL",
        inspection.name,
        inspection.series,
        inspection.columns,
        inspection.measurements.len(),
        inspection.segments.len(),
        human_bytes(bytes),
        points,
        per_value(bytes, points),
        inspection.wal_points,
    );
    if !inspection.measurements.is_empty() {
        let _ = writeln!(out, "  measurements:");
        for m in &inspection.measurements {
            let fields: Vec<String> = m
                .fields
                .iter()
                .map(|(k, t)| format!("{k}:{}", super::export::type_name(*t)))
                .collect();
            let _ = writeln!(
                out,
                "    {:<24} {:>8} series {:>8} columns  {}",
                m.name,
                m.series,
                m.columns,
                fields.join(" ")
            );
        }
    }
    if !inspection.segments.is_empty() {
        let _ = writeln!(out, "  segments:");
        let _ = writeln!(
            out,
            "    {:<40} {:>5} {:<20} {:<20} {:>10} {:>8} {:>8} {:>12} {:>9}",
            "file",
            "tier",
            "block start",
            "block end",
            "bytes",
            "columns",
            "chunks",
            "values",
            "B/value"
        );
        for s in &inspection.segments {
            let _ = writeln!(
                out,
                "    {:<40} {:>5} {:<20} {:<20} {:>10} {:>8} {:>8} {:>12} {:>9}",
                s.file_name,
                s.tier,
                format_time(s.block_start),
                format_time(s.block_end),
                s.size,
                s.columns,
                s.chunks,
                s.points,
                per_value(s.size, s.points),
            );
        }
    }
    if !inspection.encodings.is_empty() {
        let _ = writeln!(
            out,
            "  encodings (chunks, values, bytes/value of their chunks):"
        );
        for (name, usage) in &inspection.encodings {
            let _ = writeln!(
                out,
                "    {:<36} {:>8} {:>12} {:>9}",
                name,
                usage.chunks,
                usage.points,
                per_value(usage.bytes, usage.points)
            );
        }
    }
    if !inspection.index_files.is_empty() {
        let _ = writeln!(out, "  index files:");
        for (name, size, series, columns) in &inspection.index_files {
            let _ = writeln!(
                out,
                "    {name:<40} {size:>10} bytes {series:>8} series {columns:>8} columns"
            );
        }
    }
    if !inspection.wal_files.is_empty() {
        let _ = writeln!(out, "  WAL:");
        for (name, size, records) in &inspection.wal_files {
            let _ = writeln!(out, "    {name:<40} {size:>10} bytes {records:>8} records");
        }
    }
    for problem in &inspection.problems {
        let _ = writeln!(out, "  PROBLEM {problem}");
    }
}

fn to_json(inspection: &DatabaseInspection) -> serde_json::Value {
    serde_json::json!({
        "name": inspection.name,
        "series": inspection.series,
        "columns": inspection.columns,
        "wal_values": inspection.wal_points,
        "segment_values": inspection.segment_points(),
        "segment_bytes": inspection.segment_bytes(),
        "measurements": inspection.measurements.iter().map(|m| serde_json::json!({
            "name": m.name,
            "series": m.series,
            "columns": m.columns,
            "fields": m.fields.iter().map(|(k, t)| serde_json::json!({"name": k, "type": super::export::type_name(*t)})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "segments": inspection.segments.iter().map(|s| serde_json::json!({
            "file": s.file_name,
            "tier": s.tier,
            "block_start_ns": s.block_start,
            "block_end_ns": s.block_end,
            "min_time_ns": s.min_time,
            "max_time_ns": s.max_time,
            "bytes": s.size,
            "columns": s.columns,
            "chunks": s.chunks,
            "values": s.points,
            "zstd_chunks": s.zstd_chunks,
        })).collect::<Vec<_>>(),
        "encodings": inspection.encodings.iter().map(|(k, u)| serde_json::json!({
            "encoding": k, "chunks": u.chunks, "values": u.points, "bytes": u.bytes,
        })).collect::<Vec<_>>(),
        "index_files": inspection.index_files.iter().map(|(n, s, se, c)| serde_json::json!({
            "file": n, "bytes": s, "series": se, "columns": c,
        })).collect::<Vec<_>>(),
        "wal_files": inspection.wal_files.iter().map(|(n, s, r)| serde_json::json!({
            "file": n, "bytes": s, "records": r,
        })).collect::<Vec<_>>(),
        "problems": inspection.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    })
}

/// Runs `inspect` on a data directory or a backup; returns the text (or JSON) to print.
pub fn inspect(path: &Path, json: bool, progress: &Progress) -> Result<String, DumpError> {
    let mut inspections = Vec::new();
    let mut header = String::new();
    if is_data_dir(path) {
        let _ = writeln!(header, "data directory {}", path.display());
        for dir in offline::database_dirs(path)? {
            inspections.push(offline::inspect_database(&DatabaseFiles::in_directory(
                &dir,
            )?)?);
        }
    } else {
        let chain = resolve_chain(path)?;
        let m = &chain.target().manifest;
        let _ = writeln!(
            header,
            "backup {} ({}, chain of {}), snapshot at {}, written by tally {}, {} files ({}; {} stored in this backup)",
            m.id,
            m.kind,
            chain.members.len(),
            format_time(m.snapshot_ns),
            m.tally_version,
            m.files.len(),
            human_bytes(m.total_bytes),
            human_bytes(m.stored_bytes)
        );
        let has_archive = chain
            .members
            .iter()
            .any(|member| matches!(member.location, Location::Archive(_)));
        let mut report = Report::default();
        let mut limit = RateLimit::new(None);
        let scratch = temporary_sibling(path, "inspect");
        let available = if has_archive {
            check_files(&chain, Some(&scratch), &mut report, &mut limit, progress)
        } else {
            check_files(&chain, None, &mut report, &mut limit, progress)
        };
        let result = available.map(|available| {
            let mut found = Vec::new();
            for files in database_files(&chain, &available) {
                if files.manifest.exists() {
                    found.push(offline::inspect_database(&files));
                }
            }
            found
        });
        let _ = std::fs::remove_dir_all(&scratch);
        for inspection in result? {
            inspections.push(inspection?);
        }
        for problem in &report.problems {
            let _ = writeln!(header, "PROBLEM {problem}");
        }
    }
    if json {
        let value = serde_json::json!({
            "subject": header.trim(),
            "databases": inspections.iter().map(to_json).collect::<Vec<_>>(),
        });
        return serde_json::to_string_pretty(&value)
            .map_err(|e| DumpError::Failed(format!("cannot encode JSON: {e}")));
    }
    let mut out = header;
    for inspection in &inspections {
        render(&mut out, inspection);
    }
    Ok(out)
}
