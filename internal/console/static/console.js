// Outpost console: progressive enhancement only. Every page works without
// this file; with it, uploads show a progress bar (relative times are
// times.js, shared with the site page).
(function () {
  "use strict";

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

  function init() {
    if (window.outpostTimes) window.outpostTimes();
    document.querySelectorAll("form[data-upload]").forEach(enhanceUpload);
  }
  window.outpostInit = init;
  document.addEventListener("DOMContentLoaded", init);
})();
