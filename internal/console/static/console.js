// Outpost console: progressive enhancement only. Every page works without
// this file; with it, uploads show a progress bar and relative times
// ("in 3h 2m", "5m ago") keep counting.
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

  // Upload forms (data-upload): send with XMLHttpRequest to report
  // progress, then show the page the server answers with.
  function enhanceUpload(form) {
    var box = form.querySelector(".upload-progress");
    var bar = form.querySelector("progress");
    var text = form.querySelector("output");
    form.addEventListener("submit", function (ev) {
      if (!window.FormData || !window.XMLHttpRequest) return;
      ev.preventDefault();
      var file = form.querySelector("input[type=file]");
      var size = form.querySelector("[data-size-for]");
      if (size && file && file.files.length) size.value = String(file.files[0].size);
      var data = new FormData(form);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      if (box) box.hidden = false;
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        var pct = Math.floor((e.loaded / e.total) * 100);
        document.documentElement.setAttribute("data-upload-progress", String(pct));
        if (bar) { bar.value = pct; bar.textContent = pct + "%"; }
        if (text) text.textContent = pct + "%";
      });
      xhr.upload.addEventListener("load", function () {
        if (bar) bar.value = 100;
        document.documentElement.setAttribute("data-upload-progress", "100");
        if (text) text.textContent = "100% — processing…";
      });
      xhr.addEventListener("load", function () {
        // The server answered with a page (after a redirect, the page
        // redirected to): show it in place, as a form post would.
        var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
        document.title = doc.title;
        document.body.replaceWith(document.adoptNode(doc.body));
        if (xhr.responseURL && xhr.status < 400) history.replaceState(null, "", xhr.responseURL);
        init();
        var main = document.getElementById("main");
        if (main) main.focus();
      });
      xhr.addEventListener("error", function () {
        if (text) text.textContent = "upload failed: the connection was lost";
        form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      });
      xhr.send(data);
    });
  }

  var ticking = false;
  function init() {
    refreshTimes();
    if (!ticking && document.querySelector("time[data-rel], [data-freshness]")) { ticking = true; setInterval(refreshTimes, 1000); }
    document.querySelectorAll("form[data-upload]").forEach(enhanceUpload);
  }
  window.outpostInit = init;
  document.addEventListener("DOMContentLoaded", init);
})();
