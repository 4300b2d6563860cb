/* The progress page: poll the analysis and open its map when it is done. */
(function () {
  "use strict";
  var bar = document.getElementById("progress");
  var text = document.getElementById("progress-text");
  if (!bar) { return; }
  var url = bar.getAttribute("data-status-url");
  function poll() {
    fetch(url, { headers: { Accept: "application/json" } }).then(function (r) { return r.json(); })
      .then(function (a) {
        var pct = Math.round(a.progress || 0);
        bar.value = pct;
        text.textContent = pct + " %";
        if (a.status === "done" || a.status === "failed") { window.location.reload(); return; }
        setTimeout(poll, 700);
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 300);
})();
