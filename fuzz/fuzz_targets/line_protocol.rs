//! libFuzzer entry for the `line_protocol` target: `cargo fuzz run line_protocol --features libfuzzer` (nightly),
//! or on stable: `cargo run --release -p tally-fuzz --bin fuzz-stable -- line_protocol`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tally_fuzz::run("line_protocol", data));
