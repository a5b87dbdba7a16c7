// 地名查询: type-ahead over /placenames/search, a result list beside a Leaflet map, CSV export of the results.
(function () {
  "use strict";
  var form = document.getElementById("search");
  var labels = JSON.parse(form.dataset.labels);
  var box = document.getElementById("q");
  var list = document.getElementById("results");
  var message = document.getElementById("message");
  var root = document.querySelector("link[rel=stylesheet]").getAttribute("href").replace(/pages\/static\/pages\.css$/, "");
  var map = L.map("map").setView([28.45, 108.99], 9);
  var markers = L.layerGroup().addTo(map);
  var features = [];
  var timer = null;
  var asked = 0;

  function headers() {
    var token = sessionStorage.getItem("gis-token");
    return token ? {"Authorization": "Bearer " + token} : {};
  }

  function show(collection) {
    features = collection.features;
    list.textContent = "";
    markers.clearLayers();
    features.forEach(function (f) {
      var p = f.properties;
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = root + "pages/placenames/" + f.id;
      link.textContent = p.name;
      item.appendChild(link);
      var extra = " " + (p.pinyin || "") + " · " + (labels.category[p.category] || p.category) +
        (p.division_name ? " · " + p.division_name : "") + (p.former_name ? " · 曾用名 " + p.former_name : "");
      item.appendChild(document.createTextNode(extra));
      item.className = "result";
      list.appendChild(item);
      var c = f.geometry.coordinates;
      L.circleMarker([c[1], c[0]], {radius: 6}).bindTooltip(p.name).addTo(markers);
    });
    message.textContent = features.length ? "共 " + features.length + " 条" : "没有找到匹配的地名";
    if (features.length) { map.fitBounds(L.featureGroup(markers.getLayers()).getBounds(), {maxZoom: 13}); }
  }

  function search() {
    var q = box.value.trim();
    if (!q) { return; }
    var params = new URLSearchParams({q: q, status: form.status.value, limit: "50"});
    if (form.category.value) { params.set("category", form.category.value); }
    var ticket = ++asked;
    fetch(root + "placenames/search?" + params, {headers: headers()}).then(function (r) {
      return r.json().then(function (body) { return {ok: r.ok, body: body}; });
    }).then(function (answer) {
      if (ticket !== asked) { return; }
      if (answer.ok) { show(answer.body); } else { message.textContent = answer.body.description || "查询失败"; }
    });
  }

  box.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(search, 250); });
  form.addEventListener("submit", function (e) { e.preventDefault(); search(); });
  form.category.addEventListener("change", search);
  form.status.addEventListener("change", search);

  // a cell a spreadsheet would run as a formula is written as text (as gis_service/io/csv_cells.py does)
  function cell(value) {
    var text = value == null ? "" : String(value);
    if (/^[=+\-@\t\r]/.test(text)) { text = "'" + text; }
    return '"' + text.replace(/"/g, '""') + '"';
  }

  document.getElementById("export-csv").addEventListener("click", function () {
    var rows = [["id"].concat(labels.columns).concat(["经度", "纬度"])];
    features.forEach(function (f) {
      var p = f.properties;
      rows.push([f.id, p.name, p.pinyin, labels.category[p.category] || p.category,
                 labels.status[p.status] || p.status, f.geometry.coordinates[0], f.geometry.coordinates[1]]);
    });
    var csv = "\ufeff" + rows.map(function (r) { return r.map(cell).join(","); }).join("\r\n");
    var a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([csv], {type: "text/csv;charset=utf-8"}));
    a.download = "地名查询结果.csv";
    a.click();
  });
}());
