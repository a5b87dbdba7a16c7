// A small map of the one feature a page shows (its GeoJSON geometry in the map element's data-geometry).
(function () {
  "use strict";
  var element = document.getElementById("map");
  var layer = L.geoJSON(JSON.parse(element.dataset.geometry), {
    pointToLayer: function (f, latlng) { return L.circleMarker(latlng, {radius: 7}); }
  });
  var map = L.map(element).addLayer(layer);
  map.fitBounds(layer.getBounds(), {maxZoom: 14});
}());
