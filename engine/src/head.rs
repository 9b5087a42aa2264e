//! The in-memory head of one database: for every column written since the last flush, one open
//! chunk that points are appended to, the chunks sealed since, and a small buffer of
//! out-of-order points.
//!
//! Chunks are cut at aligned time boundaries (`chunk_span`, one hour by default) so that a chunk
//! usually lies wholly inside a query's aggregation bucket and can be answered from its
//! statistics, and at `max_chunk_points`.
//!
//! Recency (which write wins on equal timestamps) follows the order of the sources: a column's
//! sealed chunks in the order they were sealed, then its open chunk, then its out-of-order
//! buffer. A point goes to the out-of-order buffer when its timestamp is not after the open
//! chunk's last one, so the buffer is always newer than the open chunk; sealing folds the buffer
//! in, so everything sealed later is newer than everything sealed before.

use std::sync::Arc;

use crate::chunk::{
    CHUNK_HEADER_LEN, ChunkHeader, ColumnValues, StatsBuilder, encode_chunk, parse_header,
    write_chunk,
};
use crate::codec::{
    BoolAppender, FloatAppender, IntAppender, MAX_CHUNK_POINTS, StringAppender, TsAppender,
};
use crate::model::{FieldType, FieldValue};

/// An encoded chunk in memory (the segment chunk layout, never zstd-wrapped).
#[derive(Debug)]
pub(crate) struct EncodedChunk {
    pub(crate) header: ChunkHeader,
    pub(crate) bytes: Box<[u8]>,
}

impl EncodedChunk {
    fn from_bytes(bytes: Vec<u8>) -> Option<EncodedChunk> {
        // Chunks built here are valid by construction; a failure would be a bug, which the
        // caller reports rather than storing a chunk it cannot read back.
        let header = parse_header(&bytes).ok()?;
        Some(EncodedChunk {
            header,
            bytes: bytes.into_boxed_slice(),
        })
    }

    pub(crate) fn encode(ts: &[i64], values: &ColumnValues) -> Option<EncodedChunk> {
        let mut bytes = Vec::new();
        encode_chunk(ts, values, &mut bytes, false);
        EncodedChunk::from_bytes(bytes)
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadOptions {
    /// Chunks never cross a multiple of this many nanoseconds.
    pub(crate) chunk_span: i64,
    pub(crate) max_chunk_points: usize,
    /// Fold the out-of-order buffer into sealed chunks once it holds this many points.
    pub(crate) max_out_of_order_points: usize,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_span: 3_600_000_000_000,
            max_chunk_points: 1024,
            max_out_of_order_points: 1024,
        }
    }
}

enum ValueAppender {
    Float(FloatAppender),
    Integer(IntAppender),
    Unsigned(IntAppender),
    Boolean(BoolAppender),
    String(StringAppender),
}

impl ValueAppender {
    fn new(field_type: FieldType) -> ValueAppender {
        match field_type {
            FieldType::Float => ValueAppender::Float(FloatAppender::new()),
            FieldType::Integer => ValueAppender::Integer(IntAppender::new()),
            FieldType::Unsigned => ValueAppender::Unsigned(IntAppender::new()),
            FieldType::Boolean => ValueAppender::Boolean(BoolAppender::new()),
            FieldType::String => ValueAppender::String(StringAppender::new()),
        }
    }

    fn field_type(&self) -> FieldType {
        match self {
            ValueAppender::Float(_) => FieldType::Float,
            ValueAppender::Integer(_) => FieldType::Integer,
            ValueAppender::Unsigned(_) => FieldType::Unsigned,
            ValueAppender::Boolean(_) => FieldType::Boolean,
            ValueAppender::String(_) => FieldType::String,
        }
    }

    fn push(&mut self, value: &FieldValue<'_>) {
        match (self, value) {
            (ValueAppender::Float(a), FieldValue::Float(v)) => a.push(*v),
            (ValueAppender::Integer(a), FieldValue::Integer(v)) => a.push(*v),
            (ValueAppender::Unsigned(a), FieldValue::Unsigned(v)) => a.push(*v as i64),
            (ValueAppender::Boolean(a), FieldValue::Boolean(v)) => a.push(*v),
            (ValueAppender::String(a), FieldValue::String(v)) => a.push(v),
            (a, v) => unreachable!(
                "BUG: the head got a {} value for a {} column",
                v.field_type(),
                a.field_type()
            ),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            ValueAppender::Float(a) => a.bytes(),
            ValueAppender::Integer(a) | ValueAppender::Unsigned(a) => a.bytes(),
            ValueAppender::Boolean(a) => a.bytes(),
            ValueAppender::String(a) => a.bytes(),
        }
    }

