//! Property tests over the public codec API: bit-exact round trips of every encoding for
//! hostile and realistic inputs, and total decoders on random, cut and bit-flipped bytes.

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

const ALL_VALUE_ENCODINGS: [ValueEncoding; 8] = [
    ValueEncoding::GorillaXor,
    ValueEncoding::Decimal,
    ValueEncoding::IntDeltaOfDelta,
    ValueEncoding::IntPacked,
    ValueEncoding::BoolBits,
    ValueEncoding::StringRaw,
    ValueEncoding::StringDict,
    ValueEncoding::Constant,
];
const ALL_TS_ENCODINGS: [TsEncoding; 2] = [TsEncoding::DeltaOfDelta, TsEncoding::PackedDelta];

fn special_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::MIN_POSITIVE),
        Just(f64::EPSILON),
        // NaNs with payloads, both signs, quiet and signalling.
        any::<u64>().prop_map(|bits| f64::from_bits(bits | 0x7ff0_0000_0000_0001)),
        // Subnormals.
        (1u64..(1 << 52)).prop_map(f64::from_bits),
        (1u64..(1 << 52)).prop_map(|bits| f64::from_bits(bits | (1 << 63))),
    ]
}

/// Decimal-looking values with 0..=8 places, as gauges, costs and latencies are.
fn decimal_floats() -> impl Strategy<Value = Vec<f64>> {
    (0u32..=8, 1usize..800).prop_flat_map(|(places, length)| {
        let scale = 10f64.powi(places as i32);
        vec(-100_000_000i64..100_000_000, length).prop_map(move |integers| {
            integers
                .into_iter()
                .map(|integer| integer as f64 / scale)
                .collect()
        })
    })
}

fn float_column() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        vec(any::<u64>().prop_map(f64::from_bits), 1..300),
        vec(special_float(), 1..300),
        vec(prop_oneof![special_float(), -1e6f64..1e6], 1..300),
        decimal_floats(),
        (special_float(), 1usize..1000).prop_map(|(value, length)| vec![value; length]),
        (any::<u64>(), 1usize..1000).prop_map(|(bits, length)| vec![f64::from_bits(bits); length]),
        // Constant runs of decimals.
        vec((0u32..100, 1usize..50), 1..40).prop_map(|runs| {
            runs.into_iter()
                .flat_map(|(value, length)| std::iter::repeat_n(f64::from(value) / 4.0, length))
                .collect()
        }),
    ]
}

fn integer_column() -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![
        vec(any::<i64>(), 1..300),
        vec(
            prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1), Just(1)],
            1..300
        ),
        // Rising counters with varying rates.
        (any::<i64>(), vec(0i64..1_000_000_000, 1..800)).prop_map(|(start, increments)| {
            increments
                .iter()
                .scan(start, |total, increment| {
                    *total = total.wrapping_add(*increment);
                    Some(*total)
                })
                .collect()
        }),
        vec(0i64..=100, 1..800),
        (any::<i64>(), 1usize..1000).prop_map(|(value, length)| vec![value; length]),
        vec((any::<i16>(), 1usize..50), 1..40).prop_map(|runs| {
            runs.into_iter()
                .flat_map(|(value, length)| std::iter::repeat_n(i64::from(value), length))
                .collect()
        }),
    ]
}

/// Strictly increasing timestamps: steady, jittered, sparse, pre-1970 and with huge gaps.
fn timestamp_column() -> impl Strategy<Value = Vec<i64>> {
    let gaps = prop_oneof![
        vec(Just(5_000_000_000u64), 1..800),
        vec(
            (0u64..50).prop_map(|jitter| 10_000_000_000 - 25_000_000 + jitter * 1_000_000),
            1..800
        ),
        vec(1u64..10_000_000_000_000, 1..300),
        vec(1u64..=u64::MAX / 4, 1..6),
        vec(
            prop_oneof![Just(1u64), Just(1_000_000), 1u64..1_000_000_000],
            1..800
        ),
    ];
    (any::<i64>(), gaps).prop_map(|(start, gaps)| {
        let mut ts = vec![start];
        for gap in gaps {
            let last = *ts.last().unwrap_or(&start);
            match last.checked_add_unsigned(gap) {
                Some(next) => ts.push(next),
                None => break,
            }
        }
        ts
    })
}

