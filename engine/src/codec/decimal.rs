//! Decimal: f64 values that are decimals with at most 18 places, stored as the integers
//! `round(v * 10^e)` (IntPacked) after one exponent byte `e`.
//!
//! The decoder computes `(i as f64) / 10^e`, a correctly rounded division of two exact
//! numbers (`10^e` is exact in f64 for `e <= 22`). The encoder picks the smallest `e` for
//! which that formula gives back every value's exact bits and `|i| < 2^53`; where none does
//! (NaN, infinities, -0.0, values that are not short decimals), the encoding is not used.
//! This is the idea of ALP (Afroozeh et al., SIGMOD 2024) and of VictoriaMetrics' decimal
//! conversion, reduced to one exponent per stream.

use super::cursor::ByteCursor;
use super::int_packed::{self, Plan};
use super::{CodecError, VALUE_STREAM};

/// The largest exponent a stream may name.
pub(crate) const MAX_EXPONENT: u8 = 18;

/// `10^e` for every allowed exponent; each one is exact in f64.
const POWERS_OF_TEN: [f64; MAX_EXPONENT as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];

/// 1.5 * 2^52: its f64 has a zero low mantissa with room for any |i| < 2^51 added to it.
const MAGIC: f64 = 6_755_399_441_055_744.0;
const MAGIC_BITS: u64 = 0x4338_0000_0000_0000;

/// Integers at or beyond this magnitude are not exact in f64, so they are not used.
const MAX_MAGNITUDE: f64 = 9_007_199_254_740_992.0; // 2^53

/// The integer that decodes to exactly `value` at `exponent`, if there is one.
#[inline]
fn scaled_integer(value: f64, exponent: usize) -> Option<i64> {
    let power = POWERS_OF_TEN[exponent];
    let integer = small_integer((value * power).round())?;
    ((integer as f64 / power).to_bits() == value.to_bits()).then_some(integer)
}

/// `rounded` as an integer, if it is one below 2^53 in magnitude (NaN and infinities are not).
#[inline]
fn small_integer(rounded: f64) -> Option<i64> {
    (rounded.abs() < MAX_MAGNITUDE).then_some(rounded as i64)
}

/// The exponent and integers that encode a run of floats as Decimal.
pub(crate) struct DecimalPlan {
    exponent: u8,
    integers: Vec<i64>,
    packed: Plan,
}

impl DecimalPlan {
    /// The plan for `values`, or `None` when no exponent represents all of them exactly.
    pub(crate) fn new(values: &[f64]) -> Option<DecimalPlan> {
        let mut exponent = 0usize;
        let mut integers = Vec::with_capacity(values.len());
        for &value in values {
            // Exponents only grow, so the search costs O(n + 18) over the whole run.
            loop {
                if let Some(integer) = scaled_integer(value, exponent) {
                    integers.push(integer);
                    break;
                }
                exponent += 1;
                if exponent > usize::from(MAX_EXPONENT) {
                    return None;
                }
            }
        }
        // Values exact at a smaller exponent were found with that one; redo them at the final
        // exponent, where they are almost always exact too, and give up if one is not.
        let power = POWERS_OF_TEN[exponent];
        for (integer, &value) in integers.iter_mut().zip(values) {
            *integer = small_integer((value * power).round())?;
            if (*integer as f64 / power).to_bits() != value.to_bits() {
                return None;
            }
        }
        let packed = Plan::new(&integers);
        Some(DecimalPlan {
            exponent: exponent as u8,
            integers,
            packed,
        })
    }

    #[cfg(test)]
    pub(crate) fn exponent(&self) -> u8 {
        self.exponent
    }

    pub(crate) fn encoded_size(&self) -> usize {
        1 + self.packed.encoded_size()
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.exponent);
        self.packed.encode(&self.integers, out);
    }
}

