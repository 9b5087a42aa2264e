//! `tally-dump` against stopped data directories: backup and restore (directories and
//! archives, full and incremental, time ranges), verify and restore of damaged backups, kills
//! in the middle, export and offline import in every format, inspect.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[path = "dump_common.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn fresh_dataset(root: &Path) -> std::path::PathBuf {
    let data = root.join("data");
    build_dataset(&data, 3, 60);
    data
}

fn read_backup_manifest(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path.join("backup.json")).unwrap()).unwrap()
}

#[test]
fn a_full_and_an_incremental_backup_restore_to_the_same_answers_as_the_original() {
    let root = tempfile::tempdir().unwrap();
    let data = fresh_dataset(root.path());
    let before_points = all_points(&data);
    let before_answers = answers(&data);
    for output in ["full", "full.tar.zst"] {
        let backup = root.path().join(output);
        dump_ok(&[
            "backup",
            "--data-dir",
            path_str(&data),
            "--output",
            path_str(&backup),
        ]);
        let verified = dump_ok(&["verify", path_str(&backup)]);
        assert!(
            verified.stdout.contains("0 problem(s)"),
            "{}",
            verified.stdout
        );
        let restored = root.path().join(format!("restored-{output}"));
        dump_ok(&[
            "restore",
            path_str(&backup),
            "--data-dir",
            path_str(&restored),
        ]);
        assert_same_points(&all_points(&restored), &before_points, output);
        assert_eq!(answers(&restored), before_answers, "{output}");
    }
    // More data: a new day of requests, flushed into new segments.
    {
        let engine = tally_engine::Engine::open(&data, engine_options()).unwrap();
        write_points(&engine, "requests", &llm_points(1, 30, 3 * common::DAY));
        engine.database("requests").unwrap().flush(true).unwrap();
    }
    let after_points = all_points(&data);
    let after_answers = answers(&data);
    assert_ne!(after_points, before_points);
    for (parent, output) in [
        ("full", "incremental"),
        ("full.tar.zst", "incremental.tar.zst"),
    ] {
        let parent = root.path().join(parent);
        let backup = root.path().join(output);
        let run = dump_ok(&[
            "backup",
            "--data-dir",
            path_str(&data),
            "--incremental-from",
            path_str(&parent),
            "--output",
            path_str(&backup),
        ]);
        assert!(run.stderr.contains("incremental"), "{}", run.stderr);
        dump_ok(&["verify", path_str(&backup)]);
        let restored = root.path().join(format!("restored-{output}"));
        dump_ok(&[
            "restore",
            path_str(&backup),
            "--data-dir",
            path_str(&restored),
        ]);
        assert_same_points(&all_points(&restored), &after_points, output);
        assert_eq!(answers(&restored), after_answers, "{output}");
    }
    // The incremental directory stores only what changed: the old segments are referenced.
    let full = read_backup_manifest(&root.path().join("full"));
    let incremental = read_backup_manifest(&root.path().join("incremental"));
    let id = incremental["id"].as_str().unwrap();
    let referenced = incremental["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["stored_in"] == full["id"])
        .count();
    assert!(referenced >= 3, "{incremental:#}");
    assert!(
        incremental["stored_bytes"].as_u64().unwrap()
            < incremental["total_bytes"].as_u64().unwrap()
    );
    assert_eq!(incremental["parent"]["id"], full["id"]);
    assert_eq!(incremental["chain"], serde_json::json!([full["id"], id]));
    for file in incremental["files"].as_array().unwrap() {
        assert_eq!(file["format_version"], 1, "{file}");
    }
}

#[test]
fn a_time_range_backup_keeps_the_overlapping_blocks_and_the_whole_wal() {
    let root = tempfile::tempdir().unwrap();
    let data = fresh_dataset(root.path());
    let backup = root.path().join("day2");
    // The second day only: 2026-12-01.
    dump_ok(&[
        "backup",
        "--data-dir",
        path_str(&data),
        "--db",
        "requests",
        "--start",
        "2026-12-01T00:00:00Z",
        "--end",
        "2026-12-01T23:59:59Z",
        "--output",
        path_str(&backup),
    ]);
    let manifest = read_backup_manifest(&backup);
    assert_eq!(
        manifest["selection"]["databases"],
        serde_json::json!(["requests"])
    );
    let segments: Vec<&serde_json::Value> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "segment")
        .collect();
    assert_eq!(segments.len(), 1, "{manifest:#}");
    let restored = root.path().join("restored");
    dump_ok(&[
        "restore",
        path_str(&backup),
        "--data-dir",
        path_str(&restored),
    ]);
    let points = all_points(&restored);
    let day = |key: &str| {
        let t: i64 = key.rsplit('|').next().unwrap().parse().unwrap();
        (t - BASE).div_euclid(DAY)
    };
    // Day 1 (the segment) and day 3 (the points left in the WAL) only.
    let days: std::collections::BTreeSet<i64> = points.keys().map(|k| day(k)).collect();
    assert_eq!(days, [1, 3].into_iter().collect());
    let original = all_points(&data);
    for (key, value) in &points {
        assert_eq!(original.get(key), Some(value), "{key}");
    }
}