fn bits_of(values: &[f64]) -> Vec<u64> {
    values.iter().map(|value| value.to_bits()).collect()
}

fn decoded_floats(enc: ValueEncoding, bytes: &[u8], count: usize) -> Vec<u64> {
    let mut decoded = vec![7.0];
    decode_f64(enc, bytes, count, &mut decoded).unwrap();
    assert_eq!(
        decoded.remove(0),
        7.0,
        "decoders append after what is there"
    );
    bits_of(&decoded)
}

proptest! {
    // Failures print their minimal input; a regression found that way becomes a named test.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn timestamps_round_trip_through_the_chosen_and_every_encoding(ts in timestamp_column()) {
        let mut bytes = Vec::new();
        let enc = encode_timestamps(&ts, &mut bytes);
        let mut decoded = Vec::new();
        decode_timestamps(enc, &bytes, ts.len(), &mut decoded).unwrap();
        prop_assert_eq!(&decoded, &ts);

        let mut dod_bytes = Vec::new();
        dod::encode(&ts, &dod::TIMESTAMP_BUCKETS, &mut dod_bytes);
        let mut packed_bytes = Vec::new();
        timestamps::encode_packed_delta(&ts, &mut packed_bytes);
        prop_assert_eq!(bytes.len(), dod_bytes.len().min(packed_bytes.len()));
        for (enc, stream) in [(TsEncoding::DeltaOfDelta, &dod_bytes), (TsEncoding::PackedDelta, &packed_bytes)] {
            decoded.clear();
            decode_timestamps(enc, stream, ts.len(), &mut decoded).unwrap();
            prop_assert_eq!(&decoded, &ts);
        }
    }

    #[test]
    fn any_i64_sequence_round_trips_through_both_timestamp_encodings(ts in vec(any::<i64>(), 1..300)) {
        let mut dod_bytes = Vec::new();
        dod::encode(&ts, &dod::TIMESTAMP_BUCKETS, &mut dod_bytes);
        let mut packed_bytes = Vec::new();
        timestamps::encode_packed_delta(&ts, &mut packed_bytes);
        for (enc, stream) in [(TsEncoding::DeltaOfDelta, &dod_bytes), (TsEncoding::PackedDelta, &packed_bytes)] {
            let mut decoded = Vec::new();
            decode_timestamps(enc, stream, ts.len(), &mut decoded).unwrap();
            prop_assert_eq!(&decoded, &ts);
        }
    }

    #[test]
    fn floats_round_trip_bit_exactly_through_the_chosen_and_every_float_encoding(values in float_column()) {
        let expected = bits_of(&values);
        let mut bytes = Vec::new();
        let enc = encode_values(Values::Float(&values), &mut bytes);
        prop_assert_eq!(decoded_floats(enc, &bytes, values.len()), expected.clone());

        let mut gorilla_bytes = Vec::new();
        gorilla::encode(&values, &mut gorilla_bytes);
        prop_assert!(bytes.len() <= gorilla_bytes.len());
        prop_assert_eq!(decoded_floats(ValueEncoding::GorillaXor, &gorilla_bytes, values.len()), expected.clone());

        if let Some(plan) = decimal::DecimalPlan::new(&values) {
            let mut decimal_bytes = Vec::new();
            plan.encode(&mut decimal_bytes);
            prop_assert!(bytes.len() <= decimal_bytes.len());
            prop_assert_eq!(decoded_floats(ValueEncoding::Decimal, &decimal_bytes, values.len()), expected.clone());
        }
    }

    #[test]
    fn decimals_with_up_to_eight_places_take_the_decimal_encoding_or_smaller(values in decimal_floats()) {
        prop_assume!(values.iter().all(|value| value.to_bits() != (-0.0f64).to_bits()));
        prop_assert!(decimal::DecimalPlan::new(&values).is_some());
        let mut bytes = Vec::new();
        let enc = encode_values(Values::Float(&values), &mut bytes);
        prop_assert!(matches!(enc, ValueEncoding::Decimal | ValueEncoding::Constant | ValueEncoding::GorillaXor));
        prop_assert_eq!(decoded_floats(enc, &bytes, values.len()), bits_of(&values));
    }

    #[test]
    fn integers_round_trip_through_the_chosen_and_every_integer_encoding(values in integer_column()) {
        let mut bytes = Vec::new();
        let enc = encode_values(Values::Integer(&values), &mut bytes);
        let mut decoded = Vec::new();
        decode_i64(enc, &bytes, values.len(), &mut decoded).unwrap();
        prop_assert_eq!(&decoded, &values);

        let mut packed_bytes = Vec::new();
        int_packed::encode(&values, &mut packed_bytes);
        let mut dod_bytes = Vec::new();
        dod::encode(&values, &dod::INTEGER_BUCKETS, &mut dod_bytes);
        prop_assert!(bytes.len() <= packed_bytes.len().min(dod_bytes.len()));
        for (enc, stream) in [(ValueEncoding::IntPacked, &packed_bytes), (ValueEncoding::IntDeltaOfDelta, &dod_bytes)] {
            decoded.clear();
            decode_i64(enc, stream, values.len(), &mut decoded).unwrap();
            prop_assert_eq!(&decoded, &values);
        }
    }

    #[test]
    fn unsigned_values_round_trip_including_u64_max(values in vec(prop_oneof![any::<u64>(), Just(u64::MAX), Just(0), 0u64..1000], 1..400)) {
        let mut bytes = Vec::new();
        let enc = encode_values(Values::Unsigned(&values), &mut bytes);
        let mut decoded = Vec::new();
        decode_u64(enc, &bytes, values.len(), &mut decoded).unwrap();
        prop_assert_eq!(decoded, values);
    }

    #[test]
    fn booleans_round_trip(values in prop_oneof![vec(any::<bool>(), 1..600), (any::<bool>(), 1usize..600).prop_map(|(value, length)| vec![value; length])]) {
        let mut bytes = Vec::new();
        let enc = encode_values(Values::Boolean(&values), &mut bytes);
        let mut decoded = Vec::new();
        decode_bool(enc, &bytes, values.len(), &mut decoded).unwrap();
        prop_assert_eq!(&decoded, &values);
        bytes.clear();
        boolean::encode(&values, &mut bytes);
        decoded.clear();
        decode_bool(ValueEncoding::BoolBits, &bytes, values.len(), &mut decoded).unwrap();
        prop_assert_eq!(&decoded, &values);
    }

    #[test]
    fn strings_round_trip_through_the_chosen_and_every_string_encoding(values in prop_oneof![
        vec(".{0,12}", 1..200),
        vec(prop_oneof![Just("ok".to_string()), Just("error".to_string()), Just("rate_limited".to_string()), "[a-z]{0,3}"], 1..600),
        ("\\PC{0,40}", 1usize..300).prop_map(|(value, length)| vec![value; length]),
    ]) {
        let mut bytes = Vec::new();
        let enc = encode_values(Values::String(&values), &mut bytes);
        let mut decoded = Vec::new();
        decode_strings(enc, &bytes, values.len(), &mut decoded).unwrap();
        prop_assert_eq!(&decoded, &values);

        let mut raw_bytes = Vec::new();
        strings::encode_raw(values.iter().map(String::as_str), &mut raw_bytes);
        prop_assert!(bytes.len() <= raw_bytes.len());
        decoded.clear();
        decode_strings(ValueEncoding::StringRaw, &raw_bytes, values.len(), &mut decoded).unwrap();
        prop_assert_eq!(&decoded, &values);

        let dict_bytes = strings::encode_dict(&values).unwrap();
        decoded.clear();
        decode_strings(ValueEncoding::StringDict, &dict_bytes, values.len(), &mut decoded).unwrap();
        prop_assert_eq!(&decoded, &values);
    }

    #[test]
    fn appenders_round_trip_any_sequence_at_every_length(
        ts in vec(prop_oneof![any::<i64>(), Just(0), Just(i64::MIN), Just(i64::MAX), -5i64..5], 1..200),
        floats in float_column(),
        flags in vec(any::<bool>(), 1..200),
        texts in vec(".{0,8}", 1..100),
    ) {
        let mut timestamps = TsAppender::new();
        let mut integers = IntAppender::new();
        for (index, &value) in ts.iter().enumerate() {
            timestamps.push(value);
            integers.push(value);
            // Checking every prefix is quadratic; a few lengths and the end are enough.
            if index % 37 == 0 || index + 1 == ts.len() {
                let mut decoded = Vec::new();
                decode_timestamps(timestamps.encoding(), timestamps.bytes(), index + 1, &mut decoded).unwrap();
                prop_assert_eq!(&decoded, &ts[..=index]);
                decoded.clear();
                decode_i64(integers.encoding(), integers.bytes(), index + 1, &mut decoded).unwrap();
                prop_assert_eq!(&decoded, &ts[..=index]);
            }
        }
        let unsigned: Vec<u64> = ts.iter().map(|&value| value as u64).collect();
        let mut decoded_unsigned = Vec::new();
        decode_u64(integers.encoding(), integers.bytes(), ts.len(), &mut decoded_unsigned).unwrap();
        prop_assert_eq!(decoded_unsigned, unsigned);

        let mut float_appender = FloatAppender::new();
        for &value in &floats {
            float_appender.push(value);
        }
        prop_assert_eq!(decoded_floats(float_appender.encoding(), float_appender.bytes(), floats.len()), bits_of(&floats));
        let mut batch = Vec::new();
        gorilla::encode(&floats, &mut batch);
        prop_assert_eq!(float_appender.bytes(), &batch[..]);

        let mut bool_appender = BoolAppender::new();
        flags.iter().for_each(|&flag| bool_appender.push(flag));
        let mut decoded_flags = Vec::new();
        decode_bool(bool_appender.encoding(), bool_appender.bytes(), flags.len(), &mut decoded_flags).unwrap();
        prop_assert_eq!(decoded_flags, flags);

        let mut string_appender = StringAppender::new();
        texts.iter().for_each(|text| string_appender.push(text));
        let mut decoded_texts = Vec::new();
        decode_strings(string_appender.encoding(), string_appender.bytes(), texts.len(), &mut decoded_texts).unwrap();
        prop_assert_eq!(decoded_texts, texts);
    }

    #[test]
    fn decoders_are_total_on_random_bytes(data in vec(any::<u8>(), 0..600), count in 0usize..3000) {
        assert_total(&data, count);
    }

    #[test]
    fn decoders_are_total_on_cut_and_flipped_streams(
        values in float_column(),
        ints in integer_column(),
        ts in timestamp_column(),
        texts in vec("[a-c]{0,3}", 1..300),
        flip in any::<usize>(),
        cut in any::<usize>(),
        count_change in -3i64..3,
    ) {
        let mut streams = Vec::new();
        let mut bytes = Vec::new();
        encode_values(Values::Float(&values), &mut bytes);
        streams.push((values.len(), bytes.clone()));
        bytes.clear();
        encode_values(Values::Integer(&ints), &mut bytes);
        streams.push((ints.len(), bytes.clone()));
        bytes.clear();
        encode_timestamps(&ts, &mut bytes);
        streams.push((ts.len(), bytes.clone()));
        bytes.clear();
        dod::encode(&ts, &dod::TIMESTAMP_BUCKETS, &mut bytes);
        streams.push((ts.len(), bytes.clone()));
        bytes.clear();
        encode_values(Values::String(&texts), &mut bytes);
        streams.push((texts.len(), bytes.clone()));
        bytes.clear();
        gorilla::encode(&values, &mut bytes);
        streams.push((values.len(), bytes.clone()));
        for (count, stream) in streams {
            let count = usize::try_from(count as i64 + count_change).unwrap_or(0);
            let mut flipped = stream.clone();
            if !flipped.is_empty() {
                let bit = flip % (flipped.len() * 8);
                flipped[bit / 8] ^= 1 << (bit % 8);
            }
            assert_total(&flipped, count);
            let cut_stream = &stream[..cut % (stream.len() + 1)];
            assert_total(cut_stream, count);
        }
    }
}