    fn encoding(&self) -> crate::codec::ValueEncoding {
        match self {
            ValueAppender::Float(a) => a.encoding(),
            ValueAppender::Integer(a) | ValueAppender::Unsigned(a) => a.encoding(),
            ValueAppender::Boolean(a) => a.encoding(),
            ValueAppender::String(a) => a.encoding(),
        }
    }
}

struct OpenChunk {
    ts: TsAppender,
    values: ValueAppender,
    stats: StatsBuilder,
    /// Exclusive end of the aligned span this chunk lies in.
    span_end: i64,
}

impl OpenChunk {
    fn new(field_type: FieldType, ts: i64, span: i64) -> OpenChunk {
        let span_start = ts.div_euclid(span).saturating_mul(span);
        OpenChunk {
            ts: TsAppender::new(),
            values: ValueAppender::new(field_type),
            stats: StatsBuilder::new(),
            span_end: span_start.saturating_add(span),
        }
    }

    fn push(&mut self, ts: i64, value: &FieldValue<'_>) {
        self.ts.push(ts);
        self.values.push(value);
        self.stats.add(ts, value);
    }

    fn len(&self) -> usize {
        self.ts.len()
    }

    fn last_time(&self) -> Option<i64> {
        self.ts.last()
    }

    /// The chunk as it stands, encoded with the appenders' streams.
    fn to_encoded(&self) -> Option<EncodedChunk> {
        let stats = self.stats.get()?;
        let ts = self.ts.bytes();
        let values = self.values.bytes();
        let mut payload = Vec::with_capacity(ts.len() + values.len());
        payload.extend_from_slice(ts);
        payload.extend_from_slice(values);
        let mut bytes = Vec::with_capacity(CHUNK_HEADER_LEN + payload.len());
        write_chunk(
            &stats,
            self.values.field_type(),
            self.ts.encoding(),
            self.values.encoding(),
            ts.len(),
            &payload,
            false,
            &mut bytes,
        );
        EncodedChunk::from_bytes(bytes)
    }
}

#[derive(Default)]
struct ColumnHead {
    open: Option<OpenChunk>,
    sealed: Vec<Arc<EncodedChunk>>,
    out_of_order: Vec<(i64, FieldValue<'static>)>,
}

impl ColumnHead {
    fn is_empty(&self) -> bool {
        self.open.is_none() && self.sealed.is_empty() && self.out_of_order.is_empty()
    }
}

/// Memory accounting of the head, in bytes (estimates for open chunks, exact for sealed ones).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HeadUsage {
    pub(crate) sealed_bytes: u64,
    pub(crate) open_points: u64,
    pub(crate) out_of_order_points: u64,
    pub(crate) columns: u64,
    pub(crate) points: u64,
}

impl HeadUsage {
    /// Estimated bytes held: sealed chunks, open chunks at ~2 bytes a point, out-of-order
    /// points as owned values, and the per-column structures.
    pub(crate) fn bytes(&self) -> u64 {
        self.sealed_bytes
            + self.open_points * 2
            + self.out_of_order_points * 48
            + self.columns * (std::mem::size_of::<ColumnHead>() as u64 + 64)
    }
}

/// What a freeze moved out of the head, to be written into segments.
pub(crate) struct FrozenHead {
    /// Column id and its chunks in recency order (later chunks win on equal timestamps).
    pub(crate) columns: Vec<(u32, Vec<Arc<EncodedChunk>>)>,
    pub(crate) bytes: u64,
}

impl FrozenHead {
    /// The earliest timestamp it holds.
    pub(crate) fn min_time(&self) -> Option<i64> {
        self.columns
            .iter()
            .flat_map(|(_, chunks)| chunks.iter())
            .map(|c| c.header.stats.min_time)
            .min()
    }

    pub(crate) fn chunks(&self, column: u32) -> &[Arc<EncodedChunk>] {
        match self.columns.binary_search_by_key(&column, |(c, _)| *c) {
            Ok(i) => &self.columns[i].1,
            Err(_) => &[],
        }
    }
}

pub(crate) struct Head {
    columns: Vec<Option<Box<ColumnHead>>>,
    options: HeadOptions,
    usage: HeadUsage,
}

impl Head {
    pub(crate) fn new(options: HeadOptions) -> Head {
        Head {
            columns: Vec::new(),
            options,
            usage: HeadUsage::default(),
        }
    }

    pub(crate) fn usage(&self) -> HeadUsage {
        self.usage
    }

