// The townships' outlines under a page's map (its own pane, below the results, not clickable): the maps' basemap
// is drawn into their own files, and the pages have no other (no tiles from the internet).
function drawTownships(map, root) {
  map.createPane("townships").style.zIndex = 350;
  fetch(root + "/collections/admin_divisions/items?" +
        new URLSearchParams({level: "township", limit: 100, properties: "name", f: "json"}))
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (townships) {
      if (!townships) { return; }
      L.geoJSON(townships, {pane: "townships", interactive: false,
                            style: {color: "#7a7a7a", weight: 1, fill: true, fillColor: "#f4f1e8", fillOpacity: 0.6}})
        .addTo(map);
    });
}