/// Decodes `count` values, appending them to `out`.
pub(crate) fn decode(data: &[u8], count: usize, out: &mut Vec<f64>) -> Result<(), CodecError> {
    if count == 0 {
        return Ok(());
    }
    let mut cursor = ByteCursor::new(data, 0, VALUE_STREAM);
    let exponent = cursor.u8("decimal exponent")?;
    let Some(&power) = POWERS_OF_TEN.get(usize::from(exponent)) else {
        return Err(cursor.error_at(
            0,
            format!("decimal exponent is {exponent}, at most {MAX_EXPONENT} expected"),
        ));
    };
    if let Some(integer) = int_packed::constant_value(data, cursor.position()) {
        out.resize(out.len() + count, integer as f64 / power);
        return Ok(());
    }
    out.reserve(count);
    if int_packed::all_below(data, cursor.position(), count, 1 << 51) {
        // Without AVX-512, i64 to f64 conversion does not vectorise; for |i| < 2^51 adding
        // 1.5 * 2^52 in the integer domain and subtracting it in the float domain is exact
        // and does, and gives the same f64 as `as`.
        int_packed::decode_blocks(data, cursor.position(), count, |block| {
            out.extend(block.iter().map(|&integer| {
                let converted = f64::from_bits(MAGIC_BITS.wrapping_add(integer as u64)) - MAGIC;
                converted / power
            }));
        })
    } else {
        int_packed::decode_blocks(data, cursor.position(), count, |block| {
            out.extend(block.iter().map(|&integer| integer as f64 / power));
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: &[f64]) -> u8 {
        let plan = DecimalPlan::new(values).expect("decimal values");
        let mut bytes = Vec::new();
        plan.encode(&mut bytes);
        assert_eq!(bytes.len(), plan.encoded_size());
        let mut decoded = Vec::new();
        decode(&bytes, values.len(), &mut decoded).unwrap();
        let expected: Vec<u64> = values.iter().map(|value| value.to_bits()).collect();
        let found: Vec<u64> = decoded.iter().map(|value| value.to_bits()).collect();
        assert_eq!(found, expected);
        plan.exponent()
    }

    #[test]
    fn picks_the_smallest_exponent_that_is_exact() {
        assert_eq!(round_trip(&[1.0, 2.0, 300.0]), 0);
        assert_eq!(round_trip(&[12.5, 0.25, 7.0]), 2);
        assert_eq!(round_trip(&[0.1, 0.2, 0.3]), 1);
        assert_eq!(round_trip(&[0.00000123, 12.3456789]), 8);
        assert_eq!(round_trip(&[-42.125, 1e12]), 3);
    }

    #[test]
    fn refuses_integers_beyond_two_to_the_53() {
        assert!(DecimalPlan::new(&[0.5, 1e16]).is_none());
    }

    #[test]
    fn refuses_values_without_an_exact_decimal_form() {
        for value in [f64::NAN, f64::INFINITY, -0.0, 0.1 + 0.2, 1e300, 5e-324] {
            assert!(DecimalPlan::new(&[1.5, value]).is_none(), "{value:e}");
        }
    }

    #[test]
    fn fast_conversion_agrees_with_as_near_its_limits() {
        for integer in [
            0i64,
            1,
            -1,
            (1 << 51) - 1,
            -(1 << 51) + 1,
            123_456_789,
            -987_654_321,
        ] {
            let converted = f64::from_bits(MAGIC_BITS.wrapping_add(integer as u64)) - MAGIC;
            assert_eq!(converted.to_bits(), (integer as f64).to_bits(), "{integer}");
        }
        assert_eq!(MAGIC.to_bits(), MAGIC_BITS);
    }

    #[test]
    fn integers_beyond_two_to_the_51_round_trip_through_the_exact_path() {
        round_trip(&[(1i64 << 52) as f64, 1.0, -((1i64 << 52) as f64) + 3.0]);
        round_trip(&[0.5, 1e14 + 0.5]);
    }

    #[test]
    fn exponent_beyond_18_is_an_error() {
        let mut decoded = Vec::new();
        let error = decode(&[19, 0, 0], 2, &mut decoded).unwrap_err();
        assert_eq!(error.offset, 0);
        assert!(error.reason.contains("19"));
    }
}
