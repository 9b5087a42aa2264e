// Drawing: time-series charts (line, area, stacked bars) with uPlot, plus a heatmap, a stat
// and a table drawn by hand. Every renderer takes series in one shape:
//   { label, times: [ms...], values: [number|null...] }
// and a unit for formatting.

import { formatTime, formatValue } from "./units.js";

const PALETTE = [
  "#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4",
  "#ec4899", "#84cc16", "#f97316", "#6366f1", "#14b8a6", "#a855f7",
  "#eab308", "#22c55e", "#0ea5e9", "#f43f5e",
];

export function colorAt(index) {
  return PALETTE[index % PALETTE.length];
}

function withAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

function themeColors() {
  const style = getComputedStyle(document.documentElement);
  const read = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return {
    text: read("--muted", "#667"),
    grid: read("--grid", "rgba(128,128,128,0.15)"),
    background: read("--panel", "#fff"),
    accent: read("--accent", "#3b82f6"),
  };
}

let measuringContext = null;

/** Width of the y axis: the widest tick label plus the tick and a gap. */
function axisSize(u, values) {
  if (!values || !values.length) return 40;
  measuringContext ??= document.createElement("canvas").getContext("2d");
  measuringContext.font = "12px system-ui, sans-serif";
  const widest = Math.max(...values.map((v) => measuringContext.measureText(String(v)).width));
  return Math.ceil(widest) + 16;
}

/** Puts series that share (or nearly share) a time grid on one x axis, in seconds. */
function alignSeries(series) {
  const times = new Set();
  for (const one of series) for (const t of one.times) times.add(t);
  const xs = Array.from(times).sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const columns = series.map((one) => {
    const column = new Array(xs.length).fill(null);
    one.times.forEach((t, i) => {
      column[index.get(t)] = one.values[i];
    });
    return column;
  });
  return { xs: xs.map((t) => t / 1000), columns };
}

/** Cumulative sums of the shown series, for stacked bars (hidden ones add nothing). */
function stackColumns(columns, shown) {
  const length = columns[0]?.length || 0;
  const sums = new Array(length).fill(0);
  return columns.map((column, i) => {
    if (!shown[i]) return column.map(() => null);
    return column.map((value, j) => {
      if (value === null || value === undefined) return null;
      sums[j] += value;
      return sums[j];
    });
  });
}

function tooltipPlugin(tooltip, unit, rawColumns, labels, order) {
  return {
    hooks: {
      setCursor: (u) => {
        const { left, top, idx } = u.cursor;
        if (idx === null || idx === undefined || left < 0) {
          tooltip.hidden = true;
          return;
        }
        const rows = [];
        order.forEach((seriesIndex, position) => {
          if (!u.series[position + 1].show) return;
          const value = rawColumns[seriesIndex][idx];
          if (value === null || value === undefined) return;
          rows.push({ label: labels[seriesIndex], value, color: colorAt(seriesIndex) });
        });
        if (!rows.length) {
          tooltip.hidden = true;
          return;
        }
        rows.sort((a, b) => b.value - a.value);
        tooltip.replaceChildren();
        const head = document.createElement("div");
        head.className = "tooltip-time";
        head.textContent = formatTime(u.data[0][idx] * 1000);
        tooltip.append(head);
        for (const row of rows.slice(0, 12)) {
          const line = document.createElement("div");
          line.className = "tooltip-row";
          const swatch = document.createElement("span");
          swatch.className = "swatch";
          swatch.style.background = row.color;
          const name = document.createElement("span");
          name.className = "tooltip-label";
          name.textContent = row.label;
          const value = document.createElement("span");
          value.className = "tooltip-value";
          value.textContent = formatValue(row.value, unit);
          line.append(swatch, name, value);
          tooltip.append(line);
        }
        if (rows.length > 12) {
          const more = document.createElement("div");
          more.className = "tooltip-more";
          more.textContent = `and ${rows.length - 12} more`;
          tooltip.append(more);
        }
        tooltip.hidden = false;
        const plotWidth = u.over.clientWidth;
        const x = left + 12 + tooltip.offsetWidth > plotWidth ? left - tooltip.offsetWidth - 12 : left + 12;
        tooltip.style.transform = `translate(${Math.max(0, x)}px, ${Math.max(0, top - 10)}px)`;
      },
    },
  };
}

