// Custom dashboards: the list (create, import, export, delete) and one dashboard (view; edit
// its title and panels: add, change, reorder, delete; save). Dashboards are stored by tallyd
// through /api/v1/dashboards; a save names the version it was edited from, so a save over
// someone else's newer one is refused with a message instead of overwriting it.

import { dashboardsApi } from "./api.js";
import { formatTime, UNIT_CHOICES } from "./units.js";
import { createPanelElement } from "./panels.js";

const CHART_TYPES = [
  ["line", "Line"],
  ["area", "Area"],
  ["bar", "Bar (stacked)"],
  ["stat", "Stat (one number)"],
  ["table", "Table"],
  ["heatmap", "Heatmap (one row per series, e.g. histogram buckets)"],
];

/** The dashboard being edited (a copy), or null when viewing. */
let draft = null;
let draftFor = null;
/** A message to show once, after the next draw (such as "Saved"). */
let flash = "";

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function select(id, choices, value) {
  const node = el("select", { id });
  node.append(...choices.map(([v, label]) => new Option(label, v)));
  node.value = value;
  return node;
}

/** A button that asks once more before acting, instead of a blocking confirm() dialog. */
function confirmButton(label, confirmLabel, action, attributes = {}) {
  const button = el("button", { type: "button", class: "danger", text: label, ...attributes });
  let armed = false;
  button.addEventListener("click", () => {
    if (!armed) {
      armed = true;
      button.textContent = confirmLabel;
      button.classList.add("armed");
      setTimeout(() => {
        armed = false;
        button.textContent = label;
        button.classList.remove("armed");
      }, 4000);
      return;
    }
    action();
  });
  return button;
}

/** Splits panel queries written one after another, separated by `;` outside quotes. */
export function splitQueries(text) {
  const queries = [];
  let current = "";
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      current += c;
      if (c === "\\" && i + 1 < text.length) current += text[++i];
      else if (c === quote) quote = null;
    } else if (c === "'" || c === '"') {
      quote = c;
      current += c;
    } else if (c === ";") {
      if (current.trim()) queries.push(current.trim());
      current = "";
    } else current += c;
  }
  if (current.trim()) queries.push(current.trim());
  return queries;
}

