//! Every input that ever made a fuzz target fail, replayed: each must now return normally.
//! Plus a short stable fuzzing run of every target on each test run.

use std::path::Path;

#[test]
fn every_saved_failing_input_now_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut replayed = 0;
    for target in tally_fuzz::TARGETS {
        let dir = root.join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let input = std::fs::read(entry.path()).unwrap_or_default();
            tally_fuzz::run(target, &input);
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} saved inputs");
}

#[test]
fn a_short_fuzzing_run_finds_no_failure_in_any_target() {
    for target in tally_fuzz::TARGETS {
        let iterations = if matches!(*target, "segment") {
            300
        } else {
            3_000
        };
        let found = tally_fuzz::fuzz(target, iterations, 42);
        assert!(
            found.is_none(),
            "{target} failed on input {:?}",
            found.map(|f| String::from_utf8_lossy(&f).into_owned())
        );
    }
}
