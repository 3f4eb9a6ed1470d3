// The dashboard: fetches /ui/api/summary (ledger queries, the same as `tokenomy spend`) and draws it.
"use strict";

const STRATEGY_COLOURS = {
  routing: "#2f6fde", exact_cache: "#1f9d6b", semantic_cache: "#7cc4a4", prompt_caching: "#e0a030",
  batch: "#9b59b6", other: "#b0b6c3",
};
const TIER_COLOURS = ["#2f6fde", "#1f9d6b", "#e0a030", "#d64545", "#9b59b6", "#b0b6c3"];
const charts = {};

function text(el, value) { el.textContent = value; return el; }

function cell(row, value) { return text(row.insertCell(), value == null ? "–" : String(value)); }

function usd(value) { return value == null ? "–" : "$" + value; }

function setTotal(id, shown, raw) {
  const el = document.getElementById(id);
  text(el, shown);
  el.dataset.value = raw;
}

function bar(row, spent, budget) {
  const td = row.insertCell();
  if (budget == null) { td.textContent = "–"; return; }
  const share = Number(budget) > 0 ? Number(spent) / Number(budget) : 1;
  const outer = document.createElement("div");
  outer.className = "bar";
  const inner = document.createElement("i");
  inner.style.width = Math.min(100, share * 100).toFixed(1) + "%";
  if (share >= 1) inner.className = "over";
  outer.appendChild(inner);
  td.appendChild(outer);
  td.title = (share * 100).toFixed(1) + " %";
}

function draw(id, config) {
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart(document.getElementById(id), config);
}

function render(data) {
  const r = data.report;
  setTotal("total-requests", r.requests.toLocaleString("en"), r.requests);
  setTotal("total-cost", usd(r.cost_usd), r.cost_usd);
  setTotal("total-counterfactual", usd(r.counterfactual_usd), r.counterfactual_usd);
  setTotal("total-saving", usd(r.saving_usd), r.saving_usd);
  setTotal("cache-hit-rate", (r.cache.hit_rate * 100).toFixed(1) + " %", r.cache.hit_rate);
  setTotal("total-errors", r.errors.toLocaleString("en"), r.errors);

  const days = data.daily.map(d => d.day);
  const datasets = [{ label: "cost", data: data.daily.map(d => Number(d.cost_usd)), backgroundColor: "#1d2433",
                      stack: "spend" }];
  for (const [name, colour] of Object.entries(STRATEGY_COLOURS)) {
    datasets.push({ label: "saved: " + name.replace("_", " "), data: data.daily.map(d => Number(d.saving_usd[name])),
                    backgroundColor: colour, stack: "saving" });
  }
  draw("chart-savings", { type: "bar", data: { labels: days, datasets },
    options: { animation: false, maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true } },
               plugins: { legend: { position: "bottom", labels: { boxWidth: 10 } } } } });
  draw("chart-tiers", { type: "doughnut",
    data: { labels: data.by_tier.map(g => g.key), datasets: [{ data: data.by_tier.map(g => g.requests),
                                                               backgroundColor: TIER_COLOURS }] },
    options: { animation: false, maintainAspectRatio: false, plugins: { legend: { position: "bottom" } } } });
  draw("chart-cache", { type: "bar", data: { labels: days, datasets: [
      { label: "exact", data: data.daily.map(d => d.exact_hit_rate * 100), backgroundColor: "#1f9d6b" },
      { label: "semantic", data: data.daily.map(d => d.semantic_hit_rate * 100), backgroundColor: "#7cc4a4" }] },
    options: { animation: false, maintainAspectRatio: false, scales: { y: { min: 0, max: 100, title: { display: true, text: "%" } } },
               plugins: { legend: { position: "bottom" } } } });

  const byKey = Object.fromEntries(data.by_key.map(g => [g.key, g]));
  const keys = document.querySelector("#keys tbody");
  keys.replaceChildren();
  for (const k of data.keys) {
    const row = keys.insertRow();
    const b = k.budgets[0];
    const spend = byKey[k.id] || { requests: 0, cost_usd: "0" };
    [k.display, k.name, k.team, k.status, spend.requests, usd(spend.cost_usd),
     b ? usd(b.budget_usd) + " / " + b.period : "–", b ? usd(b.spent_usd) : "–"].forEach(v => cell(row, v));
    bar(row, b && b.spent_usd, b && b.budget_usd);
  }
  const byTeam = Object.fromEntries(data.by_team.map(g => [g.key, g]));
  const teams = document.querySelector("#teams tbody");
  teams.replaceChildren();
  for (const t of data.teams) {
    const row = teams.insertRow();
    const b = t.budgets[0];
    const spend = byTeam[t.name] || { requests: 0, cost_usd: "0" };
    [t.name, spend.requests, usd(spend.cost_usd), b ? usd(b.budget_usd) + " / " + b.period : "–",
     b ? usd(b.spent_usd) : "–"].forEach(v => cell(row, v));
    bar(row, b && b.spent_usd, b && b.budget_usd);
  }
  const names = Object.fromEntries(data.keys.map(k => [k.id, k.name]));
  const recent = document.querySelector("#recent tbody");
  recent.replaceChildren();
  for (const q of data.recent) {
    const row = recent.insertRow();
    [new Date(q.started_us / 1000).toISOString().replace("T", " ").slice(0, 19), q.model, q.tier, q.route_reason,
     q.cache, q.status, usd(q.cost_usd), q.latency_ms + " ms", q.key_id ? (names[q.key_id] || q.key_id) : "–"]
      .forEach(v => cell(row, v));
  }
  document.body.dataset.ready = String(Date.now());
}

async function load() {
  const since = document.getElementById("since").value;
  const response = await fetch("/ui/api/summary?since=" + encodeURIComponent(since), { credentials: "same-origin" });
  if (response.status === 401) { window.location.assign("/ui"); return; }
  render(await response.json());
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("since").addEventListener("change", load);
  load();
});
