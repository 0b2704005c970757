// Outpost console and site page: relative times ("in 3h 2m", "5m ago")
// and freshness badges that keep counting without a reload. Progressive
// enhancement only: every page reads without it.
(function () {
  "use strict";

  function durationText(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    if (s >= 172800) return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
    if (s >= 3600) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    if (s >= 60) return Math.floor(s / 60) + "m";
    return s + "s";
  }

  // Freshness badges turn stale or expired on time, without a reload.
  function refreshFreshness() {
    var now = Date.now();
    document.querySelectorAll("[data-freshness]").forEach(function (el) {
      var until = Date.parse(el.getAttribute("data-fresh-until") || "");
      var exp = Date.parse(el.getAttribute("data-expires") || "");
      var state = el.textContent.trim();
      if (!isNaN(exp) && now >= exp) state = "expired";
      else if (state === "fresh" && !isNaN(until) && now > until) state = "stale";
      if (state !== el.textContent.trim()) {
        el.textContent = state;
        el.className = el.className.replace(/badge-\w+/, "badge-" + state);
      }
    });
  }

  function refreshTimes() {
    refreshFreshness();
    var now = Date.now();
    document.querySelectorAll("time[data-rel]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("datetime"));
      if (isNaN(t)) return;
      var d = t - now;
      el.textContent = d >= 0 ? "in " + durationText(d) : durationText(d) + " ago";
      var warn = parseInt(el.getAttribute("data-warn") || "0", 10);
      el.classList.toggle("error-text", warn > 0 && d < warn * 1000);
    });
  }

  var ticking = false;
  function start() {
    refreshTimes();
    if (!ticking && document.querySelector("time[data-rel], [data-freshness]")) { ticking = true; setInterval(refreshTimes, 1000); }
  }
  window.outpostTimes = start;
  document.addEventListener("DOMContentLoaded", start);
})();
