//! libFuzzer entry for the `segment` target: `cargo fuzz run segment --features libfuzzer` (nightly),
//! or on stable: `cargo run --release -p tally-fuzz --bin fuzz-stable -- segment`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tally_fuzz::run("segment", data));
