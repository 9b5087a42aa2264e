//! A fuzzing harness that needs only stable Rust: random mutations of valid seed inputs, fed to
//! the same targets as libFuzzer. A failing input is written to `regressions/<target>/` so that
//! it becomes a regression test, and the harness exits 1.
//!
//! Usage: `cargo run --release -p tally-fuzz --bin fuzz-stable -- [TARGET|all] [--iterations N] [--seed S]`

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "fuzz-stable: mutation fuzzing on stable Rust\n\nUsage: fuzz-stable [TARGET|all] [--iterations N] [--seed S]\nTargets: {}",
            tally_fuzz::TARGETS.join(", ")
        );
        return ExitCode::SUCCESS;
    }
    let mut target = "all".to_string();
    let mut iterations = 100_000u64;
    let mut seed = 0x5eed_u64;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--iterations" => {
                iterations = args
                    .get(i + 1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(iterations);
                i += 1;
            }
            "--seed" => {
                seed = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(seed);
                i += 1;
            }
            other => target = other.to_string(),
        }
        i += 1;
    }
    let targets: Vec<&str> = if target == "all" {
        tally_fuzz::TARGETS.to_vec()
    } else if tally_fuzz::TARGETS.contains(&target.as_str()) {
        vec![target.as_str()]
    } else {
        eprintln!(
            "unknown target {target}; targets: {}",
            tally_fuzz::TARGETS.join(", ")
        );
        return ExitCode::from(2);
    };
    for t in targets {
        let started = std::time::Instant::now();
        match tally_fuzz::fuzz(t, iterations, seed) {
            None => println!(
                "{t}: {iterations} inputs, no failure ({:.1}s)",
                started.elapsed().as_secs_f64()
            ),
            Some(input) => {
                let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("regressions")
                    .join(t);
                let _ = std::fs::create_dir_all(&dir);
                let name = format!(
                    "crash-{:016x}",
                    input
                        .iter()
                        .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b))
                            .wrapping_mul(0x100000001b3))
                );
                let path = dir.join(name);
                let _ = std::fs::write(&path, &input);
                eprintln!(
                    "{t}: input panicked; saved to {} (it is now a regression test)",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
