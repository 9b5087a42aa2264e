// Number formatting by unit, for axes, tooltips, legends, stats and tables.
// Every formatter takes a number (or null) and returns a short string a person can read at a
// glance; `null` and non-finite values become an en dash.

const BINARY_PREFIXES = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
const SI_PREFIXES = ["", "k", "M", "G", "T", "P"];

function significant(value, digits = 3) {
  if (value === 0) return "0";
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const decimals = Math.max(0, Math.min(6, digits - 1 - magnitude));
  return value.toFixed(decimals).replace(/\.0+$|(\.\d*?)0+$/, "$1");
}

/** Divides by `base` until the value is below it: [value, prefix]. */
function scaled(value, base, prefixes) {
  let index = 0;
  let scaledValue = value;
  while (Math.abs(scaledValue) >= base && index < prefixes.length - 1) {
    scaledValue /= base;
    index += 1;
  }
  return [significant(scaledValue), prefixes[index]];
}

function shortNumber(value) {
  const [number, prefix] = scaled(value, 1000, SI_PREFIXES);
  return number + prefix;
}

/** A number with an SI-prefixed unit: 1.2 kW. */
function withUnit(value, unit) {
  const [number, prefix] = scaled(value, 1000, SI_PREFIXES);
  return `${number} ${prefix}${unit}`;
}

function duration(ms) {
  const abs = Math.abs(ms);
  if (abs === 0) return "0 ms";
  if (abs < 1) return `${significant(ms * 1000)} µs`;
  if (abs < 1000) return `${significant(ms)} ms`;
  if (abs < 60_000) return `${significant(ms / 1000)} s`;
  if (abs < 3_600_000) return `${significant(ms / 60_000)} min`;
  return `${significant(ms / 3_600_000)} h`;
}

function dollars(value) {
  const abs = Math.abs(value);
  if (abs === 0) return "$0";
  if (abs >= 1000) return `$${shortNumber(value)}`;
  if (abs >= 1) return `$${value.toFixed(2)}`;
  return `$${significant(value, 2)}`;
}

const FORMATTERS = {
  none: shortNumber,
  count: shortNumber,
  percent: (v) => `${significant(v)}%`,
  bytes: (v) => scaled(v, 1024, BINARY_PREFIXES).join(" "),
  bytes_per_second: (v) => `${FORMATTERS.bytes(v)}/s`,
  ms: duration,
  seconds: (v) => duration(v * 1000),
  tokens: (v) => `${shortNumber(v)} tok`,
  tokens_per_second: (v) => `${shortNumber(v)} tok/s`,
  requests_per_second: (v) => `${shortNumber(v)} req/s`,
  usd: dollars,
  watts: (v) => withUnit(v, "W"),
  joules: (v) => withUnit(v, "J"),
  celsius: (v) => `${significant(v)} °C`,
  mhz: (v) => `${significant(v, 4)} MHz`,
};

/** Formats `value` in `unit` (one of the names in FORMATTERS; anything else is `none`). */
export function formatValue(value, unit) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  const formatter = FORMATTERS[unit] || FORMATTERS.none;
  return formatter(value);
}

/** The units a panel may use, with the name shown in the editor. */
export const UNIT_CHOICES = [
  ["none", "number"],
  ["count", "count"],
  ["percent", "percent (%)"],
  ["bytes", "bytes"],
  ["bytes_per_second", "bytes/s"],
  ["ms", "milliseconds"],
  ["seconds", "seconds"],
  ["tokens", "tokens"],
  ["tokens_per_second", "tokens/s"],
  ["requests_per_second", "requests/s"],
  ["usd", "US dollars ($)"],
  ["watts", "watts (W)"],
  ["joules", "joules (J)"],
  ["celsius", "degrees Celsius"],
  ["mhz", "megahertz"],
];

/** A time in milliseconds as `YYYY-MM-DD HH:MM:SS` in local time. */
export function formatTime(ms, withSeconds = true) {
  const date = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}${withSeconds ? `:${pad(date.getSeconds())}` : ""}`;
  return `${day} ${time}`;
}