/// Damages one file of a fresh copy of `backup` and checks that verify names it and restore
/// refuses with the same report, leaving the target alone.
fn damaged_backup_is_caught(root: &Path, backup: &Path, damage: &dyn Fn(&Path) -> String) {
    let copy = root.join(format!(
        "damaged-{}",
        backup.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&copy);
    let _ = std::fs::remove_file(&copy);
    if backup.is_dir() {
        std::process::Command::new("cp")
            .arg("-r")
            .arg(backup)
            .arg(&copy)
            .status()
            .unwrap();
    } else {
        std::fs::copy(backup, &copy).unwrap();
    }
    let named = damage(&copy);
    let verified = dump(&["verify", path_str(&copy)]);
    assert_eq!(verified.code, 1, "{}\n{}", verified.stdout, verified.stderr);
    let problems: Vec<&str> = verified
        .stdout
        .lines()
        .filter(|l| l.starts_with("PROBLEM"))
        .collect();
    assert!(
        problems.iter().any(|l| l.contains(&named)),
        "verify did not name {named}:\n{}",
        verified.stdout
    );
    let target = root.join("never-restored");
    let refused = dump(&["restore", path_str(&copy), "--data-dir", path_str(&target)]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        !target.exists(),
        "restore of a damaged backup created {}",
        target.display()
    );
    let refused_problems: Vec<&str> = refused
        .stderr
        .lines()
        .filter(|l| l.starts_with("PROBLEM"))
        .collect();
    assert_eq!(
        refused_problems, problems,
        "restore's report differs from verify's"
    );
    assert!(
        refused.stderr.contains("restore refused"),
        "{}",
        refused.stderr
    );
}

#[test]
fn truncated_bit_flipped_and_missing_files_are_caught_by_verify_and_refused_by_restore() {
    let root = tempfile::tempdir().unwrap();
    let data = fresh_dataset(root.path());
    let backup = root.path().join("full");
    dump_ok(&[
        "backup",
        "--data-dir",
        path_str(&data),
        "--output",
        path_str(&backup),
    ]);
    let find = |dir: &Path, suffix: &str| {
        files_under(&dir.join("files"))
            .into_iter()
            .find(|(p, _)| p.to_string_lossy().ends_with(suffix))
            .map(|(p, _)| p)
            .unwrap()
    };
    damaged_backup_is_caught(root.path(), &backup, &|copy| {
        let segment = find(copy, ".tseg");
        let bytes = std::fs::read(&segment).unwrap();
        std::fs::write(&segment, &bytes[..bytes.len() - 100]).unwrap();
        segment.file_name().unwrap().to_string_lossy().into_owned()
    });
    damaged_backup_is_caught(root.path(), &backup, &|copy| {
        let segment = find(copy, ".tseg");
        let mut bytes = std::fs::read(&segment).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(&segment, &bytes).unwrap();
        segment.file_name().unwrap().to_string_lossy().into_owned()
    });
    damaged_backup_is_caught(root.path(), &backup, &|copy| {
        let index = find(copy, ".tidx");
        let mut bytes = std::fs::read(&index).unwrap();
        bytes[20] ^= 0x01;
        std::fs::write(&index, &bytes).unwrap();
        index.file_name().unwrap().to_string_lossy().into_owned()
    });
    damaged_backup_is_caught(root.path(), &backup, &|copy| {
        let wal = find(copy, ".wal");
        std::fs::remove_file(&wal).unwrap();
        wal.file_name().unwrap().to_string_lossy().into_owned()
    });
    damaged_backup_is_caught(root.path(), &backup, &|copy| {
        let manifest = find(copy, "MANIFEST");
        let mut bytes = std::fs::read(&manifest).unwrap();
        bytes[9] ^= 0x02;
        std::fs::write(&manifest, &bytes).unwrap();
        "MANIFEST".to_string()
    });
    // An archive with a flipped byte in its compressed stream.
    let archive = root.path().join("full.tar.zst");
    dump_ok(&[
        "backup",
        "--data-dir",
        path_str(&data),
        "--output",
        path_str(&archive),
    ]);
    damaged_backup_is_caught(root.path(), &archive, &|copy| {
        let mut bytes = std::fs::read(copy).unwrap();
        let at = bytes.len() * 2 / 3;
        bytes[at] ^= 0x40;
        std::fs::write(copy, &bytes).unwrap();
        copy.file_name().unwrap().to_string_lossy().into_owned()
    });
}

/// Starts `tally-dump args`, waits until `started` says the work is under way, kills it with
/// SIGKILL and returns whether it was still running when killed.
fn kill_midway(args: &[&str], started: &dyn Fn() -> bool) -> bool {
    let mut child = dump_command().args(args).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started() {
        assert!(Instant::now() < deadline, "the operation never started");
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    running
}

fn hidden_siblings(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!(".{name}."))
        })
        .collect()
}

