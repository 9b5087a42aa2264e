// The explorer: type a query (with completion, as in the shell), run it, see a chart and a
// table, see parse errors with a caret under the mistake, copy the answer as CSV.
// The macros of panels work here too, filled from the time picker and the filters.

import { ApiError, allSeries, complete, runQuery, runQueryCsv, statementErrors } from "./api.js";
import { drawTable, drawTimeSeries } from "./chart.js";
import { toChartSeries } from "./panels.js";
import { expandMacros, measurementOf, pickIntervalMs, tagConditions } from "./time.js";

const EXAMPLE =
  "SELECT mean(latency_ms) FROM llm WHERE $timeFilter $tagFilter GROUP BY time($interval), model";

let completionAbort = null;
let completionTimer = null;

/** Stops a completion being typed or fetched, so it cannot pop up after a run. */
function cancelCompletion(parts) {
  clearTimeout(completionTimer);
  if (completionAbort) completionAbort.abort();
  completionAbort = null;
  closeCompletions(parts);
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function build(view, app) {
  const input = element("textarea", {
    id: "query-input",
    class: "query-input",
    spellcheck: "false",
    autocomplete: "off",
    rows: "4",
    placeholder: EXAMPLE,
    "aria-label": "Query",
  });
  input.value = app.state.query;
  const list = element("ul", { id: "completions", class: "completions", role: "listbox" });
  list.hidden = true;
  const run = element("button", { id: "run-query", class: "primary", type: "button", text: "Run" });
  const copy = element("button", { id: "copy-csv", type: "button", text: "Copy as CSV" });
  const status = element("span", { id: "explorer-status", class: "status" });
  const help = element(
    "p",
    { class: "hint" },
    "Ctrl+Enter runs; Tab or Ctrl+Space completes. Macros: ",
    element("code", { text: "$timeFilter" }),
    " (the time picker's range), ",
    element("code", { text: "$tagFilter" }),
    " (the filters above), ",
    element("code", { text: "$interval" }),
    " (about one point per pixel), ",
    element("code", { text: "$intervalSeconds" }),
    ".",
  );
  const error = element("pre", { id: "query-error", class: "query-error" });
  error.hidden = true;
  const expanded = element("details", { class: "expanded" }, element("summary", { text: "Query sent" }), element("pre", { id: "expanded-query" }));
  expanded.hidden = true;
  const chart = element("div", { id: "explorer-chart", class: "panel explorer-chart" }, element("div", { class: "panel-body" }));
  chart.hidden = true;
  const table = element("div", { id: "explorer-table", class: "explorer-table" });
  const root = element(
    "div",
    { class: "explorer" },
    element("div", { class: "editor" }, input, list),
    element("div", { class: "explorer-actions" }, run, copy, status),
    help,
    error,
    expanded,
    chart,
    table,
  );
  view.replaceChildren(root);
  return { input, list, run, copy, status, error, expanded, chart, table };
}

/** The query with its macros expanded for the current range, filters and chart width. */
function expand(app, text, widthPx) {
  const context = app.panelContext();
  const { fromMs: rawFrom, toMs } = context.range;
  const intervalMs = pickIntervalMs(toMs - rawFrom, widthPx);
  const fromMs = Math.floor(rawFrom / intervalMs) * intervalMs;
  const measurement = measurementOf(text);
  const tagFilter = tagConditions(context.filters, context.filterKeys, context.tagKeys.get(measurement));
  return expandMacros(text, { fromMs, toMs, intervalMs, tagFilter });
}

async function runAndShow(app, parts) {
  const text = parts.input.value.trim();
  parts.error.hidden = true;
  parts.status.textContent = "";
  if (!text) {
    parts.status.textContent = `Type a query, for example: ${EXAMPLE}`;
    parts.chart.hidden = true;
    parts.table.replaceChildren();
    return;
  }
  const widthPx = Math.max(200, (parts.table.clientWidth || 800) - 80);
  const query = expand(app, text, widthPx);
  parts.expanded.hidden = query === text;
  parts.expanded.querySelector("pre").textContent = query;
  const started = performance.now();
  let results;
  try {
    results = await runQuery(query, { db: app.state.db, signal: app.pass.controller.signal });
  } catch (error) {
    if (error.name === "AbortError") return;
    parts.chart.hidden = true;
    parts.table.replaceChildren();
    parts.error.hidden = false;
    parts.error.textContent = error instanceof ApiError && error.rendered ? error.rendered : error.message;
    parts.error.dataset.position = error.position ? String(error.position.start) : "";
    return;
  }
  const elapsed = Math.round(performance.now() - started);
  const errors = statementErrors(results);
  if (errors.length) {
    parts.error.hidden = false;
    parts.error.textContent = errors.map((e, i) => `statement ${i + 1}: ${e}`).join("\n");
  }
  const series = allSeries(results);
  const rows = series.reduce((sum, s) => sum + (s.values || []).length, 0);
  parts.status.textContent = `${series.length} series, ${rows} rows in ${elapsed} ms`;
  const timeSeries = series.filter((s) => (s.columns || [])[0] === "time" && (s.values || []).length > 1);
  const chartSeries = toChartSeries(timeSeries).filter((s) => s.values.some((v) => typeof v === "number" && !Number.isNaN(v)));
  if (chartSeries.length) {
    parts.chart.hidden = false;
    const context = app.panelContext();
    drawTimeSeries(parts.chart.querySelector(".panel-body"), chartSeries, {
      type: "line",
      unit: "none",
      range: context.range,
      onZoom: context.onZoom,
      height: 260,
    });
  } else {
    parts.chart.hidden = true;
  }
  drawTable(parts.table, series, { unit: "none" });
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // The Clipboard API needs focus and permission; the older command works without.
    const scratch = document.createElement("textarea");
    scratch.value = text;
    scratch.style.position = "fixed";
    scratch.style.opacity = "0";
    document.body.append(scratch);
    scratch.select();
    const copied = document.execCommand("copy");
    scratch.remove();
    return copied;
  }
}

