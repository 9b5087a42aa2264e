// A panel: a title, one or more queries, and a chart type. Loading a panel picks the GROUP BY
// interval from the time range and the panel's width in pixels, expands the query macros,
// runs the queries in one request, and draws the answer (or says why there is nothing).
//
// A panel definition may list several sources (a measurement and its queries); every source
// whose measurement exists in the database is asked, and the series of all that return data
// are drawn together (a stat shows the first one's). The overview uses this to read the
// samplers' measurements (cpu, nvidia_smi, ...) and gen.py's (hw, gpu) with the same panels.

import { ApiError, allSeries, runQuery, statementErrors } from "./api.js";
import { drawHeatmap, drawStat, drawTable, drawTimeSeries } from "./chart.js";
import { expandMacros, measurementOf, pickIntervalMs, tagConditions } from "./time.js";

/** Space the y axis and padding take from a panel's width, in pixels. */
const AXIS_WIDTH_PX = 80;

/**
 * Pixels per point a panel asks for unless its definition says otherwise: one point every
 * two pixels draws as smoothly as one per pixel, for half the bytes.
 */
const DEFAULT_PIXELS_PER_POINT = 2;
/** Bars and heatmap cells need a few pixels each to be seen. */
const PIXELS_PER_POINT_BY_TYPE = { bar: 6, heatmap: 6 };

/** Creates the element of a panel (empty until loaded). */
export function createPanelElement(definition) {
  const element = document.createElement("section");
  element.className = `panel panel-${definition.type}`;
  element.dataset.panelId = definition.id;
  element.dataset.state = "loading";
  element.style.setProperty("--span", String(definition.span || 1));
  const header = document.createElement("header");
  header.className = "panel-header";
  const title = document.createElement("h3");
  title.className = "panel-title";
  title.textContent = definition.title || "Untitled panel";
  if (definition.description) title.title = definition.description;
  const tools = document.createElement("div");
  tools.className = "panel-tools";
  header.append(title, tools);
  const body = document.createElement("div");
  body.className = "panel-body";
  const status = document.createElement("div");
  status.className = "panel-status";
  element.append(header, body, status);
  return element;
}

function setState(element, state, details = {}) {
  element.dataset.state = state;
  for (const [key, value] of Object.entries(details)) element.dataset[key] = String(value);
}

function message(element, kind, heading, text) {
  const body = element.querySelector(".panel-body");
  body.replaceChildren();
  const box = document.createElement("div");
  box.className = `panel-message panel-${kind}`;
  const strong = document.createElement("strong");
  strong.textContent = heading;
  box.append(strong);
  if (text) {
    const paragraph = document.createElement(kind === "error" ? "pre" : "p");
    paragraph.textContent = text;
    box.append(paragraph);
  }
  body.append(box);
}

/** Series label: the group's tag values, and the column when a query has several. */
function defaultLabel(tags, column, nColumns, name, nNames) {
  // A bare number ("0", a GPU index) says little on its own: "gpu 0" says what it is.
  const parts = Object.entries(tags || {})
    .filter(([, v]) => v !== "")
    .map(([k, v]) => (/^\d+$/.test(v) ? `${k} ${v}` : v));
  if (nNames > 1) parts.unshift(name);
  if (nColumns > 1 || parts.length === 0) parts.push(column);
  return parts.join(" · ");
}

/** Query series to chart series: one per value column, times in ms. */
export function toChartSeries(querySeries, label) {
  const names = new Set(querySeries.map((s) => s.name));
  const out = [];
  for (const s of querySeries) {
    const columns = s.columns || [];
    const timeIndex = columns.indexOf("time");
    const valueColumns = columns.map((c, i) => i).filter((i) => i !== timeIndex);
    for (const i of valueColumns) {
      const values = [];
      const times = [];
      for (const row of s.values || []) {
        const value = row[i];
        times.push(timeIndex >= 0 ? row[timeIndex] : 0);
        values.push(typeof value === "number" ? value : value === null ? null : Number(value));
      }
      out.push({
        label: (label || defaultLabel)(s.tags || {}, columns[i], valueColumns.length, s.name, names.size),
        tags: s.tags || {},
        column: columns[i],
        times,
        values,
      });
    }
  }
  return out;
}

function hasValues(chartSeries) {
  return chartSeries.some((s) => s.values.some((v) => v !== null && v !== undefined && !Number.isNaN(v)));
}

/** The sources of a definition to try, in order: those whose measurement exists. */
function candidateSources(definition, context) {
  if (definition.sources) {
    return definition.sources.filter((source) => context.measurements.has(source.measurement));
  }
  return [{ queries: definition.queries, minIntervalMs: definition.minIntervalMs || 1000 }];
}