async function renderList(view, app) {
  const status = el("p", { id: "dashboards-status", class: "status" });
  const title = el("input", { id: "new-dashboard-title", name: "title", placeholder: "Title of a new dashboard", required: "", maxlength: "200" });
  const form = el(
    "form",
    { id: "new-dashboard", class: "inline-form" },
    title,
    el("button", { type: "submit", class: "primary", text: "Create dashboard" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await dashboardsApi.create({ title: title.value, database: "", panels: [] });
      draft = structuredClone(created);
      draftFor = created.id;
      app.navigate({ view: "dashboards", dashboardId: created.id });
    } catch (error) {
      status.textContent = error.message;
      status.className = "status error";
    }
  });
  const file = el("input", { id: "import-file", type: "file", accept: ".json,application/json" });
  const onConflict = select("import-conflict", [["error", "refuse if an id exists"], ["copy", "import as copies"], ["replace", "replace existing"]], "error");
  file.addEventListener("change", async () => {
    const chosen = file.files[0];
    if (!chosen) return;
    try {
      const answer = await dashboardsApi.importText(await chosen.text(), onConflict.value);
      status.textContent = `Imported ${answer.imported.map((d) => d.title).join(", ")}`;
      status.className = "status";
      await renderList(view, app);
    } catch (error) {
      status.textContent = `Import failed: ${error.message}`;
      status.className = "status error";
    }
    file.value = "";
  });
  const answer = await dashboardsApi.list();
  const rows = answer.dashboards.map((d) =>
    el(
      "tr",
      { "data-dashboard-id": d.id },
      el("td", {}, el("a", { href: `#/dashboards/${encodeURIComponent(d.id)}${location.hash.includes("?") ? `?${location.hash.split("?")[1]}` : ""}`, text: d.title })),
      el("td", { class: "muted", text: d.description }),
      el("td", { class: "number", text: String(d.n_panels) }),
      el("td", { class: "muted", text: d.updated_at ? formatTime(Date.parse(d.updated_at), false) : "" }),
      el(
        "td",
        { class: "actions" },
        el("a", { class: "button", href: dashboardsApi.exportUrl(d.id), download: `${d.id}.tally-dashboard.json`, text: "Export" }),
        confirmButton("Delete", "Delete for good?", async () => {
          try {
            await dashboardsApi.remove(d.id);
            await renderList(view, app);
          } catch (error) {
            status.textContent = error.message;
            status.className = "status error";
          }
        }),
      ),
    ),
  );
  const table = el(
    "table",
    { class: "data-table dashboards-table" },
    el("thead", {}, el("tr", {}, ...["Dashboard", "Description", "Panels", "Updated", ""].map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows),
  );
  const unreadable = answer.unreadable.length
    ? el(
        "div",
        { class: "notice" },
        el("strong", { text: "Some dashboard files cannot be read" }),
        ...answer.unreadable.map((u) => el("p", { text: `${u.file}: ${u.error}` })),
      )
    : null;
  view.replaceChildren(
    el(
      "div",
      { class: "dashboards" },
      el("h2", { text: "Dashboards" }),
      el(
        "p",
        { class: "hint" },
        `Custom dashboards are stored by tallyd (at most ${answer.limits.max_count}, each up to ${Math.round(answer.limits.max_size / 1024)} KiB). `,
        "Panel queries can use the macros $timeFilter, $tagFilter, $interval and $intervalSeconds.",
      ),
      form,
      el("div", { class: "inline-form" }, el("label", {}, "Import a JSON export ", file), onConflict, el("a", { class: "button", href: dashboardsApi.exportUrl(null), download: "tally-dashboards.json", text: "Export all" })),
      status,
      answer.dashboards.length ? table : el("p", { class: "empty-list", text: "No custom dashboards yet: create one above, or import an export." }),
      unreadable,
    ),
  );
}

function panelEditor(app, dashboard, index, onDone) {
  const existing = index === null ? null : dashboard.panels[index];
  const panel = existing
    ? structuredClone(existing)
    : {
        title: "",
        type: "line",
        unit: "none",
        span: 1,
        queries: ["SELECT mean(util_pct) FROM gpu WHERE $timeFilter $tagFilter GROUP BY time($interval), host, gpu"],
      };
  const title = el("input", { id: "panel-title", value: panel.title, maxlength: "200", placeholder: "What this panel shows" });
  const type = select("panel-type", CHART_TYPES, panel.type);
  const unit = select("panel-unit", UNIT_CHOICES, panel.unit);
  const span = select("panel-span", [["1", "1 column"], ["2", "2 columns"], ["3", "3 columns"], ["4", "4 columns"]], String(panel.span || 1));
  const queries = el("textarea", { id: "panel-queries", rows: "5", spellcheck: "false", class: "query-input" });
  queries.value = panel.queries.join(";\n");
  const preview = el("div", { class: "panel-preview grid" });
  const error = el("p", { class: "status error", id: "panel-error" });
  const dialog = el("dialog", { id: "panel-editor", class: "panel-editor" });
  const current = () => ({
    ...panel,
    title: title.value.trim(),
    type: type.value,
    unit: unit.value,
    span: Number(span.value),
    queries: splitQueries(queries.value),
  });
  const showPreview = async () => {
    const definition = { ...current(), id: panel.id || "preview", database: dashboard.database };
    if (!definition.queries.length) {
      error.textContent = "A panel needs at least one query.";
      return;
    }
    error.textContent = "";
    const element = createPanelElement({ ...definition, span: 1 });
    preview.replaceChildren(element);
    await app.loadPanels([[element, definition]], { controller: new AbortController() });
  };
  dialog.append(
    el("h3", { text: existing ? "Edit panel" : "Add a panel" }),
    el("label", {}, "Title", title),
    el("div", { class: "row" }, el("label", {}, "Chart", type), el("label", {}, "Unit", unit), el("label", {}, "Width", span)),
    el("label", {}, "Queries (separate several with ;)", queries),
    el("p", { class: "hint", text: "Macros: $timeFilter, $tagFilter, $interval, $intervalSeconds. A heatmap draws one row per series: group by a bucket tag such as le." }),
    error,
    preview,
    el(
      "div",
      { class: "dialog-actions" },
      el("button", { type: "button", id: "panel-preview", text: "Preview", onclick: showPreview }),
      el("button", { type: "button", text: "Cancel", onclick: () => dialog.close() }),
      el("button", {
        type: "button",
        id: "panel-apply",
        class: "primary",
        text: existing ? "Apply" : "Add panel",
        onclick: () => {
          const edited = current();
          if (!edited.queries.length) {
            error.textContent = "A panel needs at least one query.";
            return;
          }
          if (existing) dashboard.panels[index] = edited;
          else dashboard.panels.push(edited);
          dialog.close();
          onDone();
        },
      }),
    ),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

async function renderDashboard(view, app, { refreshOnly }) {
  const id = app.state.dashboardId;
  let dashboard;
  if (draft && draftFor === id) {
    dashboard = draft;
  } else {
    draft = null;
    try {
      dashboard = await dashboardsApi.get(id);
    } catch (error) {
      view.replaceChildren(el("div", { class: "notice" }, el("strong", { text: `Cannot open dashboard “${id}”` }), el("p", { text: error.message }), el("a", { href: "#/dashboards", text: "All dashboards" })));
      return;
    }
    const explicitRange = /[?&](from|to)=/.test(location.hash);
    if (!explicitRange && (dashboard.time.from !== app.state.from || dashboard.time.to !== app.state.to)) {
      app.navigate({ from: dashboard.time.from, to: dashboard.time.to }, { push: false, render: false });
    }
  }
  const editing = draft !== null;
  if (refreshOnly && view.querySelector(".dashboard-view") && !editing) {
    const entries = Array.from(view.querySelectorAll(".panel")).map((element, i) => [element, { ...dashboard.panels[i], database: dashboard.database }]);
    await app.loadPanels(entries, app.pass);
    return;
  }
  const status = el("p", { id: "dashboard-status", class: "status", text: flash });
  flash = "";
  const redraw = () => renderDashboard(view, app, { refreshOnly: false });
  const head = el("div", { class: "dashboard-head" });
  if (editing) {
    const title = el("input", { id: "dashboard-title", value: dashboard.title, maxlength: "200" });
    title.addEventListener("input", () => {
      dashboard.title = title.value;
    });
    const description = el("input", { id: "dashboard-description", value: dashboard.description, maxlength: "4000", placeholder: "Description (optional)" });
    description.addEventListener("input", () => {
      dashboard.description = description.value;
    });
    const keepRange = el("input", { type: "checkbox", id: "dashboard-keep-range" });
    head.append(
      el("div", { class: "dashboard-fields" }, el("label", {}, "Title", title), el("label", {}, "Description", description), el("label", { class: "checkbox" }, keepRange, " Open with the current time range")),
      el(
        "div",
        { class: "dashboard-actions" },
        el("button", { type: "button", id: "add-panel", text: "Add panel", onclick: () => panelEditor(app, dashboard, null, redraw) }),
        el("button", {
          type: "button",
          text: "Cancel",
          onclick: () => {
            draft = null;
            redraw();
          },
        }),
        el("button", {
          type: "button",
          id: "save-dashboard",
          class: "primary",
          text: "Save",
          onclick: async () => {
            if (keepRange.checked) dashboard.time = { from: String(app.state.from), to: String(app.state.to) };
            try {
              const saved = await dashboardsApi.save(dashboard.id, dashboard);
              draft = null;
              flash = `Saved (version ${saved.version})`;
              await app.render();
            } catch (error) {
              status.textContent = error.message;
              status.className = "status error";
            }
          },
        }),
      ),
    );
  } else {
    head.append(
      el("div", {}, el("h2", { id: "dashboard-heading", text: dashboard.title }), dashboard.description ? el("p", { class: "muted", text: dashboard.description }) : null),
      el(
        "div",
        { class: "dashboard-actions" },
        el("a", { class: "button", href: "#/dashboards", text: "All dashboards" }),
        el("a", { class: "button", href: dashboardsApi.exportUrl(dashboard.id), download: `${dashboard.id}.tally-dashboard.json`, text: "Export" }),
        el("button", {
          type: "button",
          id: "edit-dashboard",
          class: "primary",
          text: "Edit",
          onclick: () => {
            draft = structuredClone(dashboard);
            draftFor = dashboard.id;
            redraw();
          },
        }),
        confirmButton("Delete", "Delete for good?", async () => {
          try {
            await dashboardsApi.remove(dashboard.id);
            app.navigate({ view: "dashboards", dashboardId: null });
          } catch (error) {
            status.textContent = error.message;
          }
        }, { id: "delete-dashboard" }),
      ),
    );
  }
  const grid = el("div", { class: "grid" });
  const entries = dashboard.panels.map((panel, index) => {
    const definition = { ...panel, id: panel.id || `panel-${index + 1}`, database: dashboard.database };
    const element = createPanelElement(definition);
    if (editing) {
      const tools = element.querySelector(".panel-tools");
      const move = (step) => () => {
        const target = index + step;
        if (target < 0 || target >= dashboard.panels.length) return;
        [dashboard.panels[index], dashboard.panels[target]] = [dashboard.panels[target], dashboard.panels[index]];
        redraw();
      };
      tools.append(
        el("button", { type: "button", class: "icon", title: "Move earlier", "data-action": "up", text: "↑", onclick: move(-1) }),
        el("button", { type: "button", class: "icon", title: "Move later", "data-action": "down", text: "↓", onclick: move(1) }),
        el("button", { type: "button", class: "icon", title: "Edit panel", "data-action": "edit", text: "✎", onclick: () => panelEditor(app, dashboard, index, redraw) }),
        el("button", {
          type: "button",
          class: "icon danger",
          title: "Remove panel",
          "data-action": "remove",
          text: "✕",
          onclick: () => {
            dashboard.panels.splice(index, 1);
            redraw();
          },
        }),
      );
    }
    grid.append(element);
    return [element, definition];
  });
  const empty = dashboard.panels.length
    ? null
    : el("p", { class: "empty-list", text: editing ? "No panels yet: add one." : "No panels yet: choose Edit, then Add panel." });
  view.replaceChildren(el("div", { class: `dashboard-view${editing ? " editing" : ""}`, "data-dashboard-id": dashboard.id }, head, status, empty, grid));
  await app.loadPanels(entries, app.pass);
}

export async function renderDashboards(view, app, options) {
  if (app.state.dashboardId) await renderDashboard(view, app, options);
  else {
    draft = null;
    if (!options.refreshOnly || !view.querySelector(".dashboards")) await renderList(view, app);
  }
}
