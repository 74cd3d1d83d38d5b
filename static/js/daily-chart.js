// Draws the 30-day bar chart from the JSON the page embeds (no inline script: the CSP forbids it).
document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("daily-chart");
  const source = document.getElementById("daily-data");
  if (!canvas || !source || !window.Chart) return;
  const rows = JSON.parse(source.textContent);
  const series = [
    { key: "sent", label: "Accepted", color: "#15803d" },
    { key: "rejected", label: "Rejected", color: "#b91c1c" },
    { key: "failed", label: "Failed", color: "#b45309" },
  ].filter((s) => rows.some((row) => s.key in row));
  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: rows.map((row) => row.day.slice(5)),
      datasets: series.map((s) => ({ label: s.label, data: rows.map((row) => row[s.key] || 0), backgroundColor: s.color, stack: "mail" })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: { x: { stacked: true, grid: { display: false } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { position: "bottom" } },
    },
  });
});
