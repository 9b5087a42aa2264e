//! BoolBits: one bit per value, value `i` in bit `i % 8` (least significant first) of byte
//! `i / 8`; unused bits of the last byte are zero.

use super::{CodecError, VALUE_STREAM};

pub(crate) fn encode(values: &[bool], out: &mut Vec<u8>) {
    out.extend(values.chunks(8).map(|byte_values| {
        byte_values
            .iter()
            .enumerate()
            .fold(0u8, |byte, (bit, &value)| byte | (u8::from(value) << bit))
    }));
}

pub(crate) fn decode(data: &[u8], count: usize, out: &mut Vec<bool>) -> Result<(), CodecError> {
    let needed = count.div_ceil(8);
    let Some(bytes) = data.get(..needed) else {
        return Err(CodecError::new(
            VALUE_STREAM,
            data.len(),
            format!(
                "boolean stream ends early: {count} values need {needed} bytes, found {}",
                data.len()
            ),
        ));
    };
    out.reserve(count);
    for &byte in bytes {
        out.extend((0..8).map(|bit| byte & (1 << bit) != 0));
    }
    // The last byte may carry fewer than eight values.
    out.truncate(out.len() - (needed * 8 - count));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_for_every_length_up_to_two_bytes_and_more() {
        for length in 0..=17usize {
            let values: Vec<bool> = (0..length).map(|i| i % 3 == 0 || i == 16).collect();
            let mut bytes = Vec::new();
            encode(&values, &mut bytes);
            assert_eq!(bytes.len(), length.div_ceil(8));
            let mut decoded = vec![true];
            decode(&bytes, length, &mut decoded).unwrap();
            assert_eq!(&decoded[1..], &values[..]);
        }
    }

    #[test]
    fn short_stream_is_an_error() {
        let mut decoded = Vec::new();
        let error = decode(&[0xff], 9, &mut decoded).unwrap_err();
        assert_eq!(error.offset, 1);
        assert!(decoded.is_empty());
    }
}
