// Draws each dashboard series with Chart.js from its JSON endpoint (the same rows as the CSV).
(function () {
  "use strict";
  const colours = ["#2f6fdf", "#e8710a", "#1e8e3e", "#d93025", "#9334e6", "#5d6776"];

  const label = (bucket, hourly) => {
    const date = new Date(bucket);
    // Hourly buckets span up to a week: the day goes with the hour ("11-29 14h").
    const iso = date.toISOString();
    return hourly ? `${iso.slice(5, 10)} ${iso.slice(11, 13)}h` : iso.slice(0, 10);
  };

  const line = (rows, hourly, columns, options) => ({
    type: options && options.bar ? "bar" : "line",
    data: {
      labels: rows.map((row) => label(row.bucket, hourly)),
      datasets: columns.map((column, i) => ({
        label: column.replaceAll("_", " "),
        data: rows.map((row) => row[column]),
        borderColor: colours[i % colours.length],
        backgroundColor: colours[i % colours.length],
        spanGaps: true,
      })),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        x: { stacked: !!(options && options.stacked) },
        y: { stacked: !!(options && options.stacked), beginAtZero: true, max: options && options.rate ? 1 : undefined },
      },
    },
  });

  const builders = {
    volume: (rows, hourly) => line(rows, hourly, ["student", "memory", "teacher", "degraded", "unserved"], { bar: true, stacked: true }),
    fallback_rate: (rows, hourly) => line(rows, hourly, ["fallback_rate"], { rate: true }),
    latency: (rows, hourly) => line(rows, hourly, ["local_p50_ms", "local_p95_ms", "llm_p50_ms", "llm_p95_ms"]),
    spend: (rows, hourly) => line(rows, hourly, ["spend_usd", "saved_usd"]),
    review_outcomes: (rows) => ({
      type: "bar",
      data: {
        labels: rows.map((row) => row.version),
        datasets: ["acceptance_rate", "correction_rate", "rejection_rate"].map((column, i) => ({
          label: column.replaceAll("_", " "),
          data: rows.map((row) => row[column]),
          backgroundColor: colours[i],
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, max: 1 } },
      },
    }),
  };

  document.querySelectorAll("canvas[data-series]").forEach(async (canvas) => {
    const response = await fetch(canvas.dataset.url, { headers: { Accept: "application/json" } });
    const body = await response.json();
    canvas.dataset.rows = String(body.rows.length);
    if (!body.rows.length) {
      // Say what will appear instead of drawing empty axes.
      const empty = document.createElement("p");
      empty.className = "muted empty";
      empty.textContent = canvas.dataset.empty;
      canvas.replaceWith(empty);
      return;
    }
    const config = builders[canvas.dataset.series](body.rows, canvas.dataset.hourly === "1");
    new Chart(canvas, config);
  });
})();
