/* The start page's form: indicators and years follow the chosen dataset. */
(function () {
  "use strict";
  var dataset = document.getElementById("f-dataset");
  var indicator = document.getElementById("f-indicator");
  var years = document.getElementById("f-years");
  var area = document.getElementById("f-area");
  var codes = document.getElementById("f-codes");
  if (!dataset || !indicator || !years) { return; }

  function syncIndicators() {
    var first = null;
    Array.prototype.forEach.call(indicator.options, function (o) {
      var mine = o.getAttribute("data-dataset") === dataset.value;
      o.hidden = !mine;
      o.disabled = !mine;
      if (mine && first === null) { first = o; }
    });
    var chosen = indicator.options[indicator.selectedIndex];
    if ((!chosen || chosen.disabled) && first) { first.selected = true; }
    syncYears();
  }

  function syncYears() {
    var chosen = indicator.options[indicator.selectedIndex];
    var have = chosen ? chosen.getAttribute("data-years").split(",") : [];
    Array.prototype.forEach.call(years.options, function (o) {
      var mine = have.indexOf(o.value) >= 0;
      o.hidden = !mine;
      o.disabled = !mine;
      if (!mine) { o.selected = false; }
    });
  }

  function syncCodes() { codes.required = area.value === "custom"; }

  dataset.addEventListener("change", syncIndicators);
  indicator.addEventListener("change", syncYears);
  area.addEventListener("change", syncCodes);
  syncIndicators();
  syncCodes();
})();
