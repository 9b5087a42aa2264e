//! A side-by-side benchmark of `tally-dump` (ignored in normal runs; it takes minutes):
//! backup and restore throughput against `cp -r` and `tar` of the same directory, export
//! lines/s in each format, import lines/s into a stopped directory and into a running server,
//! and the server's own ingest rate with the same batches for comparison. Every step checks
//! its result, so the benchmark fails rather than report the speed of a wrong answer.
//!
//! Run (release build; tallyd must be built in the same profile):
//!
//! ```text
//! cargo build --release -p tally-server --bin tallyd
//! cargo test --release -p tally-tools --test dump_bench -- --ignored --nocapture
//! ```
//!
//! `TALLY_DUMP_BENCH_LINES` sets the data set's size (default 2,000,000 lines of 4 fields).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark harness")]

#[path = "dump_common.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::*;
use tally_engine::Engine;

fn directory_bytes(path: &Path) -> u64 {
    files_under(path).iter().map(|(_, size)| *size).sum()
}

/// CPU seconds used so far by this process and its waited-for children (`/proc/self/stat`):
/// on a shared machine wall time measures the neighbours as much as the tool, CPU time does not.
fn cpu_seconds() -> f64 {
    process_cpu_seconds("self", true)
}

/// CPU seconds of a process (`self` or a pid), with or without its waited-for children.
fn process_cpu_seconds(pid: &str, with_children: bool) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at field 3, `state`.
    let after_name = &stat[stat.rfind(')').unwrap() + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14 to 17.
    let last = if with_children { 15 } else { 13 };
    let ticks: u64 = fields[11..last]
        .iter()
        .map(|f| f.parse::<u64>().unwrap())
        .sum();
    ticks as f64 / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let output = Command::new("getconf").arg("CLK_TCK").output().unwrap();
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap()
    })
}

/// Runs `f`; prints and returns its wall seconds, and prints the CPU seconds it used.
fn timed(what: &str, f: impl FnOnce()) -> f64 {
    timed_with_cpu(what, f).0
}

/// Runs `f`; returns (wall seconds, CPU seconds of this process and its children).
fn timed_with_cpu(what: &str, f: impl FnOnce()) -> (f64, f64) {
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    f();
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    println!("  {what}: {seconds:.3} s wall, {cpu:.2} s CPU");
    (seconds, cpu)
}

