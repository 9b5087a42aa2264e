//! Bit-serial writing and reading, most significant bit first, for the Gorilla-style streams
//! (delta-of-delta and XOR).
//!
//! The writer can be closed after any value (the appenders do this after every push) and resumed from its partial last
//! byte. The reader loads eight bytes at a time; past the end of its input it reads zero bits
//! and counts them, so a decoder runs to completion without bounds checks in its loop and then
//! asks [`BitReader::overran`] whether the stream really held what it decoded.

/// The low `width` bits set; `width` may be 0..=64.
#[inline]
pub(crate) fn low_mask(width: u32) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

/// Where encoders send bits: a real writer, or a counter that sizes an encoding without
/// writing it.
pub(crate) trait BitSink {
    /// Writes the low `width` bits of `value`, `width` at most 64.
    fn write(&mut self, value: u64, width: u32);
}

pub(crate) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Pending bits, right-aligned; fewer than eight after a flush.
    pending_bits: u128,
    pending_count: u32,
}

impl<'a> BitWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            pending_bits: 0,
            pending_count: 0,
        }
    }

    /// Continues a stream whose last byte holds `used_bits` bits (0: the stream is
    /// byte-aligned), as returned by [`BitWriter::finish`].
    pub(crate) fn resume(out: &'a mut Vec<u8>, used_bits: u8) -> Self {
        if used_bits != 0
            && used_bits < 8
            && let Some(last) = out.pop()
        {
            let used = u32::from(used_bits);
            return BitWriter {
                out,
                pending_bits: u128::from(last >> (8 - used)),
                pending_count: used,
            };
        }
        BitWriter::new(out)
    }

    /// Moves every whole pending byte to the output.
    #[inline]
    fn flush_whole_bytes(&mut self) {
        let whole_bytes = self.pending_count / 8;
        if whole_bytes == 0 {
            return;
        }
        let aligned = self.pending_bits << (128 - self.pending_count);
        let length = self.out.len();
        // Copying a fixed sixteen bytes and cutting back is cheaper than a variable copy.
        self.out.extend_from_slice(&aligned.to_be_bytes());
        self.out.truncate(length + whole_bytes as usize);
        self.pending_count -= whole_bytes * 8;
        self.pending_bits &= (1u128 << self.pending_count) - 1;
    }

    /// Flushes the pending bits, zero-padding the last byte, and returns how many bits of that
    /// last byte are used (0 when the stream ends on a byte boundary).
    pub(crate) fn finish(mut self) -> u8 {
        self.flush_whole_bytes();
        if self.pending_count > 0 {
            self.out
                .push((self.pending_bits << (8 - self.pending_count)) as u8);
        }
        self.pending_count as u8
    }
}

impl BitSink for BitWriter<'_> {
    #[inline]
    fn write(&mut self, value: u64, width: u32) {
        debug_assert!(width <= 64, "BUG: BitWriter::write takes at most 64 bits");
        if self.pending_count + width > 128 {
            self.flush_whole_bytes();
        }
        self.pending_bits = (self.pending_bits << width) | u128::from(value & low_mask(width));
        self.pending_count += width;
    }
}

/// Counts bits instead of writing them.
#[derive(Default)]
pub(crate) struct BitCounter {
    pub(crate) bits: u64,
}

impl BitSink for BitCounter {
    #[inline]
    fn write(&mut self, _value: u64, width: u32) {
        self.bits += u64::from(width);
    }
}

pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Index of the next byte to load; may run past `data.len()` once zeros are being read.
    next_byte: usize,
    /// Unconsumed bits, left-aligned. Bits below the first `available` are the stream's
    /// following bits or zero, never garbage, so refills may OR over them.
    buffer: u64,
    available: u32,
}

impl<'a> BitReader<'a> {
    /// Reads `data` from its first byte.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            next_byte: 0,
            buffer: 0,
            available: 0,
        }
    }

    /// Makes at least 56 bits available.
    #[inline]
    pub(crate) fn refill(&mut self) {
        let word = match self
            .data
            .get(self.next_byte..)
            .and_then(|rest| rest.first_chunk::<8>())
        {
            Some(bytes) => u64::from_be_bytes(*bytes),
            None => self.tail_word(),
        };
        self.buffer |= word >> self.available;
        self.next_byte += ((63 - self.available) >> 3) as usize;
        self.available |= 56;
    }

    #[cold]
    fn tail_word(&self) -> u64 {
        let mut padded = [0u8; 8];
        if let Some(rest) = self.data.get(self.next_byte..) {
            let length = rest.len().min(8);
            padded[..length].copy_from_slice(&rest[..length]);
        }
        u64::from_be_bytes(padded)
    }

    /// The next 64 bits without consuming them; only the first `available` are meaningful.
    #[inline]
    pub(crate) fn peek(&self) -> u64 {
        self.buffer
    }

    /// Drops `width` bits, at most `available`.
    #[inline]
    pub(crate) fn consume(&mut self, width: u32) {
        debug_assert!(width <= self.available && width < 64);
        self.buffer <<= width;
        self.available -= width;
    }

    /// Reads `width` bits, 1..=56.
    #[inline]
    pub(crate) fn read(&mut self, width: u32) -> u64 {
        debug_assert!((1..=56).contains(&width));
        if self.available < width {
            self.refill();
        }
        let value = self.buffer >> (64 - width);
        self.buffer <<= width;
        self.available -= width;
        value
    }

    /// Reads `width` bits, 1..=64.
    #[inline]
    pub(crate) fn read_wide(&mut self, width: u32) -> u64 {
        if width <= 56 {
            self.read(width)
        } else {
            let high = self.read(width - 32);
            (high << 32) | self.read(32)
        }
    }

    /// How many bits have been consumed.
    pub(crate) fn consumed_bits(&self) -> usize {
        self.next_byte * 8 - self.available as usize
    }

    /// Whether more bits were consumed than `data` holds.
    pub(crate) fn overran(&self) -> bool {
        self.consumed_bits() > self.data.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree_on_mixed_widths_across_resumes() {
        let fields: Vec<(u64, u32)> = (1..=64u32)
            .map(|width| (0x9e37_79b9_7f4a_7c15u64.rotate_left(width), width))
            .collect();
        let mut bytes = Vec::new();
        let mut used = 0u8;
        for &(value, width) in &fields {
            let mut writer = BitWriter::resume(&mut bytes, used);
            writer.write(value, width);
            used = writer.finish();
        }
        let total_bits: usize = fields.iter().map(|&(_, width)| width as usize).sum();
        assert_eq!(bytes.len(), total_bits.div_ceil(8));
        let mut reader = BitReader::new(&bytes);
        for &(value, width) in &fields {
            assert_eq!(
                reader.read_wide(width),
                value & low_mask(width),
                "width {width}"
            );
        }
        assert!(!reader.overran());
        reader.read(8);
        assert!(reader.overran());
    }

    #[test]
    fn counter_counts_what_the_writer_writes() {
        let mut bytes = Vec::new();
        let mut writer = BitWriter::new(&mut bytes);
        let mut counter = BitCounter::default();
        for width in [1, 7, 13, 56, 3, 64, 64, 0, 64] {
            writer.write(5, width);
            counter.write(5, width);
        }
        writer.write(u64::MAX, 64);
        counter.write(u64::MAX, 64);
        writer.finish();
        assert_eq!(bytes.len() as u64, counter.bits.div_ceil(8));
    }
}
