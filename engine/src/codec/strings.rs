//! String streams.
//!
//! - StringRaw: per value, the varint byte length and the UTF-8 bytes.
//! - StringDict: the varint length of an inner stream, then that inner stream as one zstd
//!   frame. The inner stream is the varint number of distinct strings `d` (1..=count), each
//!   distinct string as varint length and bytes in order of first appearance, then `count`
//!   indexes into that list, bit-packed (see `packed.rs`) with width `bit_width(d - 1)`.

use std::collections::HashMap;
use std::io::Read;

use super::cursor::ByteCursor;
use super::packed::{self, BLOCK, bit_width, block_start, packed_size, unpacker};
use super::{CodecError, VALUE_STREAM, ValueEncoding, constant, varint};

/// The largest inner StringDict stream a decoder inflates; the encoder falls back to
/// StringRaw above it. It bounds what a corrupt frame can make a reader allocate.
pub(crate) const MAX_DICT_INNER_BYTES: usize = 64 << 20;

/// The zstd level for StringDict: the default, a good balance for write-once chunks.
const ZSTD_LEVEL: i32 = 3;

pub(crate) fn raw_size(values: &[String]) -> usize {
    values
        .iter()
        .map(|value| constant::string_size(value))
        .sum()
}

pub(crate) fn encode_raw<'a>(values: impl IntoIterator<Item = &'a str>, out: &mut Vec<u8>) {
    for value in values {
        constant::encode_string(value, out);
    }
}

/// The zstd-compressed StringDict stream of `values`, or `None` when the inner stream is
/// too large or compression fails.
pub(crate) fn encode_dict(values: &[String]) -> Option<Vec<u8>> {
    let mut indexes: HashMap<&str, u64> = HashMap::new();
    let mut distinct: Vec<&str> = Vec::new();
    let mut positions = Vec::with_capacity(values.len());
    for value in values {
        let index = *indexes.entry(value.as_str()).or_insert_with(|| {
            distinct.push(value.as_str());
            distinct.len() as u64 - 1
        });
        positions.push(index);
    }
    let width = bit_width((distinct.len() as u64).saturating_sub(1));
    let mut inner = Vec::new();
    varint::write_u64(&mut inner, distinct.len() as u64);
    encode_raw(distinct.iter().copied(), &mut inner);
    packed::pack(positions, width, &mut inner);
    if inner.len() > MAX_DICT_INNER_BYTES {
        return None;
    }
    let compressed = zstd::bulk::compress(&inner, ZSTD_LEVEL).ok()?;
    let mut stream = Vec::with_capacity(compressed.len() + varint::MAX_VARINT_BYTES);
    varint::write_u64(&mut stream, inner.len() as u64);
    stream.extend_from_slice(&compressed);
    Some(stream)
}

/// Appends the smallest string encoding of `values` and names it.
pub(crate) fn encode_best(values: &[String], out: &mut Vec<u8>) -> ValueEncoding {
    if let Some(first) = values.first()
        && values.iter().all(|value| value == first)
    {
        constant::encode_string(first, out);
        return ValueEncoding::Constant;
    }
    let raw_size = raw_size(values);
    if let Some(dict) = encode_dict(values) {
        // Ties stay raw, which decodes without inflating.
        if dict.len() < raw_size {
            out.extend_from_slice(&dict);
            return ValueEncoding::StringDict;
        }
    }
    encode_raw(values.iter().map(String::as_str), out);
    ValueEncoding::StringRaw
}

/// Reads one varint-length-prefixed UTF-8 string.
pub(crate) fn read_string<'a>(
    cursor: &mut ByteCursor<'a>,
    what: &str,
) -> Result<&'a str, CodecError> {
    let length_offset = cursor.position();
    let length = cursor.varint(what)?;
    let length = usize::try_from(length)
        .ok()
        .filter(|&length| length <= cursor.remaining())
        .ok_or_else(|| {
            cursor.error_at(
                length_offset,
                format!(
                    "{what} is {length} bytes long but only {} bytes follow",
                    cursor.remaining()
                ),
            )
        })?;
    let start = cursor.position();
    let bytes = cursor.bytes(length, what)?;
    std::str::from_utf8(bytes).map_err(|error| {
        cursor.error_at(
            start + error.valid_up_to(),
            format!("{what} is not valid UTF-8"),
        )
    })
}

pub(crate) fn decode_raw(
    data: &[u8],
    count: usize,
    out: &mut Vec<String>,
) -> Result<(), CodecError> {
    let mut cursor = ByteCursor::new(data, 0, VALUE_STREAM);
    out.reserve(count);
    for _ in 0..count {
        out.push(read_string(&mut cursor, "string")?.to_owned());
    }
    Ok(())
}

