/* AlpClusters atlas: the layers of a result or indicator map, drawn from one payload.
 *
 * The page embeds the payload once (geometry once, the statistics of every year as arrays
 * aligned with `ids`); each layer of the layer control is built from it by AC.layer(). A
 * year slider restyles every layer, swaps the year's panels and keeps the year in the URL,
 * so a URL reproduces the view. Fine layers draw their geometry from vector tiles and
 * look their statistics up by region code. window.acReady turns true once the map is
 * drawn and answers clicks.
 */
(function () {
  "use strict";
  var AC = (window.AC = window.AC || {});
  var state = null;

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function fmt(v, digits) {
    if (typeof v !== "number" || !isFinite(v)) { return "–"; }
    return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function series() { return state.data.series[String(state.year)]; }

  function setParam(name, value) {
    var url = new URL(window.location.href);
    if (value === null) { url.searchParams.delete(name); } else { url.searchParams.set(name, value); }
    window.history.replaceState(null, "", url.pathname + url.search + window.location.hash);
    document.querySelectorAll("a[data-keep-state]").forEach(function (a) {
      var link = new URL(a.href, window.location.href);
      link.searchParams.set(name, value === null ? "" : value);
      if (value === null) { link.searchParams.delete(name); }
      a.href = link.pathname + link.search;
    });
  }

  function classOf(i) {
    var k = series().k;
    if (!k) { return null; }
    return state.data.classes[k[i]];
  }

  function binOf(i) {
    var b = series().b[i];
    return b < 0 ? state.data.indicator.nodata : [state.data.indicator.colours[b], state.data.indicator.labels[b]];
  }

  function fillOf(kind, i) {
    if (i === undefined) { return "#bdbdbd"; }
    return kind === "indicator" ? binOf(i)[0] : classOf(i)[0];
  }

  function regionStyle(kind, i) {
    var missing = series().b[i] < 0;
    return {
      fill: true, fillColor: fillOf(kind, i), fillOpacity: 0.85, color: missing ? "#777777" : "#555555",
      weight: 0.6, opacity: 1, dashArray: missing ? "2 2" : null
    };
  }

  /* The popup of region i in the year shown: names, value, statistics, class, neighbours. */
  function describe(i) {
    var d = state.data, t = d.text, s = series(), name = d.names[i];
    var rows = [[t.code, d.ids[i]], [t.name, name[0]], [t.national, name[1]], [t.country, name[2]],
      [t.year, String(state.year)],
      [t.value + (d.indicator.unit ? " (" + d.indicator.unit + ")" : ""), fmt(s.v[i], d.indicator.digits)]];
    if (s.f && s.f[i]) { rows.push([t.flag, s.f[i]]); }
    rows.push([t.indicator_class, binOf(i)[1]]);
    if (s.k) {
      rows.push([d.stat, fmt(s.s[i], 2)], ["p", fmt(s.p[i], 4)], [t.klass, classOf(i)[1]]);
    }
    var nb = d.neighbours ? d.neighbours[i] : null;
    if (nb) {
      rows.push([t.neighbours, nb.length ? nb.length + ": " + nb.map(function (j) { return d.ids[j]; }).join(", ") : t.none]);
    }
    var html = "<table class=\"ac-popup\"><caption>" + esc(name[0]) + "</caption>" + rows.map(function (r) {
      return "<tr><th scope=\"row\">" + esc(r[0]) + "</th><td>" + esc(r[1]) + "</td></tr>";
    }).join("");
    if (s.c) {
      var c = s.c[i];
      var cell = c ? "<a href=\"" + esc(catchmentUrl(c)) + "\">" + esc(c) + "</a>" : "–";
      html += "<tr><th scope=\"row\">" + esc(t.catchment) + "</th><td>" + cell + "</td></tr>";
    }
    return html + "</table>";
  }

  function catchmentUrl(cid) {
    return state.data.links.catchment.replace("{catchment}", encodeURIComponent(cid))
      .replace("{year}", String(state.year));
  }

  /* The map is drawn and answers clicks; acReadyAt is when, for the benchmarks. */
  function ready() {
    if (window.acReady) { return; }
    window.acReadyAt = performance.now();
    window.acReady = true;
  }

  /* The view (zoom, centre) is kept in the URL's fragment, as #map=zoom/lat/lon. */
  function restoreView(map) {
    var m = /#map=([\d.]+)\/(-?[\d.]+)\/(-?[\d.]+)/.exec(window.location.hash);
    if (m) { map.setView([Number(m[2]), Number(m[3])], Number(m[1]), { animate: false }); }
  }

  function saveView(map) {
    var c = map.getCenter();
    var hash = "#map=" + map.getZoom() + "/" + c.lat.toFixed(4) + "/" + c.lng.toFixed(4);
    window.history.replaceState(null, "", window.location.pathname + window.location.search + hash);
  }

  /* Catchment labels crowd a continent-wide view: shown from zoom 5 on. */
  function labelsByZoom(map) {
    map.getContainer().classList.toggle("ac-labels-off", map.getZoom() < 5);
  }

  function init(map, data) {
    if (state) { return state; }
    var index = {};
    data.ids.forEach(function (id, i) { index[id] = i; });
    var url = new URL(window.location.href);
    var year = Number(url.searchParams.get("year")) || data.year;
    if (!(String(year) in data.series)) { year = data.year; }
    state = { map: map, data: data, year: year, index: index, layers: [], byFeature: {} };
    map.on("baselayerchange", function (e) {
      var kind = e.layer.acKind;
      setParam("layer", kind);
      document.querySelectorAll("[data-legend]").forEach(function (el) {
        el.hidden = el.getAttribute("data-legend") !== kind;
      });
    });
    map.on("overlayadd overlayremove", function (e) {
      if (e.layer.acKind === "catchments") { setParam("catchments", e.type === "overlayadd" ? null : "0"); }
    });
    map.whenReady(function () {
      showYearPanels();
      setTimeout(function () {  // after the page's script: the layers exist, the view is set
        restoreView(map);
        map.on("moveend", function () { saveView(map); });
        map.on("zoomend", function () { labelsByZoom(map); });
        labelsByZoom(map);
        if (!data.tiles) { ready(); }
      }, 0);
    });
    return state;
  }

  /* The hover text: code, name, and the value or class shown. */
  function tipOf(kind, i) {
    var head = state.data.ids[i] + " " + state.data.names[i][0];
    var label = kind === "indicator" ? fmt(series().v[i], state.data.indicator.digits) : classOf(i)[1];
    return esc(head) + "<br>" + esc(label);
  }

  function geojsonRegions(kind) {
    var layer = L.geoJSON(state.data.regions, {
      style: function (f) { return regionStyle(kind, f.properties.i); },
      onEachFeature: function (f, l) {
        var i = f.properties.i;
        l.bindTooltip(function () { return tipOf(kind, i); }, { sticky: true, className: "ac-region-tip" });
        l.bindPopup(function () { return describe(i); }, { maxWidth: 360 });
        l.on("mouseover", function () { l.setStyle({ weight: 2.5, color: "#000000" }); });
        l.on("mouseout", function () { l.setStyle(regionStyle(kind, i)); });
        state.byFeature[kind] = state.byFeature[kind] || {};
        state.byFeature[kind][i] = l;
      }
    });
    layer.acRestyle = function () { layer.setStyle(function (f) { return regionStyle(kind, f.properties.i); }); };
    return layer;
  }

  function tiledRegions(kind) {
    var t = state.data.tiles, styles = {};
    styles[t.layer] = function (p) { return regionStyle(kind, state.index[p.region]); };
    var layer = L.vectorGrid.protobuf(t.url, {
      pane: t.pane, interactive: true, vectorTileLayerStyles: styles,
      getFeatureId: function (f) { return f.properties.region; }
    });
    var tip = L.tooltip({ sticky: true, className: "ac-region-tip" });
    layer.on("mouseover", function (e) {
      var i = state.index[e.layer.properties.region];
      if (i === undefined) { return; }
      layer.setFeatureStyle(e.layer.properties.region, L.extend(regionStyle(kind, i), { weight: 2.5, color: "#000000" }));
      tip.setContent(tipOf(kind, i)).setLatLng(e.latlng);
      state.map.openTooltip(tip);
    });
    layer.on("mousemove", function (e) { tip.setLatLng(e.latlng); });
    layer.on("mouseout", function (e) {
      layer.resetFeatureStyle(e.layer.properties.region);
      state.map.closeTooltip(tip);
    });
    layer.on("click", function (e) {
      var i = state.index[e.layer.properties.region];
      if (i !== undefined) { L.popup({ maxWidth: 360 }).setLatLng(e.latlng).setContent(describe(i)).openOn(state.map); }
    });
    layer.on("load", ready);  // the tiles in view are drawn
    layer.acRestyle = function () { layer.redraw(); };
    return layer;
  }

  function catchmentLayer() {
    var layer = L.geoJSON(null, {
      style: function () { return { fill: false, color: "#000000", weight: 3, opacity: 1 }; },
      pane: "ac-catchments",
      onEachFeature: function (f, l) {
        var p = f.properties, t = state.data.text;
        l.bindTooltip(esc(p.catchment), { permanent: true, direction: "center", className: "ac-catchment-label" });
        l.bindPopup("<table class=\"ac-popup\"><caption>" + esc(t.catchment) + " " + esc(p.catchment) + "</caption>" +
          "<tr><th scope=\"row\">" + esc(t.members) + "</th><td>" + esc(p.n_regions) + ": " + esc(p.members.split(",").join(", ")) + "</td></tr>" +
          "<tr><th scope=\"row\">" + esc(t.countries) + "</th><td>" + esc(p.countries) + "</td></tr>" +
          "<tr><th scope=\"row\">" + esc(t.area) + "</th><td>" + fmt(p.area_km2, 0) + " km²</td></tr>" +
          "</table><a href=\"" + esc(catchmentUrl(p.catchment)) + "\">" + esc(t.open_catchment) + "</a>");
      }
    });
    layer.acRestyle = function () {
      layer.clearLayers();
      state.data.catchments.features.forEach(function (f) {
        if (f.properties.year === state.year) { layer.addData(f); }
      });
    };
    layer.acRestyle();
    return layer;
  }

  /* One layer of the layer control: "indicator", "classes" or "catchments". */
  AC.layer = function (map, data, kind) {
    init(map, data);
    if (!map.getPane("ac-catchments")) { map.createPane("ac-catchments").style.zIndex = 420; }
    var layer;
    if (kind === "catchments") { layer = catchmentLayer(); }
    else if (data.tiles) { layer = tiledRegions(kind); }
    else { layer = geojsonRegions(kind); }
    layer.acKind = kind;
    state.layers.push(layer);
    return layer;
  };

  function showYearPanels() {
    document.querySelectorAll("[data-year]").forEach(function (el) {
      el.hidden = Number(el.getAttribute("data-year")) !== state.year;
    });
    var out = document.getElementById("ac-year-value");
    if (out) { out.textContent = String(state.year); }
  }

  AC.setYear = function (year) {
    state.year = Number(year);
    state.layers.forEach(function (l) { l.acRestyle(); });
    showYearPanels();
    setParam("year", String(state.year));
    state.map.closePopup();
  };

  /* The time slider: a labelled range input, keyboard operable, centred under the map. */
  AC.slider = function (map, years) {
    var div = L.DomUtil.create("div", "ac-panel ac-slider", map.getContainer());
    var i = Math.max(0, years.indexOf(state.year));
    div.setAttribute("role", "group");
    div.setAttribute("aria-label", state.data.text.year);
    div.innerHTML = "<label for=\"ac-year\">" + esc(state.data.text.year) + ": <output id=\"ac-year-value\">" +
      state.year + "</output></label><input id=\"ac-year\" type=\"range\" min=\"0\" max=\"" + (years.length - 1) +
      "\" step=\"1\" value=\"" + i + "\" aria-valuetext=\"" + state.year + "\" list=\"ac-year-ticks\">" +
      "<datalist id=\"ac-year-ticks\">" + years.map(function (y, j) { return "<option value=\"" + j + "\" label=\"" + y + "\"></option>"; }).join("") +
      "</datalist><div class=\"ac-slider-ends\"><span>" + years[0] + "</span><span>" + years[years.length - 1] + "</span></div>";
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    var input = div.querySelector("input");
    input.addEventListener("input", function () {
      var y = years[Number(input.value)];
      input.setAttribute("aria-valuetext", String(y));
      AC.setYear(y);
    });
    return div;
  };

  /* "Find a region": keyboard access to every region's popup. */
  AC.finder = function (map) {
    var select = document.getElementById("ac-find");
    if (!select) { return; }
    select.addEventListener("change", function () {
      var i = state.index[select.value];
      if (i === undefined) { return; }
      var n = state.data.names[i], at = L.latLng(n[3], n[4]);
      map.setView(at, Math.max(map.getZoom(), 7));
      L.popup({ maxWidth: 360 }).setLatLng(at).setContent(describe(i)).openOn(map);
    });
  };
})();