/**
 * Draws series as a line, area or stacked bar chart into `target` (emptied first).
 * `range` is `{fromMs, toMs}`; `onZoom(fromMs, toMs)` is called after a drag selection.
 * Returns the uPlot instance.
 */
export function drawTimeSeries(target, series, { type = "line", unit = "none", range, onZoom, height = 210 }) {
  target.replaceChildren();
  const colors = themeColors();
  const labels = series.map((s) => s.label);
  const { xs, columns } = alignSeries(series);
  const stacked = type === "bar" && series.length > 1;
  // Stacked bars draw the tallest (cumulative) series first so shorter ones stay visible.
  const order = stacked ? series.map((_, i) => series.length - 1 - i) : series.map((_, i) => i);
  const shown = series.map(() => true);
  const plotted = () => {
    const source = stacked ? stackColumns(columns, shown) : columns;
    return [xs, ...order.map((i) => source[i])];
  };
  const intervalSeconds = xs.length > 1 ? xs[1] - xs[0] : 60;
  const uplotSeries = [
    {},
    ...order.map((i) => {
      const color = colorAt(i);
      const entry = {
        label: labels[i],
        stroke: color,
        width: type === "bar" ? 0 : 1.5,
        points: { show: false },
        value: (u, v, seriesIdx, idx) =>
          idx === null || idx === undefined ? "" : formatValue(columns[i][idx], unit),
      };
      if (type === "area") entry.fill = withAlpha(color, 0.16);
      if (type === "bar") {
        entry.fill = withAlpha(color, 0.85);
        entry.paths = uPlot.paths.bars({ size: [0.8, Infinity, 1], align: 0 });
      }
      return entry;
    }),
  ];
  const tooltip = document.createElement("div");
  tooltip.className = "tooltip";
  tooltip.hidden = true;
  const width = Math.max(200, target.clientWidth || 400);
  const options = {
    width,
    height,
    series: uplotSeries,
    legend: { live: false },
    cursor: { drag: { x: true, y: false, setScale: false }, points: { size: 6 } },
    scales: {
      x: {
        time: true,
        range: (u, min, max) =>
          range ? [range.fromMs / 1000, range.toMs / 1000] : [min, max + (type === "bar" ? intervalSeconds : 0)],
      },
      y: {
        range: (u, min, max) => {
          const low = Math.min(0, min ?? 0);
          const high = max === null || max === undefined || max <= low ? low + 1 : max * 1.08;
          return [low, unit === "percent" && max <= 100 && max > 50 ? 100 : high];
        },
      },
    },
    axes: [
      { stroke: colors.text, grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid }, space: 70 },
      {
        stroke: colors.text,
        grid: { stroke: colors.grid, width: 1 },
        ticks: { stroke: colors.grid },
        size: axisSize,
        values: (u, splits) => splits.map((v) => formatValue(v, unit)),
      },
    ],
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width > 3 && onZoom) {
            const from = u.posToVal(u.select.left, "x") * 1000;
            const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            onZoom(Math.round(from), Math.round(to));
          }
        },
      ],
      setSeries: [
        (u, seriesIdx) => {
          if (seriesIdx === null || seriesIdx === undefined) return;
          shown[order[seriesIdx - 1]] = u.series[seriesIdx].show;
          if (stacked) u.setData(plotted(), false);
        },
      ],
    },
    plugins: [tooltipPlugin(tooltip, unit, columns, labels, order)],
  };
  const chart = new uPlot(options, plotted(), target);
  chart.over.append(tooltip);
  chart.over.addEventListener("mouseleave", () => {
    tooltip.hidden = true;
  });
  return chart;
}

/** Colour for a heatmap cell: from transparent to the accent colour, by share of the maximum. */
function heatColor(share) {
  // A square root keeps small counts visible next to a busy row.
  const t = Math.sqrt(Math.max(0, Math.min(1, share)));
  const from = [59, 130, 246];
  const to = [239, 68, 68];
  const rgb = from.map((f, i) => Math.round(f + (to[i] - f) * t));
  return `rgba(${rgb[0]}, ${rgb[1]}, ${rgb[2]}, ${0.12 + 0.88 * t})`;
}