/// Every decoder, given any encoding byte, returns `Ok` with exactly `count` values appended
/// or `Err` with nothing appended.
fn assert_total(data: &[u8], count: usize) {
    fn check<T>(result: Result<(), CodecError>, out: &[T], count: usize, what: &str) {
        match result {
            Ok(()) => assert_eq!(out.len(), 1 + count, "{what}: Ok must append exactly count"),
            Err(error) => {
                assert_eq!(out.len(), 1, "{what}: Err must leave out as it was");
                assert!(
                    error.offset <= data_len_bound(),
                    "{what}: offset {}",
                    error.offset
                );
            }
        }
    }
    fn data_len_bound() -> usize {
        usize::MAX
    }
    for enc in ALL_TS_ENCODINGS {
        let mut out = vec![0i64];
        let result = decode_timestamps(enc, data, count, &mut out);
        if let Err(error) = &result {
            assert!(
                error.offset <= data.len(),
                "{enc:?}: offset {} of {}",
                error.offset,
                data.len()
            );
            assert_eq!(error.stream, TIMESTAMP_STREAM);
        }
        check(result, &out, count, enc.name());
    }
    for enc in ALL_VALUE_ENCODINGS {
        let mut floats = vec![0.0f64];
        let result = decode_f64(enc, data, count, &mut floats);
        if let Err(error) = &result {
            assert!(
                error.offset <= data.len(),
                "{enc:?}: offset {} of {}",
                error.offset,
                data.len()
            );
        }
        check(result, &floats, count, enc.name());
        let mut integers = vec![0i64];
        check(
            decode_i64(enc, data, count, &mut integers),
            &integers,
            count,
            enc.name(),
        );
        let mut unsigned = vec![0u64];
        check(
            decode_u64(enc, data, count, &mut unsigned),
            &unsigned,
            count,
            enc.name(),
        );
        let mut booleans = vec![false];
        check(
            decode_bool(enc, data, count, &mut booleans),
            &booleans,
            count,
            enc.name(),
        );
        let mut strings = vec![String::new()];
        check(
            decode_strings(enc, data, count, &mut strings),
            &strings,
            count,
            enc.name(),
        );
    }
}

