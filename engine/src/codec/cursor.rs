//! A bounds-checked reader over a stream's header bytes that turns every shortfall into a
//! [`CodecError`] naming the offset.

use super::CodecError;
use super::varint::{self, VarintError};

pub(crate) struct ByteCursor<'a> {
    data: &'a [u8],
    position: usize,
    stream: &'static str,
}

impl<'a> ByteCursor<'a> {
    pub(crate) fn new(data: &'a [u8], position: usize, stream: &'static str) -> Self {
        ByteCursor {
            data,
            position,
            stream,
        }
    }

    pub(crate) fn position(&self) -> usize {
        self.position
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> CodecError {
        CodecError::new(self.stream, self.position, reason)
    }

    pub(crate) fn error_at(&self, offset: usize, reason: impl Into<String>) -> CodecError {
        CodecError::new(self.stream, offset, reason)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, CodecError> {
        match self.data.get(self.position) {
            Some(&byte) => {
                self.position += 1;
                Ok(byte)
            }
            None => Err(self.error(format!(
                "stream ends before the {what} (needs 1 byte, {} left)",
                self.remaining()
            ))),
        }
    }

    pub(crate) fn i64_le(&mut self, what: &str) -> Result<i64, CodecError> {
        let bytes = self.bytes(8, what)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(i64::from_le_bytes(array))
    }

    pub(crate) fn varint(&mut self, what: &str) -> Result<u64, CodecError> {
        let rest = self.data.get(self.position..).unwrap_or(&[]);
        match varint::read_u64(rest) {
            Ok((value, taken)) => {
                self.position += taken;
                Ok(value)
            }
            Err(VarintError::Truncated) => {
                Err(self.error(format!("stream ends inside the {what} varint")))
            }
            Err(VarintError::Overlong) => Err(self.error(format!(
                "the {what} varint is longer than 64 bits (10 bytes)"
            ))),
        }
    }

    pub(crate) fn signed_varint(&mut self, what: &str) -> Result<i64, CodecError> {
        self.varint(what).map(varint::unzigzag)
    }

    pub(crate) fn bytes(&mut self, length: usize, what: &str) -> Result<&'a [u8], CodecError> {
        let end = self.position.checked_add(length);
        match end.and_then(|end| self.data.get(self.position..end)) {
            Some(bytes) => {
                self.position += length;
                Ok(bytes)
            }
            None => Err(self.error(format!(
                "stream ends inside the {what}: needs {length} bytes, {} left",
                self.remaining()
            ))),
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.position)
    }
}
