// The dashboard's time series chart (Chart.js, vendored). Data comes from a JSON block the
// server renders next to the canvas, so there is no inline script (CSP). Re-drawn after HTMX
// swaps in fresh figures.
(function () {
  "use strict";
  var chart = null;

  function draw() {
    var canvas = document.getElementById("series-chart");
    var data = document.getElementById("series-data");
    if (!canvas || !data || typeof Chart === "undefined") return;
    var points = JSON.parse(data.textContent);
    if (chart) chart.destroy();
    var line = function (label, key, color) {
      return {
        label: label, data: points.map(function (p) { return p[key]; }),
        borderColor: color, backgroundColor: color, tension: 0.25, pointRadius: 2,
      };
    };
    chart = new Chart(canvas, {
      type: points.length < 3 ? "bar" : "line",  // one or two points read better as bars
      data: {
        labels: points.map(function (p) { return p.label; }),
        datasets: [
          line("Sent", "sent", "#3a3fd8"),
          line("Delivered", "delivered", "#137a4b"),
          line("Opened", "opened", "#c27c00"),
          line("Clicked", "clicked", "#b42318"),
        ],
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { title: { display: true, text: data.getAttribute("data-x-title") || "Day" } },
          y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "Emails" } },
        },
      },
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", draw);
})();
