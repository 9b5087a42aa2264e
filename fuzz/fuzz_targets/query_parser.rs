//! libFuzzer entry for the `query_parser` target: `cargo fuzz run query_parser --features libfuzzer` (nightly),
//! or on stable: `cargo run --release -p tally-fuzz --bin fuzz-stable -- query_parser`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tally_fuzz::run("query_parser", data));
