{#- The names written on the map: a collision pass places them in order of rank and leaves out any that
    would overlap one already placed, again after every zoom and pan. -#}
(function () {
  var map = __MAP__, LABELS = {{ labels }}, ZOOMS = {{ zooms }};
  var SIZE = {township: 15, natural: 13, major_road: 12, village: 12, road: 11};
  var pane = map.createPane("gisLabels");
  pane.style.zIndex = 640; pane.style.pointerEvents = "none";
  var group = L.layerGroup().addTo(map);
  function draw() {
    group.clearLayers();
    var zoom = map.getZoom(), view = map.getBounds().pad(0.05), placed = [];
    LABELS.forEach(function (label) {
      var kind = label[3];
      if (zoom < ZOOMS[kind]) { return; }
      var at = L.latLng(label[1], label[2]);
      if (!view.contains(at)) { return; }
      var p = map.latLngToContainerPoint(at), size = SIZE[kind];
      var w = label[0].length * size + 10, h = size + 5;  // a margin, so that names do not touch
      // where it stands, else just above or below (the name still reads as the place's)
      var dy = [0, -h, h].find(function (dy) {
        var box = [p.x - w / 2, p.y + dy - h / 2, p.x + w / 2, p.y + dy + h / 2];
        return !placed.some(function (o) {
          return box[0] < o[2] && o[0] < box[2] && box[1] < o[3] && o[1] < box[3]; });
      });
      if (dy === undefined) { return; }
      placed.push([p.x - w / 2, p.y + dy - h / 2, p.x + w / 2, p.y + dy + h / 2]);
      group.addLayer(L.marker(at, {pane: "gisLabels", interactive: false, keyboard: false, icon: L.divIcon({
        className: "gis-label gis-label-" + kind, html: label[0], iconSize: [w, h],
        iconAnchor: [w / 2, h / 2 - dy]})}));
    });
  }
  window.gisDrawLabels = draw; window.GIS_LABELS = LABELS;
  map.on("zoomend moveend resize", draw);
  map.whenReady(draw);
})();
