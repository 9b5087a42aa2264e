// The overview: what an LLM operator keeps open all day, with no configuration.
//
// Each panel lists its sources: the measurements tallyd's samplers write (Telegraf's names:
// cpu, mem, system, net, procstat, nvidia_smi), then the ones of the benchmark generator
// gen.py (hw, gpu). Every source whose measurement exists in the selected database is asked;
// charts draw the series of all that have data, a stat the first one's.

const TEN_SECONDS = 10_000;

const HOST_HINT =
  "tallyd's host sampler writes cpu, mem, system and net into the database telemetry; Telegraf's cpu, mem, system and net inputs writing to /write work too.";
const GPU_HINT =
  "tallyd's GPU sampler writes nvidia_smi on machines with an NVIDIA driver (Telegraf's nvidia_smi input works too); or write gpu points with tags host, gpu.";
const PROCESS_HINT =
  "tallyd's process sampler writes procstat for the processes it is told to watch (for example vllm, text-generation-launcher, llama-server, ollama); Telegraf's procstat input works too.";
const LLM_HINT =
  "Applications write one llm point per request: tags provider, model, endpoint, status; fields prompt_tokens, completion_tokens (integers), latency_ms, ttft_ms, cost_usd. See docs/dashboard.md.";

const gpuLabel = (tags) => `${tags.host ?? ""} GPU ${tags.gpu ?? tags.index ?? "?"}`.trim();
const processLabel = (tags) => [tags.host, tags.process_name].filter(Boolean).join(" · ");

/** Whether a status tag value means the request succeeded. */
export function isSuccessStatus(status) {
  return /^(ok|success|succeeded|2\d\d)$/i.test(String(status ?? ""));
}

/** Error rate per status, in % of all requests of each bucket, from counts grouped by status. */
export function errorRateSeries(querySeries) {
  const totals = new Map();
  for (const s of querySeries) {
    for (const [time, count] of s.values || []) totals.set(time, (totals.get(time) || 0) + (count || 0));
  }
  const times = Array.from(totals.keys()).sort((a, b) => a - b);
  const failing = querySeries.filter((s) => !isSuccessStatus(s.tags?.status));
  if (!failing.length) {
    return times.length ? [{ label: "errors", tags: {}, column: "errors", times, values: times.map(() => 0) }] : [];
  }
  return failing.map((s) => {
    const counts = new Map((s.values || []).map(([time, count]) => [time, count || 0]));
    return {
      label: s.tags?.status || "error",
      tags: s.tags || {},
      column: "error_rate",
      times,
      values: times.map((t) => (totals.get(t) ? (100 * (counts.get(t) || 0)) / totals.get(t) : null)),
    };
  });
}

/** The overall error rate of counts grouped by status, as one stat series. */
function errorRateStat(querySeries) {
  let total = 0;
  let failed = 0;
  for (const s of querySeries) {
    const count = (s.values || []).reduce((sum, row) => sum + (row[1] || 0), 0);
    total += count;
    if (!isSuccessStatus(s.tags?.status)) failed += count;
  }
  return total ? [{ label: "error rate", tags: {}, column: "error_rate", times: [0], values: [(100 * failed) / total] }] : [];
}

/**
 * A panel on the llm measurement. Requests are events, not samples: a bucket needs several of
 * them for a rate or a percentile to mean something, so these panels ask for one point per
 * five pixels.
 */
const llm = (query, extra = {}) => ({
  sources: [{ measurement: "llm", queries: [query], minIntervalMs: TEN_SECONDS }],
  empty: LLM_HINT,
  pixelsPerPoint: 5,
  ...extra,
});