function bucketOrder(series) {
  // Histogram buckets (`le` tags, or labels that are numbers) sort by their bound.
  const bound = (s) => {
    const text = s.tags?.le ?? s.label;
    if (text === "+Inf" || text === "inf") return Infinity;
    const n = parseFloat(text);
    return Number.isNaN(n) ? null : n;
  };
  const bounds = series.map(bound);
  if (bounds.every((b) => b !== null)) {
    return series.map((s, i) => i).sort((a, b) => bounds[a] - bounds[b]);
  }
  return series.map((s, i) => i);
}

/** Draws series as a heatmap: one row per series (lowest bucket at the bottom), one column per time. */
export function drawHeatmap(target, series, { unit = "none", range, height = 210 }) {
  target.replaceChildren();
  const colors = themeColors();
  const order = bucketOrder(series);
  const { xs, columns } = alignSeries(series);
  const wrapper = document.createElement("div");
  wrapper.className = "heatmap";
  const canvas = document.createElement("canvas");
  const tooltip = document.createElement("div");
  tooltip.className = "tooltip";
  tooltip.hidden = true;
  wrapper.append(canvas, tooltip);
  target.append(wrapper);
  const width = Math.max(200, target.clientWidth || 400);
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const context = canvas.getContext("2d");
  context.scale(ratio, ratio);
  const left = 112;
  const bottom = 22;
  const plotWidth = width - left - 8;
  const plotHeight = height - bottom - 4;
  const fromS = range ? range.fromMs / 1000 : xs[0];
  const toS = range ? range.toMs / 1000 : xs.at(-1) + 1;
  const step = xs.length > 1 ? xs[1] - xs[0] : toS - fromS;
  const xOf = (s) => left + ((s - fromS) / (toS - fromS)) * plotWidth;
  const rowHeight = plotHeight / Math.max(1, order.length);
  let max = 0;
  for (const column of columns) for (const v of column) if (v !== null && v > max) max = v;
  context.font = "11px system-ui, sans-serif";
  context.fillStyle = colors.text;
  context.textBaseline = "middle";
  order.forEach((seriesIndex, row) => {
    const y = 4 + plotHeight - (row + 1) * rowHeight;
    context.fillStyle = colors.text;
    const label = series[seriesIndex].label;
    context.fillText(label.length > 17 ? `${label.slice(0, 16)}…` : label, 4, y + rowHeight / 2);
    columns[seriesIndex].forEach((value, i) => {
      if (value === null || value === undefined || value === 0) return;
      const x0 = xOf(xs[i]);
      const x1 = xOf(xs[i] + step);
      context.fillStyle = heatColor(max ? value / max : 0);
      context.fillRect(x0, y + 1, Math.max(1, x1 - x0 - 0.5), rowHeight - 2);
    });
  });
  context.fillStyle = colors.text;
  context.textBaseline = "alphabetic";
  for (let k = 0; k <= 4; k++) {
    const s = fromS + ((toS - fromS) * k) / 4;
    const label = formatTime(s * 1000, false).slice(11);
    const x = Math.min(width - 40, Math.max(left, xOf(s) - 16));
    context.fillText(label, x, height - 6);
  }
  canvas.addEventListener("mousemove", (event) => {
    const bounds = canvas.getBoundingClientRect();
    const x = event.clientX - bounds.left;
    const y = event.clientY - bounds.top;
    const row = Math.floor((4 + plotHeight - y) / rowHeight);
    const seconds = fromS + ((x - left) / plotWidth) * (toS - fromS);
    const i = xs.findIndex((t) => seconds >= t && seconds < t + step);
    if (x < left || row < 0 || row >= order.length || i < 0) {
      tooltip.hidden = true;
      return;
    }
    const seriesIndex = order[row];
    tooltip.textContent = `${formatTime(xs[i] * 1000)} · ${series[seriesIndex].label}: ${formatValue(columns[seriesIndex][i], unit)}`;
    tooltip.hidden = false;
    tooltip.style.transform = `translate(${Math.min(x + 12, width - 220)}px, ${Math.max(0, y - 28)}px)`;
  });
  canvas.addEventListener("mouseleave", () => {
    tooltip.hidden = true;
  });
}

