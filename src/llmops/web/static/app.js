/* llmops web UI: progressive enhancements only; every page works without this file. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // ---- times: the server writes UTC, the viewer reads their own zone -------------------------
  var pad = function (n, w) { return String(n).padStart(w || 2, "0"); };
  function formatTime(d, fmt) {
    var hms = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    var day = d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
    if (fmt === "precise") return day + " " + hms + "." + pad(d.getMilliseconds(), 3);
    if (fmt === "time" && d.toDateString() === new Date().toDateString()) return hms;
    return day + " " + hms;
  }
  function localizeTimes(root) {
    root.querySelectorAll("time[datetime][data-fmt]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) el.textContent = formatTime(d, el.dataset.fmt);
    });
  }

  // ---- copy buttons --------------------------------------------------------------------------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { area.remove(); }
    return Promise.resolve();
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var target = document.getElementById(btn.dataset.copy);
    if (!target) return;
    copyText(target.textContent.trim()).then(function () {
      var label = btn.textContent;
      btn.textContent = "Copied";
      btn.classList.add("copied");
      setTimeout(function () { btn.textContent = label; btn.classList.remove("copied"); }, 1400);
    });
  });

  // ---- tabs ------------------------------------------------------------------------------------
  function initTabs(root) {
    root.querySelectorAll("[data-tabs]").forEach(function (tabs) {
      var show = function (name) {
        tabs.querySelectorAll("[data-tab]").forEach(function (t) {
          var on = t.dataset.tab === name;
          t.classList.toggle("active", on);
          t.setAttribute("aria-selected", on ? "true" : "false");
        });
        tabs.querySelectorAll("[data-panel]").forEach(function (p) { p.hidden = p.dataset.panel !== name; });
      };
      tabs.addEventListener("click", function (ev) {
        var t = ev.target.closest("[data-tab]");
        if (t) show(t.dataset.tab);
      });
      var first = tabs.querySelector("[data-tab]");
      if (first) show(first.dataset.tab);
    });
  }

  // ---- trace detail: pick a span in the timeline to see its panel ------------------------------
  function selectSpan(spanId) {
    var panel = document.querySelector('[data-panel-span="' + CSS.escape(spanId) + '"]');
    if (!panel) return false;
    document.querySelectorAll(".span-row").forEach(function (r) { r.classList.toggle("selected", r.dataset.span === spanId); });
    document.querySelectorAll(".span-panel").forEach(function (p) { p.classList.toggle("active", p === panel); });
    return true;
  }
  document.addEventListener("click", function (ev) {
    var row = ev.target.closest(".span-row");
    if (row && selectSpan(row.dataset.span)) {
      ev.preventDefault();
      history.replaceState(null, "", "#span-" + row.dataset.span);
    }
  });

  // ---- live lists (htmx): no polling while the tab is hidden; show when updates stall ----------
  document.addEventListener("htmx:beforeRequest", function (ev) {
    if (document.hidden && ev.detail.elt.hasAttribute("data-poll")) ev.preventDefault();
  });
  document.addEventListener("htmx:afterRequest", function (ev) {
    var live = document.getElementById("live-indicator");
    if (live && ev.detail.elt.hasAttribute("data-poll")) live.classList.toggle("stale", !ev.detail.successful);
  });
  document.addEventListener("htmx:afterSwap", function (ev) { localizeTimes(ev.detail.target); });

  // ---- dashboard charts (Chart.js, if served); otherwise the data table is shown ---------------
  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function bucketLabel(ns, bucketS) {
    var d = new Date(ns / 1e6);
    var hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    if (bucketS >= 3600) return d.toLocaleDateString(undefined, { weekday: "short" }) + " " + hm;
    return hm;
  }
  function chart(id, type, labels, datasets, opts) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    var old = window.Chart.getChart(canvas);
    if (old) old.destroy();
    return new window.Chart(canvas, {
      type: type,
      data: { labels: labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, spanGaps: true,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 10, boxHeight: 10 } } },
        elements: { point: { radius: 2, hoverRadius: 5 }, line: { tension: 0.25, borderWidth: 2 } },
        scales: {
          x: { stacked: !!(opts && opts.stacked), grid: { display: false }, ticks: { maxTicksLimit: 8, maxRotation: 0 } },
          y: { stacked: !!(opts && opts.stacked), beginAtZero: true, grid: { color: css("--grid") },
               ticks: { maxTicksLimit: 5, callback: opts && opts.tick } }
        }
      }
    });
  }
  function renderCharts() {
    var box = document.getElementById("charts");
    var data = document.getElementById("metrics-data");
    if (!box || !data) return;
    if (!window.Chart) {
      box.classList.add("no-charts");
      var table = document.getElementById("series-table");
      if (table) table.open = true;
      return;
    }
    window.Chart.defaults.font.family = css("--font");
    window.Chart.defaults.color = css("--muted");
    var m = JSON.parse(data.textContent);
    var s = m.series;
    var labels = s.map(function (b) { return bucketLabel(b.start_ns, m.bucket_s); });
    var col = function (k) { return s.map(function (b) { return b[k]; }); };
    var accent = css("--accent"), accent2 = css("--accent-2"), red = css("--red"), amber = css("--amber");
    chart("chart-requests", "bar", labels, [
      { label: "ok", data: s.map(function (b) { return b.requests - b.errors; }), backgroundColor: accent },
      { label: "errors", data: col("errors"), backgroundColor: red }
    ], { stacked: true });
    chart("chart-tokens", "bar", labels, [
      { label: "input", data: col("input_tokens"), backgroundColor: accent },
      { label: "output", data: col("output_tokens"), backgroundColor: accent2 }
    ], { stacked: true });
    var ms = function (v) { return v >= 1000 ? (v / 1000).toFixed(1) + " s" : Math.round(v) + " ms"; };
    chart("chart-latency", "line", labels, [
      { label: "p50", data: col("latency_p50_ms"), borderColor: accent, backgroundColor: accent },
      { label: "p95", data: col("latency_p95_ms"), borderColor: amber, backgroundColor: amber }
    ], { tick: ms });
    chart("chart-cost", "bar", labels, [
      { label: "cost", data: col("cost_usd"), backgroundColor: accent2 }
    ], { tick: function (v) { return "$" + Number(v.toPrecision(3)); } });
  }

  function renderScoreChart() {
    var data = document.getElementById("score-data");
    if (!data || !window.Chart || !document.getElementById("chart-scores")) return;
    var m = JSON.parse(data.textContent);
    if (!m.names.length) return;
    var palette = [css("--accent"), css("--accent-2"), css("--amber"), css("--green"), css("--red"), "#a855f7"];
    var labels = m.names[0].series.map(function (b) { return bucketLabel(b.start_ns, m.bucket_s); });
    chart("chart-scores", "line", labels, m.names.map(function (n, i) {
      var color = palette[i % palette.length];
      return { label: n.name, data: n.series.map(function (b) { return b.mean; }), borderColor: color, backgroundColor: color };
    }));
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    initTabs(document);
    if (location.hash.indexOf("#span-") === 0) selectSpan(location.hash.slice(6));
    renderCharts();
    renderScoreChart();
  });
})();
