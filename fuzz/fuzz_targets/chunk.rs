//! libFuzzer entry for the `chunk` target: `cargo fuzz run chunk --features libfuzzer` (nightly),
//! or on stable: `cargo run --release -p tally-fuzz --bin fuzz-stable -- chunk`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tally_fuzz::run("chunk", data));
