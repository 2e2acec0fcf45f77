// llmos dashboard: live updates from /events (server-sent events); charts with Chart.js.
(function () {
  "use strict";
  const live = document.body.dataset.live;
  const status = document.getElementById("live-status");
  const charts = {};

  async function refreshRuns() {
    const response = await fetch("/fragments/runs", { credentials: "same-origin" });
    if (!response.ok) return;
    document.querySelector("#runs tbody").innerHTML = await response.text();
  }

  function lineChart(id, labels, datasets, yMax) {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    if (charts[id]) {
      charts[id].data.labels = labels;
      charts[id].data.datasets.forEach((d, i) => { d.data = datasets[i].data; });
      charts[id].update();
      return;
    }
    charts[id] = new Chart(canvas, {
      type: "line",
      data: { labels: labels, datasets: datasets },
      options: {
        animation: false,
        scales: { y: yMax ? { min: 0, max: yMax } : { beginAtZero: true } },
      },
    });
  }

  async function refreshCharts() {
    const response = await fetch("/api/series", { credentials: "same-origin" });
    if (!response.ok) return;
    const series = await response.json();
    const budget = series.budget, savings = series.savings;
    lineChart("budget-chart", budget.map((e) => e.ts),
      [{ label: "balance (USD)", data: budget.map((e) => e.balance_usd) }]);
    const labels = savings.map((e) => e.ts);
    lineChart("savings-chart", labels, [
      { label: "spent (USD)", data: savings.map((e) => e.spend_usd) },
      { label: "saved by replay (USD)", data: savings.map((e) => e.saved_usd) },
    ]);
    lineChart("hitrate-chart", labels,
      [{ label: "replay hit rate", data: savings.map((e) => e.hit_rate) }], 1);
    document.body.dataset.chartsReady = String(savings.length + budget.length);
  }

  const refresh = { runs: refreshRuns, charts: refreshCharts }[live];
  if (live === "charts") refreshCharts();
  if (refresh && window.EventSource) {
    const source = new EventSource("/events");
    source.addEventListener("open", () => { status.textContent = "read-only · live"; });
    source.addEventListener("error", () => { status.textContent = "read-only · reconnecting"; });
    let first = true;
    source.addEventListener("change", () => {
      if (first) { first = false; return; }  // the page was rendered with this state
      refresh();
    });
  }
})();