export const OVERVIEW_SECTIONS = [
  {
    title: "Summary",
    className: "stats",
    panels: [
      llm("SELECT count(latency_ms) AS requests FROM llm WHERE $timeFilter $tagFilter", {
        id: "stat-requests",
        title: "Requests",
        type: "stat",
        unit: "count",
        subtitle: (series, context) => {
          const count = series[0]?.values[0] || 0;
          const seconds = (context.range.toMs - context.range.fromMs) / 1000;
          return `${(count / seconds).toFixed(2)} req/s on average`;
        },
      }),
      llm("SELECT sum(prompt_tokens) AS input, sum(completion_tokens) AS output FROM llm WHERE $timeFilter $tagFilter", {
        id: "stat-tokens",
        title: "Tokens in / out",
        type: "stat",
        unit: "tokens",
      }),
      llm("SELECT sum(cost_usd) AS cost FROM llm WHERE $timeFilter $tagFilter", {
        id: "stat-cost",
        title: "Cost",
        type: "stat",
        unit: "usd",
      }),
      llm("SELECT count(latency_ms) FROM llm WHERE $timeFilter $tagFilter GROUP BY status", {
        id: "stat-errors",
        title: "Error rate",
        type: "stat",
        unit: "percent",
        transform: errorRateStat,
      }),
      // The mean comes from chunk statistics; a percentile over the whole range would decode
      // every request of it, and the latency panel below already shows p50/p95/p99.
      llm("SELECT mean(latency_ms) AS mean FROM llm WHERE $timeFilter $tagFilter", {
        id: "stat-latency",
        title: "Mean latency",
        type: "stat",
        unit: "ms",
      }),
      {
        id: "stat-gpu",
        title: "GPU utilisation",
        type: "stat",
        unit: "percent",
        empty: GPU_HINT,
        sources: [
          { measurement: "nvidia_smi", queries: ["SELECT mean(utilization_gpu) AS utilisation FROM nvidia_smi WHERE $timeFilter $tagFilter"] },
          { measurement: "gpu", queries: ["SELECT mean(util_pct) AS utilisation FROM gpu WHERE $timeFilter $tagFilter"] },
        ],
      },
    ],
  },
  {
    title: "Hosts",
    panels: [
      {
        id: "host-cpu",
        title: "CPU usage",
        type: "line",
        unit: "percent",
        empty: HOST_HINT,
        sources: [
          {
            measurement: "cpu",
            minIntervalMs: TEN_SECONDS,
            queries: ["SELECT 100 - mean(usage_idle) AS cpu FROM cpu WHERE cpu = 'cpu-total' AND $timeFilter $tagFilter GROUP BY time($interval), host"],
          },
          {
            measurement: "hw",
            minIntervalMs: TEN_SECONDS,
            queries: ["SELECT mean(cpu_pct) AS cpu FROM hw WHERE $timeFilter $tagFilter GROUP BY time($interval), host"],
          },
        ],
      },
      {
        id: "host-memory",
        title: "Memory used",
        type: "area",
        unit: "bytes",
        empty: HOST_HINT,
        sources: [
          { measurement: "mem", minIntervalMs: TEN_SECONDS, queries: ["SELECT mean(used) AS used FROM mem WHERE $timeFilter $tagFilter GROUP BY time($interval), host"] },
          { measurement: "hw", minIntervalMs: TEN_SECONDS, queries: ["SELECT mean(mem_used_bytes) AS used FROM hw WHERE $timeFilter $tagFilter GROUP BY time($interval), host"] },
        ],
      },
      {
        id: "host-load",
        title: "Load average (1 min)",
        type: "line",
        unit: "none",
        empty: HOST_HINT,
        sources: [
          { measurement: "system", minIntervalMs: TEN_SECONDS, queries: ["SELECT mean(load1) AS load1 FROM system WHERE $timeFilter $tagFilter GROUP BY time($interval), host"] },
          { measurement: "hw", minIntervalMs: TEN_SECONDS, queries: ["SELECT mean(load1) AS load1 FROM hw WHERE $timeFilter $tagFilter GROUP BY time($interval), host"] },
        ],
      },
      {
        id: "host-network",
        title: "Network received / sent",
        type: "line",
        unit: "bytes_per_second",
        empty: HOST_HINT,
        sources: [
          {
            measurement: "net",
            minIntervalMs: TEN_SECONDS,
            queries: [
              "SELECT non_negative_derivative(max(bytes_recv), 1s) AS received FROM net WHERE interface != 'lo' AND $timeFilter $tagFilter GROUP BY time($interval), host, interface",
              "SELECT non_negative_derivative(max(bytes_sent), 1s) AS sent FROM net WHERE interface != 'lo' AND $timeFilter $tagFilter GROUP BY time($interval), host, interface",
            ],
          },
          {
            measurement: "hw",
            minIntervalMs: TEN_SECONDS,
            queries: [
              "SELECT non_negative_derivative(max(net_rx_bytes), 1s) AS received FROM hw WHERE $timeFilter $tagFilter GROUP BY time($interval), host",
              "SELECT non_negative_derivative(max(net_tx_bytes), 1s) AS sent FROM hw WHERE $timeFilter $tagFilter GROUP BY time($interval), host",
            ],
          },
        ],
        label: (tags, column) => [tags.host, tags.interface, column].filter(Boolean).join(" · "),
      },
    ],
  },
  {
    title: "GPUs",
    panels: [
      {
        id: "gpu-utilisation",
        title: "GPU utilisation",
        type: "line",
        unit: "percent",
        empty: GPU_HINT,
        label: gpuLabel,
        sources: [
          { measurement: "nvidia_smi", minIntervalMs: 5000, queries: ["SELECT mean(utilization_gpu) FROM nvidia_smi WHERE $timeFilter $tagFilter GROUP BY time($interval), host, \"index\""] },
          { measurement: "gpu", minIntervalMs: 5000, queries: ["SELECT mean(util_pct) FROM gpu WHERE $timeFilter $tagFilter GROUP BY time($interval), host, gpu"] },
        ],
      },
      {
        id: "gpu-memory",
        title: "GPU memory used",
        type: "line",
        unit: "bytes",
        empty: GPU_HINT,
        label: gpuLabel,
        sources: [
          // Telegraf's nvidia_smi and gen.py both report MiB.
          { measurement: "nvidia_smi", minIntervalMs: 5000, queries: ["SELECT mean(memory_used) * 1048576 AS used FROM nvidia_smi WHERE $timeFilter $tagFilter GROUP BY time($interval), host, \"index\""] },
          { measurement: "gpu", minIntervalMs: 5000, queries: ["SELECT mean(mem_used_mib) * 1048576 AS used FROM gpu WHERE $timeFilter $tagFilter GROUP BY time($interval), host, gpu"] },
        ],
      },
      {
        id: "gpu-power",
        title: "GPU power draw",
        type: "line",
        unit: "watts",
        empty: GPU_HINT,
        label: gpuLabel,
        sources: [
          { measurement: "nvidia_smi", minIntervalMs: 5000, queries: ["SELECT mean(power_draw) FROM nvidia_smi WHERE $timeFilter $tagFilter GROUP BY time($interval), host, \"index\""] },
          { measurement: "gpu", minIntervalMs: 5000, queries: ["SELECT mean(power_w) FROM gpu WHERE $timeFilter $tagFilter GROUP BY time($interval), host, gpu"] },
        ],
      },
      {
        id: "gpu-temperature",
        title: "GPU temperature",
        type: "line",
        unit: "celsius",
        empty: GPU_HINT,
        label: gpuLabel,
        sources: [
          { measurement: "nvidia_smi", minIntervalMs: 5000, queries: ["SELECT max(temperature_gpu) FROM nvidia_smi WHERE $timeFilter $tagFilter GROUP BY time($interval), host, \"index\""] },
          { measurement: "gpu", minIntervalMs: 5000, queries: ["SELECT max(temp_c) FROM gpu WHERE $timeFilter $tagFilter GROUP BY time($interval), host, gpu"] },
        ],
      },
    ],
  },
  {
    title: "Inference server processes",
    panels: [
      {
        id: "process-cpu",
        title: "Process CPU",
        type: "line",
        unit: "percent",
        empty: PROCESS_HINT,
        label: processLabel,
        sources: [
          { measurement: "procstat", minIntervalMs: TEN_SECONDS, queries: ["SELECT mean(cpu_usage) FROM procstat WHERE $timeFilter $tagFilter GROUP BY time($interval), host, process_name"] },
        ],
      },
      {
        id: "process-memory",
        title: "Process memory (RSS)",
        type: "line",
        unit: "bytes",
        empty: PROCESS_HINT,
        label: processLabel,
        sources: [
          { measurement: "procstat", minIntervalMs: TEN_SECONDS, queries: ["SELECT mean(memory_rss) FROM procstat WHERE $timeFilter $tagFilter GROUP BY time($interval), host, process_name"] },
        ],
      },
    ],
  },
  {
    title: "LLM traffic",
    panels: [
      llm("SELECT count(latency_ms) / $intervalSeconds AS requests FROM llm WHERE $timeFilter $tagFilter GROUP BY time($interval), model fill(0)", {
        id: "llm-requests",
        title: "Requests per second by model",
        type: "line",
        unit: "requests_per_second",
      }),
      llm(
        "SELECT sum(prompt_tokens) / $intervalSeconds AS input, sum(completion_tokens) / $intervalSeconds AS output FROM llm WHERE $timeFilter $tagFilter GROUP BY time($interval) fill(0)",
        { id: "llm-tokens", title: "Tokens per second, in and out", type: "area", unit: "tokens_per_second" },
      ),
      llm("SELECT p50(latency_ms) AS p50, p95(latency_ms) AS p95, p99(latency_ms) AS p99 FROM llm WHERE $timeFilter $tagFilter GROUP BY time($interval)", {
        id: "llm-latency",
        title: "Latency p50 / p95 / p99",
        type: "line",
        unit: "ms",
      }),
      llm("SELECT p50(ttft_ms) AS p50, p95(ttft_ms) AS p95, p99(ttft_ms) AS p99 FROM llm WHERE $timeFilter $tagFilter GROUP BY time($interval)", {
        id: "llm-ttft",
        title: "Time to first token p50 / p95 / p99",
        type: "line",
        unit: "ms",
      }),
      llm("SELECT count(latency_ms) FROM llm WHERE $timeFilter $tagFilter GROUP BY time($interval), status fill(0)", {
        id: "llm-errors",
        title: "Error rate by status",
        type: "line",
        unit: "percent",
        transform: (querySeries) => errorRateSeries(querySeries),
      }),
      llm("SELECT sum(cost_usd) AS cost FROM llm WHERE $timeFilter $tagFilter GROUP BY time($interval), provider fill(0)", {
        id: "llm-cost",
        title: "Cost per interval by provider",
        type: "bar",
        unit: "usd",
      }),
      llm(
        "SELECT count(latency_ms) AS requests, sum(prompt_tokens) AS tokens_in, sum(completion_tokens) AS tokens_out, mean(latency_ms) AS mean_latency, sum(cost_usd) AS cost FROM llm WHERE $timeFilter $tagFilter GROUP BY provider, model",
        {
          id: "llm-cost-table",
          title: "Cost by provider and model",
          type: "table",
          unit: "none",
          span: 2,
          sortBy: "cost",
          columnUnits: { requests: "count", tokens_in: "tokens", tokens_out: "tokens", mean_latency: "ms", cost: "usd" },
          tableRows: (querySeries) =>
            querySeries.map((s) => {
              const timeIndex = (s.columns || []).indexOf("time");
              return {
                ...s,
                columns: s.columns.filter((c, i) => i !== timeIndex),
                values: s.values.map((row) => row.filter((v, i) => i !== timeIndex)),
              };
            }),
        },
      ),
    ],
  },
];

/** Every overview panel, in page order. */
export function overviewPanels() {
  return OVERVIEW_SECTIONS.flatMap((section) => section.panels);
}