/** Draws a single number (the last value of each series), with its label when there are several. */
export function drawStat(target, series, { unit = "none", subtitle = "" }) {
  target.replaceChildren();
  const box = document.createElement("div");
  box.className = "stat";
  for (const one of series.slice(0, 4)) {
    const value = [...one.values].reverse().find((v) => v !== null && v !== undefined);
    const item = document.createElement("div");
    item.className = "stat-item";
    const number = document.createElement("div");
    number.className = series.length > 1 ? "stat-value stat-value-small" : "stat-value";
    number.textContent = formatValue(value ?? null, unit);
    item.append(number);
    if (series.length > 1) {
      const label = document.createElement("div");
      label.className = "stat-label";
      label.textContent = one.label;
      item.append(label);
    }
    box.append(item);
  }
  if (subtitle) {
    const note = document.createElement("div");
    note.className = "stat-subtitle";
    note.textContent = subtitle;
    box.append(note);
  }
  target.append(box);
}

const MAX_TABLE_ROWS = 500;

/**
 * Draws query series as a table: the group's tags, then the columns. `columnUnits` maps a
 * column name to its unit (the panel unit otherwise; `time` is shown as a time).
 */
export function drawTable(target, querySeries, { unit = "none", columnUnits = {}, sortBy = null }) {
  target.replaceChildren();
  const tagKeys = [];
  for (const s of querySeries) for (const key of Object.keys(s.tags || {})) if (!tagKeys.includes(key)) tagKeys.push(key);
  const columns = [];
  for (const s of querySeries) for (const c of s.columns || []) if (!columns.includes(c)) columns.push(c);
  const showName = new Set(querySeries.map((s) => s.name)).size > 1;
  const header = [...(showName ? ["name"] : []), ...tagKeys, ...columns];
  let rows = [];
  for (const s of querySeries) {
    for (const values of s.values || []) {
      const record = {};
      if (showName) record.name = s.name;
      for (const key of tagKeys) record[key] = s.tags?.[key] ?? "";
      (s.columns || []).forEach((c, i) => {
        record[c] = values[i];
      });
      rows.push(record);
    }
  }
  let sortColumn = sortBy;
  let descending = true;
  const table = document.createElement("table");
  table.className = "data-table";
  const render = () => {
    if (sortColumn) {
      rows = [...rows].sort((a, b) => {
        const x = a[sortColumn];
        const y = b[sortColumn];
        const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return descending ? -order : order;
      });
    }
    table.replaceChildren();
    const head = table.createTHead().insertRow();
    for (const name of header) {
      const cell = document.createElement("th");
      cell.textContent = name + (name === sortColumn ? (descending ? " ▾" : " ▴") : "");
      cell.addEventListener("click", () => {
        descending = sortColumn === name ? !descending : true;
        sortColumn = name;
        render();
      });
      head.append(cell);
    }
    const body = table.createTBody();
    for (const record of rows.slice(0, MAX_TABLE_ROWS)) {
      const row = body.insertRow();
      for (const name of header) {
        const cell = row.insertCell();
        const value = record[name];
        if (name === "time" && typeof value === "number") cell.textContent = formatTime(value);
        else if (typeof value === "number") {
          cell.textContent = formatValue(value, columnUnits[name] || unit);
          cell.className = "number";
          cell.title = String(value);
        } else cell.textContent = value === null || value === undefined ? "" : String(value);
      }
    }
  };
  render();
  const scroller = document.createElement("div");
  scroller.className = "table-scroll";
  scroller.append(table);
  target.append(scroller);
  if (rows.length > MAX_TABLE_ROWS) {
    const note = document.createElement("div");
    note.className = "note";
    note.textContent = `Showing ${MAX_TABLE_ROWS} of ${rows.length} rows; copy as CSV for all of them.`;
    target.append(note);
  }
}