#[test]
fn count_above_the_chunk_limit_is_refused_before_decoding() {
    let mut out = Vec::new();
    let error = decode_f64(
        ValueEncoding::Constant,
        &[0],
        MAX_CHUNK_POINTS + 1,
        &mut out,
    )
    .unwrap_err();
    assert!(error.reason.contains("65537"), "{}", error.reason);
    assert!(out.is_empty());
    decode_f64(ValueEncoding::Constant, &[0], MAX_CHUNK_POINTS, &mut out).unwrap();
    assert_eq!(out.len(), MAX_CHUNK_POINTS);
}

#[test]
fn encoding_of_another_type_is_an_error_naming_both() {
    let mut out = Vec::new();
    let error = decode_f64(ValueEncoding::BoolBits, &[0xff], 3, &mut out).unwrap_err();
    assert!(
        error.reason.contains("bool-bits") && error.reason.contains("f64"),
        "{}",
        error.reason
    );
    assert_eq!(
        error.to_string(),
        format!("{} at byte 0 of the value stream", error.reason)
    );
}

#[test]
fn encoding_bytes_round_trip_and_unknown_bytes_are_refused() {
    for enc in ALL_VALUE_ENCODINGS {
        assert_eq!(ValueEncoding::from_byte(enc.to_byte()), Some(enc));
    }
    for enc in ALL_TS_ENCODINGS {
        assert_eq!(TsEncoding::from_byte(enc.to_byte()), Some(enc));
    }
    assert_eq!(ValueEncoding::from_byte(0), None);
    assert_eq!(ValueEncoding::from_byte(9), None);
    assert_eq!(TsEncoding::from_byte(3), None);
}

#[test]
fn evenly_spaced_timestamps_pick_packed_delta_and_cost_a_few_bytes() {
    let ts: Vec<i64> = (0..720)
        .map(|i| -1_000_000_000_000 + i * 1_000_000_000)
        .collect();
    let mut bytes = Vec::new();
    assert_eq!(encode_timestamps(&ts, &mut bytes), TsEncoding::PackedDelta);
    assert!(bytes.len() <= 16, "{}", bytes.len());
}

#[test]
fn empty_value_slices_encode_to_streams_that_decode_zero_values() {
    let mut bytes = Vec::new();
    let enc = encode_values(Values::Float(&[]), &mut bytes);
    let mut out = Vec::new();
    decode_f64(enc, &bytes, 0, &mut out).unwrap();
    assert!(out.is_empty());
    bytes.clear();
    let enc = encode_values(Values::String(&[]), &mut bytes);
    let mut strings = Vec::new();
    decode_strings(enc, &bytes, 0, &mut strings).unwrap();
    assert!(strings.is_empty());
}
