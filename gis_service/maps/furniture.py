"""What every map has around its layers: the place-name search box, the north arrow, the scale bar's caption, the
打印 button and the print layout (title, map, legend, scale bar, north arrow, date, 制图单位, data source, note).

The print layout is one set of CSS rules applied two ways: by ``@media print`` when a planner presses 打印 (the
browser's own print dialog), and by the class ``gis-print`` that ``gis-service map build --out FILE.pdf`` sets in
headless Chromium (:mod:`gis_service.maps.printing`), so the button and the command give the same page.
"""

from __future__ import annotations

from html import escape

#: The print layout; ``%(scope)s`` is ``body`` under @media print and ``body.gis-print`` for the command.
_PRINT_RULES = """
%(scope)s .leaflet-control-layers, %(scope)s .leaflet-control-zoom, %(scope)s .gis-search,
%(scope)s .gis-print-button, %(scope)s .gis-bottom-left { display: none !important; }
%(scope)s .folium-map { position: absolute !important; top: 18mm !important; bottom: 14mm !important;
  left: 0 !important; right: 0 !important; width: auto !important; height: auto !important;
  border: 1px solid #444; }
%(scope)s .gis-title { position: absolute; top: 0; left: 0; right: 0; max-width: none; box-shadow: none;
  padding: 0; height: 17mm; background: none; }
%(scope)s .gis-title h1 { font-size: 20px; }
%(scope)s .gis-bottom-right { bottom: calc(14mm + 8px); right: 8px; max-height: none; overflow: visible; }
%(scope)s .gis-legend { box-shadow: none; border: 1px solid #888; }
%(scope)s .gis-print-footer { display: flex; }
%(scope)s .gis-label { text-shadow: none; }
"""

CSS = """
.gis-label { background: none; border: none; white-space: nowrap; text-align: center; pointer-events: none;
  color: #222; text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff; line-height: 1.2; }
.gis-label-township { font-size: 15px; font-weight: bold; color: #1b2631; letter-spacing: 1px; }
.gis-label-natural { font-size: 13px; font-style: italic; color: #0b5394; }
.gis-label-village { font-size: 12px; color: #37474f; }
.gis-label-major_road, .gis-label-road { font-size: 11px; color: #6d4c41; }
.gis-search { position: relative; background: #fff; border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.3); }
.gis-search input { width: 190px; padding: 5px 8px; border: none; font-size: 13px; border-radius: 4px; }
.gis-search ul { list-style: none; margin: 0; padding: 0; max-height: 260px; overflow: auto; }
.gis-search li { padding: 4px 8px; cursor: pointer; font-size: 13px; border-top: 1px solid #eee; }
.gis-search li:hover, .gis-search li.gis-active { background: #e3f2fd; }
.gis-search li small { color: #777; margin-left: 6px; }
.gis-north { background: rgba(255,255,255,.85); border-radius: 4px; padding: 2px 4px; text-align: center;
  font-weight: bold; font-size: 12px; line-height: 12px; }
.gis-scale-title { font-size: 11px; color: #333; margin-bottom: 1px; }
.gis-print-button { background: #fff; border: none; border-radius: 4px; padding: 5px 10px; font-size: 13px;
  cursor: pointer; box-shadow: 0 1px 4px rgba(0,0,0,.3); }
.gis-print-footer { display: none; position: absolute; left: 0; right: 0; bottom: 0; height: 13mm; z-index: 1000;
  font-size: 11px; color: #333; justify-content: space-between; align-items: flex-end; gap: 12px; }
.gis-print-footer div { max-width: 48%%; }
@page { margin: 8mm; }
@media print { html, body { width: 100%%; height: 100%%; } %(media)s }
%(command)s
"""


def css() -> str:
    return CSS % {"media": _PRINT_RULES % {"scope": "body"},
                  "command": _PRINT_RULES % {"scope": "body.gis-print"}}


def print_footer(*, organisation: str, county: str, data_source: str, note: str, made_on: str) -> str:
    """The line under the printed map: 制图单位, date, data source and the demo-data note."""
    left = f"制图单位：{escape(organisation or '（未设置 GIS_MAP_ORGANISATION）')}　制图日期：{escape(made_on)}"
    right = f"区域：{escape(county)}　数据来源：{escape(data_source)}"
    notes = f"<br>{escape(note)}" if note else ""
    return f'<div class="gis-print-footer"><div>{left}{notes}</div><div>{right}</div></div>'


#: The controls: north arrow, the scale bar's caption, the 打印 button, the search box. ``SEARCH_URL`` is the
#: service's place-name search relative to the page ("" in a file opened from disk: then the names the map writes
#: are searched in the page itself).
CONTROLS_JS = """(function () {
  var map = __MAP__, SEARCH_URL = %(search_url)s, BOUNDS = %(bounds)s;
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
})();"""
