{#- The roads under a map that does not draw them as a layer of its own: one style per class, no tooltips. -#}
(function () {
  var map = __MAP__, pane = map.createPane("gisRoads");
  pane.style.zIndex = 450; pane.style.pointerEvents = "none";
  var STYLES = {{ styles }};
  L.geoJSON({{ roads }}, {pane: "gisRoads", interactive: false, style: function (f) { return STYLES[f.properties.c]; }
  }).addTo(map);
})();
