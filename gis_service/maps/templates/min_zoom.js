{#- A layer drawn only from a zoom on (the coverage map's settlements, where they separate). -#}
(function () {
  var map = __MAP__, layer = {{ layer }}, shown = true;
  function gate() {
    var wanted = map.getZoom() >= {{ zoom }};
    if (wanted !== shown) { shown = wanted; if (wanted) { map.addLayer(layer); } else { map.removeLayer(layer); } }
  }
  map.on("zoomend", gate); map.whenReady(gate);
})();