#[test]
fn a_killed_backup_or_restore_leaves_nothing_that_looks_complete() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    build_dataset(&data, 3, 5);
    for output in ["killed", "killed.tar.zst"] {
        let backup = root.path().join(output);
        let running = kill_midway(
            &[
                "backup",
                "--data-dir",
                path_str(&data),
                "--max-rate",
                "1MiB",
                "--output",
                path_str(&backup),
            ],
            &|| !hidden_siblings(root.path(), output).is_empty(),
        );
        assert!(running, "the backup finished before it could be killed");
        assert!(
            !backup.exists(),
            "a killed backup left {}",
            backup.display()
        );
        for leftover in hidden_siblings(root.path(), output) {
            let verified = dump(&["verify", path_str(&leftover)]);
            assert_eq!(
                verified.code,
                1,
                "a leftover verifies: {}",
                leftover.display()
            );
        }
        // The data directory was unlocked by the kill: a new backup works.
        dump_ok(&[
            "backup",
            "--data-dir",
            path_str(&data),
            "--output",
            path_str(&backup),
        ]);
    }
    let backup = root.path().join("killed");
    let target = root.path().join("restore-target");
    let running = kill_midway(
        &[
            "restore",
            path_str(&backup),
            "--max-rate",
            "1MiB",
            "--data-dir",
            path_str(&target),
        ],
        &|| !hidden_siblings(root.path(), "restore-target").is_empty(),
    );
    assert!(running, "the restore finished before it could be killed");
    assert!(
        !target.exists(),
        "a killed restore left {}",
        target.display()
    );
    dump_ok(&[
        "restore",
        path_str(&backup),
        "--data-dir",
        path_str(&target),
    ]);
    assert_eq!(all_points(&target), all_points(&data));
}