    /// Appends one point to a column.
    pub(crate) fn append(
        &mut self,
        column: u32,
        field_type: FieldType,
        ts: i64,
        value: &FieldValue<'_>,
    ) {
        let index = column as usize;
        if self.columns.len() <= index {
            self.columns.resize_with(index + 1, || None);
        }
        let slot = &mut self.columns[index];
        let col = match slot {
            Some(col) => col,
            None => {
                self.usage.columns += 1;
                slot.insert(Box::default())
            }
        };
        self.usage.points += 1;
        let options = self.options;
        match &mut col.open {
            Some(open) => {
                let last = open.last_time().unwrap_or(i64::MIN);
                if ts > last && ts < open.span_end && open.len() < options.max_chunk_points {
                    open.push(ts, value);
                    self.usage.open_points += 1;
                } else if ts > last {
                    Self::seal(col, &options, &mut self.usage);
                    let mut open = OpenChunk::new(field_type, ts, options.chunk_span);
                    open.push(ts, value);
                    col.open = Some(open);
                    self.usage.open_points += 1;
                } else {
                    col.out_of_order.push((ts, value.clone().into_owned()));
                    self.usage.out_of_order_points += 1;
                    if col.out_of_order.len() >= options.max_out_of_order_points {
                        Self::seal(col, &options, &mut self.usage);
                    }
                }
            }
            None => {
                let mut open = OpenChunk::new(field_type, ts, options.chunk_span);
                open.push(ts, value);
                col.open = Some(open);
                self.usage.open_points += 1;
            }
        }
    }

