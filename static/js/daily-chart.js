// Draws the 30-day chart from the JSON the page embeds (no inline script: the CSP forbids it). What became
// of the mail stacks as bars (delivered, bounced, rejected); complaints, a few of the delivered, are a line.
document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("daily-chart");
  const source = document.getElementById("daily-data");
  if (!canvas || !source || !window.Chart) return;
  const rows = JSON.parse(source.textContent);
  const bars = [
    { key: "delivered", label: "Delivered", color: "#15803d" },
    { key: "bounced", label: "Bounced", color: "#b45309" },
    { key: "rejected", label: "Rejected", color: "#b91c1c" },
  ].filter((s) => rows.some((row) => s.key in row));
  const datasets = bars.map((s) => ({
    label: s.label,
    data: rows.map((row) => row[s.key] || 0),
    backgroundColor: s.color,
    stack: "mail",
    order: 2,
  }));
  // What recipients did: the messages first opened and first clicked that day, as lines over the bars.
  [
    { key: "opened", label: "Opened", color: "#1d4ed8" },
    { key: "clicked", label: "Clicked", color: "#0e7490" },
  ]
    .filter((s) => rows.some((row) => s.key in row))
    .forEach((s) => {
      datasets.push({
        type: "line", label: s.label, data: rows.map((row) => row[s.key] || 0), borderColor: s.color,
        backgroundColor: s.color, pointRadius: 2, stack: s.key, order: 1,
      });
    });
  if (rows.some((row) => "complained" in row)) {
    datasets.push({
      type: "line",
      label: "Complaints",
      data: rows.map((row) => row.complained || 0),
      borderColor: "#7c3aed",
      backgroundColor: "#7c3aed",
      pointRadius: 2,
      stack: "complaints",
      order: 1,
    });
  }
  new window.Chart(canvas, {
    type: "bar",
    data: { labels: rows.map((row) => row.day.slice(5)), datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: { x: { stacked: true, grid: { display: false } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { position: "bottom" } },
    },
  });
});