#[test]
fn restore_refuses_a_non_empty_directory_unless_forced() {
    let root = tempfile::tempdir().unwrap();
    let data = fresh_dataset(root.path());
    let backup = root.path().join("full");
    dump_ok(&[
        "backup",
        "--data-dir",
        path_str(&data),
        "--db",
        "requests",
        "--output",
        path_str(&backup),
    ]);
    let target = root.path().join("busy");
    build_dataset(&target, 1, 3600);
    let refused = dump(&[
        "restore",
        path_str(&backup),
        "--data-dir",
        path_str(&target),
    ]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    dump_ok(&[
        "restore",
        path_str(&backup),
        "--data-dir",
        path_str(&target),
        "--force",
    ]);
    let restored = all_points(&target);
    let original = all_points(&data);
    let telemetry = |points: &std::collections::BTreeMap<String, String>| {
        points
            .iter()
            .filter(|(k, _)| k.starts_with("requests|"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(telemetry(&restored), telemetry(&original));
    // The database the backup does not hold stays.
    assert!(restored.keys().any(|k| k.starts_with("odd names ü|")));
}

#[test]
fn export_and_offline_import_keep_every_point_type_and_tag() {
    let root = tempfile::tempdir().unwrap();
    let data = fresh_dataset(root.path());
    let original = all_points(&data);
    for (format, file, compress) in [
        ("csv", "all.csv", None),
        ("jsonl", "all.jsonl.zst", None),
        ("lp", "all.lp.gz", None),
        ("csv", "all-gz.csv", Some("gzip")),
    ] {
        let output = root.path().join(file);
        let mut args = vec![
            "export",
            "--data-dir",
            path_str(&data),
            "--format",
            format,
            "--output",
            path_str(&output),
        ];
        if let Some(c) = compress {
            args.extend(["--compress", c]);
        }
        let exported = dump_ok(&args);
        let target = root.path().join(format!("imported-{file}"));
        let imported = dump(&["import", path_str(&output), "--data-dir", path_str(&target)]);
        assert_eq!(imported.code, 0, "{}", imported.stderr);
        let points = all_points(&target);
        if format == "lp" {
            // Line protocol cannot carry NaN and infinities: they are left out, and said so.
            assert!(
                exported.stderr.contains("NaN or infinite values left out"),
                "{}",
                exported.stderr
            );
            assert_same_points(&points, &finite_only(&original), file);
        } else {
            assert_same_points(&points, &original, file);
        }
    }
}

#[test]
fn export_selects_databases_measurements_and_a_time_range() {
    let root = tempfile::tempdir().unwrap();
    let data = fresh_dataset(root.path());
    let run = dump_ok(&[
        "export",
        "--data-dir",
        path_str(&data),
        "--db",
        "requests",
        "--measurement",
        "^llm$",
        "--start",
        &(BASE + DAY).to_string(),
        "--end",
        &(BASE + DAY + 3599 * 1_000_000_000).to_string(),
    ]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 60, "{}", run.stderr);
    for line in lines {
        let t: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(
            (BASE + DAY..BASE + DAY + 3600 * 1_000_000_000).contains(&t),
            "{line}"
        );
        assert!(line.starts_with("llm,"), "{line}");
    }
}

#[test]
fn offline_import_reports_rejected_lines_and_keeps_the_valid_ones() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("mixed.lp");
    std::fs::write(
        &input,
        "m v=1 1\nm v=oops 2\nm v=3 3\nm v=\"a string\" 4\nm,t= v=5 5\nm v=6 6\n",
    )
    .unwrap();
    let target = root.path().join("data");
    let run = dump(&[
        "import",
        path_str(&input),
        "--data-dir",
        path_str(&target),
        "--db",
        "x",
        "--batch-lines",
        "2",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for line in [2, 4, 5] {
        assert!(
            run.stderr.contains(&format!("mixed.lp:{line}:")),
            "line {line} not reported:\n{}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.contains("mixed.lp:1:") && !run.stderr.contains("mixed.lp:6:"),
        "{}",
        run.stderr
    );
    let points = all_points(&target);
    let times: Vec<i64> = points
        .keys()
        .map(|k| k.rsplit('|').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(times, vec![1, 3, 6]);
}

#[test]
fn inspect_prints_databases_segments_series_and_encodings() {
    let root = tempfile::tempdir().unwrap();
    let data = fresh_dataset(root.path());
    let text = dump_ok(&["inspect", path_str(&data)]).stdout;
    assert!(text.contains("database \"requests\": 6 series"), "{text}");
    assert!(text.contains("segments:") && text.contains("raw"), "{text}");
    assert!(text.contains("timestamps "), "{text}");
    assert!(text.contains("B/value"), "{text}");
    let backup = root.path().join("full.tar.zst");
    dump_ok(&[
        "backup",
        "--data-dir",
        path_str(&data),
        "--output",
        path_str(&backup),
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&dump_ok(&["inspect", path_str(&backup), "--json"]).stdout).unwrap();
    let databases = json["databases"].as_array().unwrap();
    assert_eq!(databases.len(), 2);
    let telemetry = databases.iter().find(|d| d["name"] == "requests").unwrap();
    assert_eq!(telemetry["segment_values"], 3 * 1440 * 4);
}

#[test]
fn verify_passes_a_clean_data_directory_and_names_a_damaged_segment() {
    let root = tempfile::tempdir().unwrap();
    let data = fresh_dataset(root.path());
    let clean = dump_ok(&["verify", path_str(&data)]);
    assert!(clean.stdout.contains("0 problem(s)"), "{}", clean.stdout);
    let segment = files_under(&data)
        .into_iter()
        .find(|(p, _)| p.to_string_lossy().ends_with(".tseg"))
        .unwrap()
        .0;
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[100] ^= 0x08;
    std::fs::write(&segment, &bytes).unwrap();
    let damaged = dump(&["verify", path_str(&data)]);
    assert_eq!(damaged.code, 1);
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        damaged
            .stdout
            .lines()
            .any(|l| l.starts_with("PROBLEM") && l.contains(&name) && l.contains("at byte")),
        "{}",
        damaged.stdout
    );
}

#[test]
fn usage_errors_exit_with_code_two() {
    assert_eq!(dump(&["backup", "--output", "/nonexistent/x"]).code, 2);
    assert_eq!(dump(&["frobnicate"]).code, 2);
    assert_eq!(
        dump(&["export", "--data-dir", "/tmp", "--start", "yesterday"]).code,
        2
    );
    let help = dump_ok(&["--help"]).stdout;
    assert!(
        help.contains("Examples:") && help.contains("Exit codes:"),
        "{help}"
    );
}
