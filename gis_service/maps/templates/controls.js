{#- The controls every map has: north arrow, the scale bar's caption, the 打印 button, the search box.
    SEARCH_URL: the service's place-name search relative to the page ("" in a file opened from disk:
    then the names the map writes are searched in the page itself). __MAP__ names the map's variable. -#}
(function () {
  var map = __MAP__, SEARCH_URL = {{ search_url }}, BOUNDS = {{ bounds }};
  function control(position, html, className) {
    var C = L.Control.extend({onAdd: function () {
      var div = L.DomUtil.create("div", className); div.innerHTML = html;
      L.DomEvent.disableClickPropagation(div); L.DomEvent.disableScrollPropagation(div); return div; }});
    var c = new C({position: position}); c.addTo(map); return c.getContainer();
  }
  control("bottomleft", '<svg width="22" height="30" viewBox="0 0 22 30"><polygon points="11,2 19,26 11,20 3,26" ' +
    'fill="#222"/><polygon points="11,2 11,20 3,26" fill="#fff" stroke="#222" stroke-width="1"/></svg><div>北</div>',
    "gis-north leaflet-bar");
  var scale = document.querySelector(".leaflet-control-scale");
  if (scale) { scale.insertAdjacentHTML("afterbegin", '<div class="gis-scale-title">比例尺</div>'); }
  window.gisPrintLayout = function (on) {
    document.body.classList.toggle("gis-print", on);
    map.invalidateSize({animate: false});
    var legend = document.querySelector(".gis-bottom-right");
    if (BOUNDS) { map.fitBounds(BOUNDS, {paddingTopLeft: [20, 20], animate: false,
      paddingBottomRight: [on && legend ? legend.offsetWidth + 20 : 20, 20]}); }
  };
  var button = control("topleft", '<button type="button" class="gis-print-button" title="打印或存为 PDF">打印</button>',
    "gis-print-control");
  button.querySelector("button").addEventListener("click", function () {
    window.gisPrintLayout(true);
    setTimeout(function () { window.print(); }, 300);
  });
  window.addEventListener("afterprint", function () { window.gisPrintLayout(false); });
  var box = control("topleft", '<input type="search" placeholder="搜索地名：乡镇、村、道路…" aria-label="搜索地名">' +
    '<ul></ul>', "gis-search");
  var input = box.querySelector("input"), list = box.querySelector("ul"), timer = null, shown = [];
  function go(item) {
    list.innerHTML = ""; input.value = item.name;
    if (item.bounds) { map.flyToBounds(item.bounds, {maxZoom: 15}); } else { map.flyTo(item.at, 15); }
  }
  function show(items) {
    shown = items; list.innerHTML = "";
    items.forEach(function (item) {
      var li = document.createElement("li"); li.textContent = item.name;
      if (item.note) { var s = document.createElement("small"); s.textContent = item.note; li.appendChild(s); }
      li.addEventListener("click", function () { go(item); }); list.appendChild(li);
    });
  }
  function local(q) {
    var seen = {}, found = [];
    (window.GIS_LABELS || []).forEach(function (label) {
      var name = label[0].replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">");
      if (name.indexOf(q) >= 0 && !seen[name] && found.length < 10) {
        seen[name] = true; found.push({name: name, at: [label[1], label[2]]}); }
    });
    show(found);
  }
  function remote(q) {
    fetch(SEARCH_URL + "?limit=10&q=" + encodeURIComponent(q)).then(function (r) {
      return r.ok ? r.json() : {features: []}; }).then(function (answer) {
      if (input.value.trim() !== q) { return; }
      show((answer.features || []).filter(function (f) { return f.geometry; }).map(function (f) {
        var g = f.geometry, p = f.properties || {};
        var item = {name: p.name, note: p.category_zh || p.division_name || ""};
        if (g.type === "Point") { item.at = [g.coordinates[1], g.coordinates[0]]; }
        else { item.bounds = L.geoJSON(g).getBounds(); }
        return item;
      }));
    }).catch(function () { local(q); });
  }
  input.addEventListener("input", function () {
    var q = input.value.trim(); clearTimeout(timer);
    if (!q) { list.innerHTML = ""; return; }
    timer = setTimeout(function () { if (SEARCH_URL && location.protocol.indexOf("http") === 0) { remote(q); }
      else { local(q); } }, 150);
  });
  input.addEventListener("keydown", function (e) { if (e.key === "Enter" && shown.length) { go(shown[0]); } });
  // a row of a table (a township, a village, a suggested site's settlement) zooms to the place of its first cell
  document.querySelectorAll(".gis-table tbody tr").forEach(function (row) {
    var name = row.cells[0].textContent;
    var found = (window.GIS_LABELS || []).filter(function (label) { return label[0] === name; })[0];
    if (found) { row.style.cursor = "pointer"; row.title = "在地图上查看";
      row.addEventListener("click", function () { map.flyTo([found[1], found[2]], 14); }); }
  });
  if (location.hash === "#print") { window.gisPrintLayout(true); }
})();