function closeCompletions(parts) {
  parts.list.hidden = true;
  parts.list.replaceChildren();
  parts.list.dataset.start = "";
}

function acceptCompletion(parts, item) {
  const start = Number(parts.list.dataset.start);
  const end = Number(parts.list.dataset.end);
  parts.input.setRangeText(item.dataset.insert, start, end, "end");
  closeCompletions(parts);
  parts.input.focus();
}

async function showCompletions(app, parts, { explicit }) {
  if (completionAbort) completionAbort.abort();
  completionAbort = new AbortController();
  const cursor = parts.input.selectionStart;
  let answer;
  try {
    answer = await complete(parts.input.value, cursor, app.state.db, completionAbort.signal);
  } catch {
    return;
  }
  if (document.activeElement !== parts.input || (!explicit && !answer.prefix)) {
    closeCompletions(parts);
    return;
  }
  const candidates = answer.candidates.filter((c) => c.label !== answer.prefix);
  if (!candidates.length) {
    closeCompletions(parts);
    return;
  }
  parts.list.replaceChildren(
    ...candidates.slice(0, 50).map((candidate, index) => {
      const item = element("li", { role: "option", class: index === 0 ? "selected" : "" });
      item.dataset.insert = candidate.insert;
      item.append(element("span", { class: "completion-label", text: candidate.label }), element("span", { class: "completion-kind", text: candidate.kind }));
      item.addEventListener("mousedown", (event) => {
        event.preventDefault();
        acceptCompletion(parts, item);
      });
      return item;
    }),
  );
  parts.list.dataset.start = String(answer.start);
  parts.list.dataset.end = String(answer.end);
  parts.list.hidden = false;
}

function moveSelection(parts, step) {
  const items = Array.from(parts.list.children);
  const current = items.findIndex((item) => item.classList.contains("selected"));
  const next = (current + step + items.length) % items.length;
  items.forEach((item, i) => item.classList.toggle("selected", i === next));
  items[next]?.scrollIntoView({ block: "nearest" });
}

export async function renderExplorer(view, app, { refreshOnly }) {
  let parts = view.querySelector(".explorer") ? view.explorerParts : null;
  if (!parts || !refreshOnly) {
    parts = build(view, app);
    view.explorerParts = parts;
    parts.input.addEventListener("input", () => {
      clearTimeout(completionTimer);
      completionTimer = setTimeout(() => showCompletions(app, parts, { explicit: false }), 120);
    });
    parts.input.addEventListener("keydown", (event) => {
      const open = !parts.list.hidden;
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        event.preventDefault();
        cancelCompletion(parts);
        app.navigate({ query: parts.input.value }, { push: false, render: false });
        runAndShow(app, parts);
      } else if ((event.ctrlKey && event.key === " ") || (event.key === "Tab" && !open && !event.shiftKey)) {
        event.preventDefault();
        showCompletions(app, parts, { explicit: true });
      } else if (open && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
        event.preventDefault();
        moveSelection(parts, event.key === "ArrowDown" ? 1 : -1);
      } else if (open && (event.key === "Enter" || event.key === "Tab")) {
        event.preventDefault();
        const selected = parts.list.querySelector(".selected");
        if (selected) acceptCompletion(parts, selected);
      } else if (open && event.key === "Escape") {
        closeCompletions(parts);
      }
    });
    parts.input.addEventListener("blur", () => setTimeout(() => closeCompletions(parts), 150));
    parts.run.addEventListener("click", () => {
      cancelCompletion(parts);
      app.navigate({ query: parts.input.value }, { push: false, render: false });
      runAndShow(app, parts);
    });
    parts.copy.addEventListener("click", async () => {
      const text = parts.input.value.trim();
      if (!text) return;
      try {
        const csv = await runQueryCsv(expand(app, text, Math.max(200, parts.table.clientWidth - 80)), { db: app.state.db });
        const lines = csv.split("\n").filter(Boolean).length;
        const copied = await copyText(csv);
        parts.status.textContent = copied
          ? `Copied ${lines} lines of CSV to the clipboard`
          : "The browser refused the clipboard; select the table instead";
        parts.status.dataset.csvLines = String(lines);
      } catch (error) {
        parts.status.textContent = `Cannot copy: ${error.message}`;
      }
    });
  }
  if (parts.input.value.trim()) await runAndShow(app, parts);
}
