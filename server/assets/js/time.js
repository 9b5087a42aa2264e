// Time ranges, GROUP BY intervals and the query macros.
//
// A range end is `now`, `now-<n><unit>` (units s, m, h, d, w) or an absolute time in
// milliseconds since the epoch. The GROUP BY interval is the smallest "nice" duration that
// keeps a series at or under one point per chart pixel, so a 30-day view asks for about as
// many points as a 1-hour one.

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Nice GROUP BY intervals, in milliseconds. */
const NICE_INTERVALS_MS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
  172800, 604800,
].map((s) => s * 1000);

export const RELATIVE_PRESETS = [
  ["now-5m", "Last 5 minutes"],
  ["now-15m", "Last 15 minutes"],
  ["now-1h", "Last 1 hour"],
  ["now-3h", "Last 3 hours"],
  ["now-6h", "Last 6 hours"],
  ["now-12h", "Last 12 hours"],
  ["now-24h", "Last 24 hours"],
  ["now-2d", "Last 2 days"],
  ["now-7d", "Last 7 days"],
  ["now-30d", "Last 30 days"],
];

/** Milliseconds for `now`, `now-6h`, an epoch in ms (number or digits) or an ISO time. */
export function resolveBound(text, nowMs) {
  if (typeof text === "number") return text;
  const trimmed = String(text).trim();
  if (trimmed === "now") return nowMs;
  const relative = /^now-(\d+)([smhdw])$/.exec(trimmed);
  if (relative) return nowMs - Number(relative[1]) * UNIT_MS[relative[2]];
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const parsed = Date.parse(trimmed);
  if (Number.isNaN(parsed)) throw new Error(`cannot read the time ${JSON.stringify(text)}`);
  return parsed;
}

/** Whether `text` is a range end the picker understands. */
export function isValidBound(text) {
  try {
    resolveBound(text, 0);
    return true;
  } catch {
    return false;
  }
}

/** `{fromMs, toMs}` for a range, resolved at `nowMs`. */
export function resolveRange(range, nowMs = Date.now()) {
  const fromMs = resolveBound(range.from, nowMs);
  let toMs = resolveBound(range.to, nowMs);
  if (toMs <= fromMs) toMs = fromMs + 1000;
  return { fromMs, toMs };
}

/** How a range reads in the picker's button. */
export function describeRange(range) {
  const preset = RELATIVE_PRESETS.find(([from]) => from === range.from);
  if (preset && range.to === "now") return preset[1];
  const relative = /^now-(\d+)([smhdw])$/.exec(range.from);
  if (relative && range.to === "now") {
    const names = { s: "second", m: "minute", h: "hour", d: "day", w: "week" };
    const n = Number(relative[1]);
    return `Last ${n} ${names[relative[2]]}${n === 1 ? "" : "s"}`;
  }
  const { fromMs, toMs } = resolveRange(range);
  const pad = (n) => String(n).padStart(2, "0");
  const show = (ms) => {
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  };
  return `${show(fromMs)} → ${show(toMs)}`;
}

/** The interval for a range drawn `widthPx` wide, at least `minMs`. */
export function pickIntervalMs(rangeMs, widthPx, minMs = 1000) {
  const raw = rangeMs / Math.max(50, Math.floor(widthPx));
  const nice = NICE_INTERVALS_MS.find((candidate) => candidate >= raw && candidate >= minMs);
  if (nice !== undefined) return nice;
  // Beyond a week per pixel: whole weeks.
  return Math.ceil(Math.max(raw, minMs) / NICE_INTERVALS_MS.at(-1)) * NICE_INTERVALS_MS.at(-1);
}

/** An interval as a query duration literal: 10s, 5m, 2h, 1d. */
export function durationLiteral(ms) {
  for (const [unit, size] of [
    ["w", UNIT_MS.w],
    ["d", UNIT_MS.d],
    ["h", UNIT_MS.h],
    ["m", UNIT_MS.m],
    ["s", UNIT_MS.s],
  ]) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function quoteIdentifier(name) {
  return `"${name.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function quoteString(value) {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/**
 * The tag conditions of the active filters that apply to `measurement`: a filter applies
 * through the first of its tag keys the measurement has (the `gpu` filter is the tag `gpu`
 * of gen.py's `gpu`, and `index` of the GPU sampler's `nvidia_smi`). Filters on tags the
 * measurement lacks are left out, so they never empty a panel they cannot describe.
 */
export function tagConditions(filters, filterKeys, measurementTagKeys) {
  const conditions = [];
  for (const [filter, value] of Object.entries(filters)) {
    if (!value) continue;
    const keys = filterKeys[filter] || [filter];
    const key = keys.find((candidate) => measurementTagKeys && measurementTagKeys.has(candidate));
    if (key) conditions.push(`${quoteIdentifier(key)} = ${quoteString(value)}`);
  }
  return conditions;
}

/**
 * Replaces the macros of a panel query: `$timeFilter` (the range), `$tagFilter` (` AND tag =
 * 'value'` for each filter that applies, or nothing), `$interval` (the GROUP BY interval) and
 * `$intervalSeconds` (the interval as a number of seconds, to turn counts into rates).
 */
export function expandMacros(text, { fromMs, toMs, intervalMs, tagFilter }) {
  const iso = (ms) => new Date(ms).toISOString();
  return text
    .replaceAll("$intervalSeconds", String(intervalMs / 1000))
    .replaceAll("$interval", durationLiteral(intervalMs))
    .replaceAll("$timeFilter", `time >= '${iso(fromMs)}' AND time < '${iso(toMs)}'`)
    .replaceAll("$tagFilter", tagFilter.length ? `AND ${tagFilter.join(" AND ")}` : "");
}

/** The measurement a query reads, when its first FROM names one plainly. */
export function measurementOf(query) {
  const match = /\bfrom\s+((?:"(?:[^"\\]|\\.)*"|[\w-]+)(?:\.(?:"(?:[^"\\]|\\.)*"|[\w-]*))*)/i.exec(query);
  if (!match) return null;
  const parts = match[1].match(/"(?:[^"\\]|\\.)*"|[\w-]+/g) || [];
  const last = parts.at(-1);
  if (!last) return null;
  return last.startsWith('"') ? last.slice(1, -1).replace(/\\(.)/g, "$1") : last;
}
