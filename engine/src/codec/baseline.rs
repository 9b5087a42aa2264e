//! Yardsticks for benchmarks: what a general-purpose compressor makes of raw bytes. It lives
//! here because the engine already links zstd; nothing in the engine calls it.

/// The length of `raw` compressed by zstd at `level` (0 when zstd refuses the input).
pub fn zstd_compressed_len(raw: &[u8], level: i32) -> usize {
    zstd::bulk::compress(raw, level).map_or(0, |compressed| compressed.len())
}
