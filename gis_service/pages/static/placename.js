// One place name's map: a marker where it is, over the townships.
(function () {
  var box = document.getElementById("map");
  var at = [parseFloat(box.dataset.lat), parseFloat(box.dataset.lon)];
  var map = L.map(box).setView(at, 13);
  drawTownships(map, box.dataset.root);
  L.circleMarker(at, {radius: 8, color: "#1f4e79"}).addTo(map).bindTooltip(box.dataset.name).openTooltip();
})();