    /// Seals the open chunk, folding in the out-of-order buffer.
    fn seal(col: &mut ColumnHead, options: &HeadOptions, usage: &mut HeadUsage) {
        let open = col.open.take();
        if let Some(open) = &open {
            usage.open_points -= open.len() as u64;
        }
        if col.out_of_order.is_empty() {
            if let Some(chunk) = open.as_ref().and_then(OpenChunk::to_encoded) {
                usage.sealed_bytes += chunk.bytes.len() as u64;
                col.sealed.push(Arc::new(chunk));
            }
            return;
        }
        let out_of_order = std::mem::take(&mut col.out_of_order);
        usage.out_of_order_points -= out_of_order.len() as u64;
        let Some(field_type) = open
            .as_ref()
            .map(|o| o.values.field_type())
            .or_else(|| out_of_order.first().map(|(_, v)| v.field_type()))
        else {
            return;
        };
        // Merge: the open chunk's points first, then the buffer in arrival order; a stable
        // sort by time keeps that order among equal timestamps and the last one wins.
        let mut points: Vec<(i64, FieldValue<'static>)> = Vec::new();
        if let Some(chunk) = open.as_ref().and_then(OpenChunk::to_encoded) {
            let mut ts = Vec::new();
            let mut values = ColumnValues::new(field_type);
            if crate::chunk::decode_chunk(&chunk.bytes, &mut ts, &mut values).is_ok() {
                for (i, t) in ts.iter().enumerate() {
                    if let Some(v) = values.get(i) {
                        points.push((*t, v.into_owned()));
                    }
                }
            }
        }
        points.extend(out_of_order);
        points.sort_by_key(|(t, _)| *t);
        let mut deduped: Vec<(i64, FieldValue<'static>)> = Vec::with_capacity(points.len());
        for (t, v) in points {
            match deduped.last_mut() {
                Some(last) if last.0 == t => *last = (t, v),
                _ => deduped.push((t, v)),
            }
        }
        for chunk in chunks_from_points(&deduped, field_type, options) {
            usage.sealed_bytes += chunk.bytes.len() as u64;
            col.sealed.push(Arc::new(chunk));
        }
    }

    /// Moves sealed chunks (and with `everything`, open chunks and out-of-order buffers too)
    /// out of the head. Columns with out-of-order points are always sealed, so what stays is
    /// only open chunks, which the caller checkpoints into the new WAL file.
    pub(crate) fn freeze(&mut self, everything: bool) -> FrozenHead {
        let options = self.options;
        let mut frozen = Vec::new();
        let mut bytes = 0u64;
        for (index, slot) in self.columns.iter_mut().enumerate() {
            let Some(col) = slot else { continue };
            if everything || !col.out_of_order.is_empty() {
                Self::seal(col, &options, &mut self.usage);
            }
            if !col.sealed.is_empty() {
                let chunks = std::mem::take(&mut col.sealed);
                let n: u64 = chunks.iter().map(|c| c.bytes.len() as u64).sum();
                bytes += n;
                self.usage.sealed_bytes -= n;
                frozen.push((index as u32, chunks));
            }
            if col.is_empty() {
                *slot = None;
                self.usage.columns -= 1;
            }
        }
        self.usage.points = self.usage.open_points + self.usage.out_of_order_points;
        FrozenHead {
            columns: frozen,
            bytes,
        }
    }

    /// The earliest timestamp held in memory, in any column.
    pub(crate) fn min_time(&self) -> Option<i64> {
        let mut min: Option<i64> = None;
        let mut see = |t: i64| min = Some(min.map_or(t, |m| m.min(t)));
        for column in self.columns.iter().flatten() {
            if let Some(stats) = column.open.as_ref().and_then(|o| o.stats.get()) {
                see(stats.min_time);
            }
            for chunk in &column.sealed {
                see(chunk.header.stats.min_time);
            }
            for (t, _) in &column.out_of_order {
                see(*t);
            }
        }
        min
    }

    /// Columns with any data in the head.
    pub(crate) fn columns_with_data(&self) -> roaring::RoaringBitmap {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.as_ref().is_some_and(|c| !c.is_empty()))
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Calls `visit` with every open chunk's points (the state a checkpoint must carry).
    pub(crate) fn for_each_open_chunk(&self, mut visit: impl FnMut(u32, &[i64], &ColumnValues)) {
        let mut ts = Vec::new();
        let mut values = ColumnValues::new(FieldType::Float);
        for (index, slot) in self.columns.iter().enumerate() {
            let Some(open) = slot.as_ref().and_then(|c| c.open.as_ref()) else {
                continue;
            };
            let Some(chunk) = open.to_encoded() else {
                continue;
            };
            if crate::chunk::decode_chunk(&chunk.bytes, &mut ts, &mut values).is_ok() {
                visit(index as u32, &ts, &values);
            }
        }
    }

    /// The chunks of `column` that may hold points in `[min_time, max_time]`, in recency order,
    /// copied so the caller can read them without holding the head's lock.
    pub(crate) fn capture(
        &self,
        column: u32,
        min_time: i64,
        max_time: i64,
        out: &mut Vec<Arc<EncodedChunk>>,
    ) {
        let Some(Some(col)) = self.columns.get(column as usize) else {
            return;
        };
        let overlaps = |c: &EncodedChunk| {
            c.header.stats.min_time <= max_time && c.header.stats.max_time >= min_time
        };
        for chunk in &col.sealed {
            if overlaps(chunk) {
                out.push(chunk.clone());
            }
        }
        if let Some(open) = &col.open
            && let Some(stats) = open.stats.get()
            && stats.min_time <= max_time
            && stats.max_time >= min_time
            && let Some(chunk) = open.to_encoded()
        {
            out.push(Arc::new(chunk));
        }
        if !col.out_of_order.is_empty() {
            let mut points: Vec<(i64, &FieldValue<'static>)> =
                col.out_of_order.iter().map(|(t, v)| (*t, v)).collect();
            points.sort_by_key(|(t, _)| *t);
            let mut deduped: Vec<(i64, FieldValue<'static>)> = Vec::with_capacity(points.len());
            for (t, v) in points {
                match deduped.last_mut() {
                    Some(last) if last.0 == t => *last = (t, v.clone()),
                    _ => deduped.push((t, v.clone())),
                }
            }
            let field_type = deduped.first().map(|(_, v)| v.field_type());
            if let Some(field_type) = field_type {
                let options = HeadOptions {
                    max_chunk_points: MAX_CHUNK_POINTS,
                    ..self.options
                };
                for chunk in chunks_from_points(&deduped, field_type, &options) {
                    if overlaps(&chunk) {
                        out.push(Arc::new(chunk));
                    }
                }
            }
        }
    }
}

/// Cuts sorted, deduplicated points into chunks at span boundaries and the point limit.
pub(crate) fn chunks_from_points(
    points: &[(i64, FieldValue<'static>)],
    field_type: FieldType,
    options: &HeadOptions,
) -> Vec<EncodedChunk> {
    let mut out = Vec::new();
    let mut ts = Vec::new();
    let mut values = ColumnValues::new(field_type);
    let mut span_end = i64::MIN;
    for (t, v) in points {
        if !ts.is_empty() && (*t >= span_end || ts.len() >= options.max_chunk_points) {
            out.extend(EncodedChunk::encode(&ts, &values));
            ts.clear();
            values.clear();
        }
        if ts.is_empty() {
            span_end = t
                .div_euclid(options.chunk_span)
                .saturating_mul(options.chunk_span)
                .saturating_add(options.chunk_span);
        }
        ts.push(*t);
        values.push(v);
    }
    if !ts.is_empty() {
        out.extend(EncodedChunk::encode(&ts, &values));
    }
    out
}
