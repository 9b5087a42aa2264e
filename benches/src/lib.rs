//! Shared helpers for Tally's criterion benchmarks: seeded, realistic inputs.
#![forbid(unsafe_code)]