/**
 * Loads and draws one panel. `context` holds the database, the resolved range, the active
 * filters, the tag keys of every measurement and an AbortSignal. Resolves when the panel is
 * drawn (or shows why it is empty); never rejects.
 */
export async function loadPanel(element, definition, context) {
  const body = element.querySelector(".panel-body");
  const status = element.querySelector(".panel-status");
  setState(element, "loading");
  element.classList.add("is-loading");
  const sources = candidateSources(definition, context);
  if (sources.length === 0) {
    element.classList.remove("is-loading");
    setState(element, "empty", { series: 0, points: 0 });
    message(element, "empty", "No data", definition.empty || "");
    status.textContent = "";
    return;
  }
  const rangeMs = context.range.toMs - context.range.fromMs;
  const widthPx = Math.max(100, (body.clientWidth || 400) - AXIS_WIDTH_PX);
  const pixelsPerPoint =
    definition.pixelsPerPoint || PIXELS_PER_POINT_BY_TYPE[definition.type] || DEFAULT_PIXELS_PER_POINT;
  // Every source whose measurement exists is asked at once (usually there is one).
  const answers = await Promise.all(
    sources.map(async (source) => {
      const intervalMs = pickIntervalMs(rangeMs, widthPx / pixelsPerPoint, source.minIntervalMs || 1000);
      const fromMs = Math.floor(context.range.fromMs / intervalMs) * intervalMs;
      const statements = source.queries.map((query) => {
        const measurement = source.measurement || measurementOf(query);
        const tagFilter = tagConditions(context.filters, context.filterKeys, context.tagKeys.get(measurement));
        return expandMacros(query, { fromMs, toMs: context.range.toMs, intervalMs, tagFilter }).trim().replace(/;+$/, "");
      });
      const text = statements.join(";\n");
      try {
        const results = await runQuery(text, { db: definition.database || context.db, signal: context.signal });
        const errors = statementErrors(results);
        const querySeries = allSeries(results);
        const chartSeries = definition.transform
          ? definition.transform(querySeries, { intervalMs })
          : toChartSeries(querySeries, definition.label);
        return { text, intervalMs, errors, querySeries, chartSeries, error: null };
      } catch (error) {
        return { text, intervalMs, errors: [], querySeries: [], chartSeries: [], error };
      }
    }),
  );
  if (answers.some((a) => a.error?.name === "AbortError")) return;
  element.dataset.query = answers.map((a) => a.text).join(";\n");
  // A stat shows one number: the first source with data. Charts and tables show the series of
  // every source with data, so a host sampled by tallyd and hosts written by others share one chart.
  const withData = answers.filter((a) => hasValues(a.chartSeries));
  const drawn = definition.type === "stat" ? withData.slice(0, 1) : withData;
  const errors = answers.flatMap((a) => a.errors);
  const lastError = answers.map((a) => a.error).find(Boolean) || (errors.length ? new ApiError(errors.join("\n")) : null);
  if (drawn.length) {
    const chartSeries = drawn.flatMap((a) => a.chartSeries);
    const querySeries = drawn.flatMap((a) => a.querySeries);
    element.classList.remove("is-loading");
    setState(element, "data", {
      series: chartSeries.length,
      points: Math.max(...chartSeries.map((s) => s.values.length)),
      intervalMs: Math.min(...drawn.map((a) => a.intervalMs)),
      widthPx,
    });
    draw(element, definition, querySeries, chartSeries, context);
    status.textContent = errors.length ? `Some statements failed: ${errors.join("; ")}` : "";
    return;
  }
  element.classList.remove("is-loading");
  if (lastError) {
    setState(element, "error", { series: 0, points: 0 });
    message(element, "error", "Query failed", lastError.rendered || lastError.message);
  } else {
    setState(element, "empty", { series: 0, points: 0 });
    message(
      element,
      "empty",
      "No data in this time range",
      definition.empty || "The queries returned no values: check the database, the time range and the filters.",
    );
  }
  status.textContent = "";
}

function draw(element, definition, querySeries, chartSeries, context) {
  const body = element.querySelector(".panel-body");
  const unit = definition.unit || "none";
  switch (definition.type) {
    case "stat":
      drawStat(body, chartSeries, { unit, subtitle: definition.subtitle ? definition.subtitle(chartSeries, context) : "" });
      break;
    case "table":
      drawTable(body, definition.tableRows ? definition.tableRows(querySeries) : querySeries, {
        unit,
        columnUnits: definition.columnUnits || {},
        sortBy: definition.sortBy || null,
      });
      break;
    case "heatmap":
      drawHeatmap(body, chartSeries, { unit, range: context.range });
      break;
    default:
      element.chart = drawTimeSeries(body, chartSeries, {
        type: definition.type,
        unit,
        range: context.range,
        onZoom: context.onZoom,
      });
  }
}