pub(crate) fn decode_dict(
    data: &[u8],
    count: usize,
    out: &mut Vec<String>,
) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    let mut cursor = ByteCursor::new(data, 0, VALUE_STREAM);
    let inner_length = cursor.varint("dictionary stream length")?;
    let inner_length = usize::try_from(inner_length)
        .ok()
        .filter(|&length| length <= MAX_DICT_INNER_BYTES)
        .ok_or_else(|| {
            cursor.error_at(
                0,
                format!(
                    "dictionary stream length is {inner_length} bytes, at most \
                     {MAX_DICT_INNER_BYTES} expected"
                ),
            )
        })?;
    let frame_start = cursor.position();
    let frame = data.get(frame_start..).unwrap_or(&[]);
    let mut inner = Vec::new();
    // Reading through `take` grows the buffer only as the frame really inflates, so a
    // corrupt length cannot make this allocate more than the frame produces.
    let inflated = zstd::stream::read::Decoder::with_buffer(frame)
        .map(|decoder| decoder.single_frame())
        .and_then(|decoder| {
            decoder
                .take(inner_length as u64 + 1)
                .read_to_end(&mut inner)
        });
    if let Err(error) = inflated {
        return Err(CodecError::new(
            VALUE_STREAM,
            frame_start,
            format!("dictionary stream does not inflate: {error}"),
        ));
    }
    if inner.len() != inner_length {
        return Err(CodecError::new(
            VALUE_STREAM,
            frame_start,
            format!(
                "dictionary stream inflates to {} bytes, {inner_length} expected",
                inner.len().min(inner_length + 1)
            ),
        ));
    }
    // Offsets below are within the inflated stream; they are reported at the frame's start
    // plus that offset, which is the best a reader of the compressed bytes can be told.
    decode_dict_inner(&inner, count, out).map_err(|error| CodecError {
        offset: frame_start,
        reason: format!(
            "{} (byte {} of the inflated dictionary stream)",
            error.reason, error.offset
        ),
        ..error
    })
}

fn decode_dict_inner(inner: &[u8], count: usize, out: &mut Vec<String>) -> Result<(), CodecError> {
    let mut cursor = ByteCursor::new(inner, 0, VALUE_STREAM);
    let distinct_count = cursor.varint("dictionary size")?;
    if distinct_count == 0 || distinct_count > count as u64 {
        return Err(cursor.error_at(
            0,
            format!("dictionary holds {distinct_count} strings, 1..={count} expected"),
        ));
    }
    let mut distinct = Vec::with_capacity(distinct_count as usize);
    for _ in 0..distinct_count {
        distinct.push(read_string(&mut cursor, "dictionary string")?);
    }
    let width = bit_width(distinct_count - 1);
    let packed_start = cursor.position();
    let packed = cursor.bytes(packed_size(count, width), "dictionary indexes")?;
    let unpack = unpacker(width);
    let mut block = [[0u64; 8]; BLOCK / 8];
    out.reserve(count);
    for block_index in 0..count.div_ceil(BLOCK) {
        let taken = (count - block_index * BLOCK).min(BLOCK);
        unpack(
            packed.get(block_start(block_index, width)..).unwrap_or(&[]),
            &mut block,
        );
        for (position, &index) in block.as_flattened()[..taken].iter().enumerate() {
            let Some(value) = usize::try_from(index)
                .ok()
                .and_then(|index| distinct.get(index))
            else {
                let value_index = block_index * BLOCK + position;
                return Err(cursor.error_at(
                    packed_start + value_index * width as usize / 8,
                    format!(
                        "index of value {value_index} is {index}, the dictionary holds \
                         {distinct_count} strings"
                    ),
                ));
            };
            out.push((*value).to_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| value.to_string()).collect()
    }

    #[test]
    fn repetitive_strings_take_the_dictionary_and_round_trip() {
        let models = [
            "gpt-4o",
            "claude-sonnet-4",
            "llama-3.1-70b-instruct",
            "qwen2.5-7b",
        ];
        let values: Vec<String> = (0..720).map(|i| models[(i * i) % 4].to_string()).collect();
        let mut bytes = Vec::new();
        assert_eq!(encode_best(&values, &mut bytes), ValueEncoding::StringDict);
        assert!(bytes.len() < raw_size(&values) / 4);
        let mut decoded = Vec::new();
        decode_dict(&bytes, values.len(), &mut decoded).unwrap();
        assert_eq!(decoded, values);
    }

    #[test]
    fn distinct_short_strings_stay_raw_and_round_trip() {
        let values = strings(&["a", "", "ünïcødé", "b"]);
        let mut bytes = Vec::new();
        assert_eq!(encode_best(&values, &mut bytes), ValueEncoding::StringRaw);
        let mut decoded = Vec::new();
        decode_raw(&bytes, values.len(), &mut decoded).unwrap();
        assert_eq!(decoded, values);
    }

    #[test]
    fn invalid_utf8_is_an_error_at_the_bad_byte() {
        let mut decoded = Vec::new();
        let error = decode_raw(&[1, b'a', 2, b'b', 0xff], 2, &mut decoded).unwrap_err();
        assert_eq!(error.offset, 4);
    }

    #[test]
    fn length_beyond_the_stream_is_an_error_before_allocating() {
        let mut bytes = Vec::new();
        varint::write_u64(&mut bytes, u64::MAX);
        let mut decoded = Vec::new();
        let error = decode_raw(&bytes, 1, &mut decoded).unwrap_err();
        assert_eq!(error.offset, 0);
    }

    #[test]
    fn dictionary_index_out_of_range_is_an_error() {
        let mut inner = Vec::new();
        varint::write_u64(&mut inner, 3);
        encode_raw(["x", "y", "z"], &mut inner);
        packed::pack([0, 3, 1], 2, &mut inner);
        let mut decoded = Vec::new();
        let error = decode_dict_inner(&inner, 3, &mut decoded).unwrap_err();
        assert!(error.reason.contains("is 3"), "{}", error.reason);

        inner.clear();
        varint::write_u64(&mut inner, 2);
        encode_raw(["x", "y"], &mut inner);
        packed::pack([0, 1, 1, 0, 1], 1, &mut inner);
        decoded.clear();
        decode_dict_inner(&inner, 5, &mut decoded).unwrap();
        assert_eq!(decoded, ["x", "y", "y", "x", "y"]);
    }
}
