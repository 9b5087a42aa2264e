//! Little-endian and LEB128 varint encoding, and a bounds-checked reader over untrusted bytes
//! that reports where decoding failed.

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as a varint, so small negative numbers stay small.
pub(crate) fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_uvarint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Why a [`Reader`] stopped; the caller turns it into a `Corrupt` error with the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    /// Offset from the start of the reader's slice.
    pub(crate) offset: usize,
    pub(crate) reason: String,
}

/// A cursor over untrusted bytes: every read is bounds-checked.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            offset: self.pos,
            reason: reason.into(),
        }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.data.get(self.pos..self.pos.saturating_add(n)) {
            Some(slice) if self.pos.checked_add(n).is_some() => {
                self.pos += n;
                Ok(slice)
            }
            _ => Err(self.error(format!(
                "needs {n} bytes but only {} remain",
                self.remaining()
            ))),
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.u64()? as i64)
    }

    #[inline]
    pub(crate) fn uvarint(&mut self) -> Result<u64, DecodeError> {
        // Most varints in sketches and rollup streams are one byte: decode those inline.
        if let Some(&byte) = self.data.get(self.pos)
            && byte < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(byte));
        }
        self.uvarint_multi_byte()
    }

    #[cold]
    fn uvarint_multi_byte(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut result: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&byte) = self.data.get(self.pos) else {
                self.pos = start;
                return Err(self.error("varint runs past the end"));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                self.pos = start;
                return Err(self.error("varint overflows 64 bits"));
            }
            result |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(result);
            }
            shift += 7;
            if shift > 63 {
                self.pos = start;
                return Err(self.error("varint longer than 10 bytes"));
            }
        }
    }

    #[inline]
    pub(crate) fn ivarint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A varint that must fit in `u32` and be at most `max`.
    pub(crate) fn uvarint_max(&mut self, max: u64, what: &str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let v = self.uvarint()?;
        if v > max {
            self.pos = start;
            return Err(self.error(format!("{what} {v} exceeds the limit {max}")));
        }
        Ok(v)
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub(crate) fn len_bytes(&mut self, max: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let n = self.uvarint_max(max as u64, what)? as usize;
        self.bytes(n)
    }

    pub(crate) fn len_str(&mut self, max: usize, what: &str) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let b = self.len_bytes(max, what)?;
        std::str::from_utf8(b).map_err(|_| DecodeError {
            offset: start,
            reason: format!("{what} is not valid UTF-8"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(u in any::<u64>(), i in any::<i64>()) {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, u);
            put_ivarint(&mut buf, i);
            let mut r = Reader::new(&buf);
            prop_assert_eq!(r.uvarint().unwrap(), u);
            prop_assert_eq!(r.ivarint().unwrap(), i);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn reader_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&data);
            while !r.is_empty() {
                if r.uvarint().is_err() && r.len_str(16, "s").is_err() && r.u32().is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn overlong_varint_is_an_error_at_its_start() {
        let data = [0xffu8; 11];
        let mut r = Reader::new(&data);
        let err = r.uvarint().unwrap_err();
        assert_eq!(err.offset, 0);
    }
}
