//! libFuzzer entry for the `wal` target: `cargo fuzz run wal --features libfuzzer` (nightly),
//! or on stable: `cargo run --release -p tally-fuzz --bin fuzz-stable -- wal`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tally_fuzz::run("wal", data));
