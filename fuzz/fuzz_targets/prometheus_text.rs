//! libFuzzer entry for the `prometheus_text` target: `cargo fuzz run prometheus_text --features libfuzzer` (nightly),
//! or on stable: `cargo run --release -p tally-fuzz --bin fuzz-stable -- prometheus_text`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tally_fuzz::run("prometheus_text", data));