fn shell(command: &str) {
    let status = Command::new("sh").arg("-c").arg(command).status().unwrap();
    assert!(status.success(), "{command}");
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture in a release build"]
fn backup_restore_export_and_import_throughput() {
    let lines: i64 = std::env::var("TALLY_DUMP_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let root = tempfile::tempdir().unwrap();
    // TALLY_DUMP_BENCH_KEEP=1 keeps the directories (printed) to rerun a step by hand.
    let root_path = if std::env::var_os("TALLY_DUMP_BENCH_KEEP").is_some() {
        let kept = root.keep();
        println!("directories kept in {}", kept.display());
        kept
    } else {
        root.path().to_path_buf()
    };
    let data = root_path.join("data");
    println!("data set: {lines} lines of 4 fields (LLM requests, 3 models x 2 providers)");
    timed("build the data set through the engine", || {
        let engine = Engine::open(&data, engine_options()).unwrap();
        let mut written = 0i64;
        let mut day_offset = 0i64;
        while written < lines {
            let mut chunk = llm_points(1, 1, day_offset * DAY);
            chunk.truncate(((lines - written) as usize).min(chunk.len()));
            for part in chunk.chunks(50_000) {
                write_points(&engine, "requests", part);
            }
            written += chunk.len() as i64;
            day_offset += 1;
        }
        engine.close().unwrap();
    });
    let bytes = directory_bytes(&data);
    let mb = bytes as f64 / 1e6;
    println!("data directory: {:.1} MB", mb);
    // The page cache is not dropped (that disturbs other work on the machine): every tool
    // reads the same warm files, which keeps the comparison fair if not cold.

    println!("backup and restore (MB/s of the data directory):");
    let d = path_str(&data).to_string();
    let r = root_path.as_path();
    let cp = timed("cp -r", || {
        shell(&format!("cp -r {d} {}/cp-copy", r.display()))
    });
    let tar = timed("tar -cf", || {
        shell(&format!("tar -cf {}/copy.tar -C {d} .", r.display()))
    });
    let tar_zstd = if Command::new("sh")
        .arg("-c")
        .arg("command -v zstd")
        .status()
        .unwrap()
        .success()
    {
        Some(timed("tar -c | zstd -1", || {
            shell(&format!(
                "tar -cf - -C {d} . | zstd -1 -q -o {}/copy.tar.zst",
                r.display()
            ))
        }))
    } else {
        None
    };
    let backup_dir = r.join("backup");
    let backup_dir_s = timed("tally-dump backup (directory)", || {
        dump_ok(&[
            "backup",
            "--data-dir",
            &d,
            "--output",
            path_str(&backup_dir),
            "--quiet",
        ]);
    });
    let backup_archive = r.join("backup.tar.zst");
    let backup_archive_s = timed("tally-dump backup (.tar.zst, zstd -1)", || {
        dump_ok(&[
            "backup",
            "--data-dir",
            &d,
            "--output",
            path_str(&backup_archive),
            "--quiet",
        ]);
    });
    let restored = r.join("restored");
    let restore_dir_s = timed("tally-dump restore (directory, verified)", || {
        dump_ok(&[
            "restore",
            path_str(&backup_dir),
            "--data-dir",
            path_str(&restored),
            "--quiet",
        ]);
    });
    let restored_archive = r.join("restored-archive");
    let restore_archive_s = timed("tally-dump restore (.tar.zst, verified)", || {
        dump_ok(&[
            "restore",
            path_str(&backup_archive),
            "--data-dir",
            path_str(&restored_archive),
            "--quiet",
        ]);
    });
    let untar = timed("tar -xf", || {
        shell(&format!(
            "mkdir {0}/untar && tar -xf {0}/copy.tar -C {0}/untar",
            r.display()
        ))
    });
    let verify_s = timed("tally-dump verify (directory backup)", || {
        dump_ok(&["verify", path_str(&backup_dir), "--quiet"]);
    });
    println!(
        "| operation | MB/s |\n|---|---|\n| cp -r | {:.0} |\n| tar -cf | {:.0} |{}\n| tally-dump backup, directory | {:.0} |\n| tally-dump backup, .tar.zst | {:.0} |\n| tar -xf | {:.0} |\n| tally-dump restore, directory | {:.0} |\n| tally-dump restore, .tar.zst | {:.0} |\n| tally-dump verify | {:.0} |",
        mb / cp,
        mb / tar,
        tar_zstd
            .map(|s| format!("\n| tar -c \\| zstd -1 | {:.0} |", mb / s))
            .unwrap_or_default(),
        mb / backup_dir_s,
        mb / backup_archive_s,
        mb / untar,
        mb / restore_dir_s,
        mb / restore_archive_s,
        mb / verify_s,
    );
    println!(
        "archive size: {:.1} MB (tar.zst by zstd -1: {})",
        std::fs::metadata(&backup_archive).unwrap().len() as f64 / 1e6,
        std::fs::metadata(r.join("copy.tar.zst"))
            .map(|m| format!("{:.1} MB", m.len() as f64 / 1e6))
            .unwrap_or_else(|_| "-".into())
    );
    assert_eq!(all_points(&restored).len(), all_points(&data).len());

    println!("export (lines/s):");
    let mut exports = Vec::new();
    for (format, file) in [
        ("lp", "all.lp"),
        ("csv", "all.csv"),
        ("jsonl", "all.jsonl"),
        ("lp", "all.lp.zst"),
    ] {
        let output = r.join(file);
        let (seconds, cpu) = timed_with_cpu(&format!("export {file}"), || {
            let run = dump_ok(&[
                "export",
                "--data-dir",
                path_str(&restored),
                "--format",
                format,
                "--output",
                path_str(&output),
                "--quiet",
            ]);
            assert!(
                run.stderr.contains(&format!("exported {lines} lines")),
                "{}",
                run.stderr
            );
        });
        exports.push((
            file.to_string(),
            lines as f64 / seconds,
            lines as f64 / cpu.max(0.01),
            std::fs::metadata(&output).unwrap().len(),
        ));
    }
    // The floor for writing a file of the JSON export's size on this machine.
    let json_bytes = std::fs::metadata(r.join("all.jsonl")).unwrap().len();
    let dd_s = timed("dd of the same bytes, fsynced", || {
        shell(&format!(
            "dd if=/dev/zero of={}/dd.out bs=1M count={} conv=fsync status=none",
            r.display(),
            json_bytes.div_ceil(1 << 20)
        ))
    });
    println!(
        "  dd writes {:.0} MB/s; the JSON export wrote {:.0} MB/s",
        json_bytes as f64 / 1e6 / dd_s,
        json_bytes as f64 / 1e6 * exports[2].1 / lines as f64
    );
    // Streaming to another program: no file to write back to disk and fsync, which on this
    // machine's disk is most of the wall time of the file exports above.
    for format in ["lp", "jsonl"] {
        let label = format!("{format} to a pipe");
        let (seconds, cpu) = timed_with_cpu(&format!("export {label}"), || {
            shell(&format!(
                "{} export --data-dir {} --format {format} --quiet | cat > /dev/null",
                env!("CARGO_BIN_EXE_tally-dump"),
                path_str(&restored)
            ));
        });
        exports.push((
            label,
            lines as f64 / seconds,
            lines as f64 / cpu.max(0.01),
            0,
        ));
    }
    println!("| export | lines/s (wall) | lines per CPU second | bytes |\n|---|---|---|---|");
    for (file, rate, cpu_rate, size) in &exports {
        println!(
            "| {file} | {:.2} M | {:.2} M | {size} |",
            rate / 1e6,
            cpu_rate / 1e6
        );
    }

    println!("import (lines/s):");
    let lp = r.join("all.lp");
    let offline_target = r.join("imported");
    let offline_s = timed("import all.lp into a stopped directory", || {
        dump_ok(&[
            "import",
            path_str(&lp),
            "--data-dir",
            path_str(&offline_target),
            "--db",
            "requests",
            "--quiet",
        ]);
    });
    let server = tally_tests::Tallyd::start_in(&r.join("server"), &[]);
    let server_pid = server.pid().to_string();
    let server_cpu_before = process_cpu_seconds(&server_pid, false);
    let (server_s, client_cpu) = timed_with_cpu("import all.lp into tallyd over HTTP", || {
        dump_ok(&[
            "import",
            path_str(&lp),
            "--host",
            &server.url(),
            "--db",
            "requests",
            "--quiet",
        ]);
    });
    let server_cpu = process_cpu_seconds(&server_pid, false) - server_cpu_before;
    println!("    tallyd used {server_cpu:.2} s CPU meanwhile");
    // The server's own rate: the same body cut into the same 5,000-line batches, sent by four
    // connections at once, with nothing else to do on the client.
    let text = std::fs::read_to_string(&lp).unwrap();
    let all_lines: Vec<&str> = text.lines().collect();
    let batches: Arc<Vec<String>> =
        Arc::new(all_lines.chunks(5000).map(|c| c.join("\n")).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let port = server.port;
    let server_cpu_before = process_cpu_seconds(&server_pid, false);
    let (raw_s, _) = timed_with_cpu(
        "raw HTTP writes of the same batches (4 connections)",
        || {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    let batches = batches.clone();
                    let next = next.clone();
                    std::thread::spawn(move || {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(body) = batches.get(i) else { return };
                            let r = tally_tests::request(
                                port,
                                "POST",
                                "/write?db=raw&precision=ns",
                                &[],
                                body.as_bytes(),
                            )
                            .unwrap();
                            assert_eq!(r.status, 204, "{}", r.text());
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
        },
    );
    let raw_server_cpu = process_cpu_seconds(&server_pid, false) - server_cpu_before;
    println!("    tallyd used {raw_server_cpu:.2} s CPU meanwhile");
    println!(
        "| import | lines/s |\n|---|---|\n| into a stopped directory | {:.2} M |\n| into tallyd over HTTP | {:.2} M |\n| raw HTTP client, same batches (server's ingest rate) | {:.2} M |\n| tally-dump's own work per CPU second (client side of the HTTP import) | {:.2} M |\n| tallyd's ingest per CPU second (during the raw writes) | {:.2} M |",
        lines as f64 / offline_s / 1e6,
        lines as f64 / server_s / 1e6,
        lines as f64 / raw_s / 1e6,
        lines as f64 / client_cpu.max(0.01) / 1e6,
        lines as f64 / raw_server_cpu.max(0.01) / 1e6,
    );
    let count = server.query("requests", "SELECT count(latency_ms) FROM llm");
    assert_eq!(
        tally_tests::rows(&count)[0][1],
        serde_json::json!(lines),
        "{count}"
    );
}
