// Outpost mirror status page: progressive enhancement only. Without this
// file the page reads and the upload form posts; with it, a bundle can be
// dropped on the page and the upload shows its progress (relative times
// are times.js, shared with the console).
(function () {
  "use strict";

  function showName(zone, input) {
    var out = zone.querySelector("[data-file-name]");
    if (out && input.files.length) out.textContent = input.files[0].name + " (" + input.files[0].size + " bytes)";
  }

  function enhanceDrop(zone) {
    var input = zone.querySelector("input[type=file]");
    ["dragenter", "dragover"].forEach(function (t) {
      zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      zone.addEventListener(t, function () { zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files.length) {
        input.files = e.dataTransfer.files;
        showName(zone, input);
      }
    });
    input.addEventListener("change", function () { showName(zone, input); });
  }

  function enhanceUpload(form) {
    var box = form.querySelector(".upload-progress");
    var bar = form.querySelector("progress");
    var text = form.querySelector("output");
    form.addEventListener("submit", function (ev) {
      if (!window.FormData || !window.XMLHttpRequest) return;
      ev.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      if (box) box.hidden = false;
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        var pct = Math.floor((e.loaded / e.total) * 100);
        document.documentElement.setAttribute("data-upload-progress", String(pct));
        if (bar) bar.value = pct;
        if (text) text.textContent = pct + "%";
      });
      xhr.upload.addEventListener("load", function () {
        if (bar) bar.value = 100;
        document.documentElement.setAttribute("data-upload-progress", "100");
        if (text) text.textContent = "100% — verifying…";
      });
      xhr.addEventListener("load", function () {
        var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
        document.title = doc.title;
        document.body.replaceWith(document.adoptNode(doc.body));
        history.replaceState(null, "", "/");
        init();
        var main = document.getElementById("main");
        if (main) main.focus();
      });
      xhr.addEventListener("error", function () {
        if (text) text.textContent = "upload failed: the connection was lost";
        form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      });
      xhr.send(new FormData(form));
    });
  }

  function init() {
    document.querySelectorAll("[data-dropzone]").forEach(enhanceDrop);
    document.querySelectorAll("form[data-upload]").forEach(enhanceUpload);
  }
  document.addEventListener("DOMContentLoaded", init);
})();
