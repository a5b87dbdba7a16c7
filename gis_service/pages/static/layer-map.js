// The layer browser's preview map: draws the page's own features (the GeoJSON embedded in #features) with the
// layer's colours, labels each by its name, links each to its page (on an items page), and fits the view to them.
(function () {
  var box = document.getElementById("map");
  var data = JSON.parse(document.getElementById("features").textContent);
  var style = JSON.parse(box.dataset.style);
  var base = box.dataset.featureBase;
  var map = L.map(box, {preferCanvas: false});

  function colour(feature) {
    var value = style.by ? feature.properties[style.by] : null;
    return (value !== null && value !== undefined && style.colors[value]) || style.color;
  }

  var layer = L.geoJSON(data, {
    pointToLayer: function (feature, at) {
      return L.circleMarker(at, {radius: 6, weight: 2, fillOpacity: 0.6});
    },
    style: function (feature) {
      var c = colour(feature);
      return {color: c, fillColor: c, weight: 2, fillOpacity: 0.15};
    },
    onEachFeature: function (feature, drawn) {
      var name = feature.properties[style.label];
      var label = (name === null || name === undefined || name === "") ? "要素 " + feature.id : String(name);
      drawn.bindTooltip(label);
      if (base) {
        var link = document.createElement("a");
        link.href = base + feature.id + "?f=html";
        link.textContent = label;
        drawn.bindPopup(link);
      }
    }
  }).addTo(map);
  var bounds = layer.getBounds();
  if (bounds.isValid()) {
    map.fitBounds(bounds, {maxZoom: 15, padding: [12, 12]});
  } else {
    map.setView([0, 0], 1);
  }
})();
