// Draws each chart of the page with uPlot, from the JSON the page carries beside it
// (bot/dashboard/charts.py). Every chart drawn is kept in window.leadrouterCharts by its id.
"use strict";
(function () {
  // Each at least 3:1 against the white page (WCAG 1.4.11), as a line must be to be read.
  const COLOURS = ["#1d3557", "#e76f51", "#2a9d8f", "#a16207", "#8d5fd3", "#6c757d"];
  const HEIGHT = 260;
  const drawn = (window.leadrouterCharts = {});

  function unitAxis(unit) {
    return { label: unit === "%" ? "%" : "minutes", values: (u, ticks) => ticks.map((t) => t + (unit === "%" ? "%" : "")) };
  }

  // From the periods themselves, not uPlot's min and max: for a single point (the last day
  // alone) uPlot passes a max 1,000 days on, and the day's point sat at the edge of years.
  function timeRange(xs, min, max) {
    if (xs.length === 0) return [min, max];
    const half = xs.length > 1 ? (xs[1] - xs[0]) / 2 : 43200;
    return [xs[0] - half, xs[xs.length - 1] + half];
  }

  function timeChart(spec, width) {
    const series = spec.series.map((s, i) => ({
      label: s.label,
      stroke: COLOURS[i % COLOURS.length],
      width: 2,
      points: { show: true, size: 6 },
      spanGaps: false,
    }));
    return {
      opts: {
        width,
        height: HEIGHT,
        // Days are UTC days, as the page's window and each chart's table of figures give them,
        // wherever the browser is (uPlot would write them in the browser's time zone).
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
        // The legend names what the point under the pointer stands for: a day, or the week from.
        series: [{ label: spec.period === "week" ? "Week from" : "Day", value: "{YYYY}-{MM}-{DD}" }, ...series],
        axes: [{}, unitAxis(spec.unit)],
        // Half a period either side, so the first and the last period's points (today's, the
        // one people look for) are drawn whole rather than cut in half at the plot's edges.
        scales: { x: { time: true, range: (u, min, max) => timeRange(spec.x, min, max) }, y: spec.unit === "%" ? { range: [0, 100] } : { range: (u, min, max) => [0, Math.max(max, 1) * 1.15] } },
      },
      data: [spec.x, ...spec.series.map((s) => s.values)],
    };
  }

  // The reps' ids under their bars: side by side where the widest fits its bar's room, else
  // upright (a long id cut short there; the legend and the table under the chart have it whole).
  const UPRIGHT_CHARACTERS = 20;
  const BAR_ROOM = 18; // pixels

  function barLabels(labels, width, font) {
    const measure = document.createElement("canvas").getContext("2d");
    measure.font = font;
    const widthOf = (label) => measure.measureText(label).width;
    const room = (width - 60) / Math.max(labels.length, 1); // less the y axis
    if (Math.max(0, ...labels.map(widthOf)) <= room - 4) {
      return { set: "across", labels, axis: {} };
    }
    const cut = labels.map((l) => (l.length > UPRIGHT_CHARACTERS ? l.slice(0, UPRIGHT_CHARACTERS - 1) + "\u2026" : l));
    return { set: "upright", labels: cut, axis: { rotate: -90, size: Math.ceil(Math.max(...cut.map(widthOf))) + 16 } };
  }

  function barChart(spec, width, font) {
    const bars = uPlot.paths.bars({ size: [0.6, 80] });
    const shown = barLabels(spec.labels, width, font);
    const series = spec.series.map((s, i) => (i === 0
      ? { label: s.label, fill: COLOURS[0] + "cc", stroke: COLOURS[0], paths: bars, points: { show: false } }
      : { label: s.label, stroke: COLOURS[1], width: 0, paths: () => null, points: { show: true, size: 10, fill: COLOURS[1] } }));
    const last = spec.x.length - 0.5;
    return {
      opts: {
        width,
        height: HEIGHT + (shown.axis.size ?? 50) - 50, // the bars as tall, whatever the labels take
        series: [{ label: "Rep", value: (u, i) => (i == null ? "" : spec.labels[i]) }, ...series],
        scales: { x: { time: false, range: () => [-0.5, last] }, y: { range: (u, min, max) => [0, Math.max(max, 1) * 1.15] } },
        axes: [
          { font, splits: () => spec.x, values: (u, ticks) => ticks.map((t) => shown.labels[t] ?? ""), ...shown.axis },
          unitAxis(spec.unit),
        ],
      },
      data: [spec.x, ...spec.series.map((s) => s.values)],
      labels: shown.set,
    };
  }

  function draw() {
    for (const figure of document.querySelectorAll("figure.chart")) {
      const spec = JSON.parse(figure.querySelector("script.chart-data").textContent);
      let width = Math.max(240, Math.min(figure.clientWidth || 640, 1100));
      // Never narrower than a line of text per bar: on a phone, a big team's bars scroll in
      // their box (.chart-plot) rather than run their labels together.
      if (spec.kind === "bars") width = Math.max(width, 60 + spec.x.length * BAR_ROOM);
      const font = getComputedStyle(figure).getPropertyValue("--axis-font").trim() || "12px sans-serif";
      const { opts, data, labels } = spec.kind === "bars" ? barChart(spec, width, font) : timeChart(spec, width);
      if (labels) figure.dataset.labels = labels;
      drawn[spec.id] = new uPlot(opts, data, figure.querySelector(".chart-plot") || figure);
    }
    document.documentElement.dataset.chartsDrawn = String(Object.keys(drawn).length);
  }

  // The window form asks for either the last so many days or dates: picking one clears the other,
  // so that the server is never sent both (which it refuses, saying so).
  function windowForm() {
    for (const form of document.querySelectorAll("form.window")) {
      const since = form.querySelector("select[name=since]");
      const dates = form.querySelectorAll("input[type=date]");
      since.addEventListener("change", () => {
        if (since.value) for (const input of dates) input.value = "";
      });
      for (const input of dates) {
        input.addEventListener("input", () => {
          if (input.value) since.value = "";
        });
      }
    }
  }

  function start() {
    windowForm();
    draw();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
