// 地名查询: type-ahead over /placenames/autocomplete, the form over /placenames/search, results on a map.
(function () {
  var form = document.getElementById("search"), input = document.getElementById("q");
  var list = document.getElementById("results"), count = document.getElementById("count");
  var root = form.dataset.root;
  var map = L.map("map").setView([28.45, 108.99], 9);
  var layer = L.featureGroup().addTo(map);
  var asked = 0;

  function show(answer, asking) {
    if (asking !== asked) { return; }  // a newer request was sent since
    list.textContent = "";
    layer.clearLayers();
    var features = answer.features || [];
    count.textContent = "共 " + features.length + " 条";
    features.forEach(function (f) {
      var at = [f.geometry.coordinates[1], f.geometry.coordinates[0]];
      var p = f.properties;
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = root + "/pages/placenames/" + f.id;
      link.textContent = p.name;
      item.appendChild(link);
      item.appendChild(document.createTextNode(" " + (p.pinyin || "") + " · " + (p.division_name || "") +
                                               (p.former_name ? " · 曾用名 " + p.former_name : "")));
      item.dataset.id = f.id;
      var marker = L.circleMarker(at, {radius: 6, color: "#1f4e79"}).bindTooltip(p.name).addTo(layer);
      item.addEventListener("click", function (event) {
        if (event.target === link) { return; }
        map.flyTo(at, 14);
        marker.openTooltip();
      });
      list.appendChild(item);
    });
    if (features.length) { map.fitBounds(layer.getBounds(), {maxZoom: 13}); }
  }

  function ask(path, params) {
    var asking = ++asked;
    fetch(root + path + "?" + new URLSearchParams(params), {headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); })
      .then(function (answer) {
        if (answer[0]) { show(answer[1], asking); }
        else if (asking === asked) { count.textContent = answer[1].detail || answer[1].message || "查询出错"; }
      });
  }

  function filters() {
    var params = {q: input.value.trim(), limit: 50};
    new FormData(form).forEach(function (value, key) { if (value && key !== "q") { params[key] = value; } });
    return params;
  }

  // While typing: the search itself (it also answers former names and typos) fills the list, and the
  // type-ahead suggestions (names, pinyin and initials by prefix) fill the box's drop-down.
  var suggestions = document.getElementById("suggestions");
  var timer = null;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    if (!input.value.trim()) { return; }
    timer = setTimeout(function () {
      ask("/placenames/search", filters());
      fetch(root + "/placenames/autocomplete?" + new URLSearchParams({q: input.value.trim()}))
        .then(function (r) { return r.ok ? r.json() : {features: []}; })
        .then(function (answer) {
          suggestions.textContent = "";
          answer.features.forEach(function (f) {
            var option = document.createElement("option");
            option.value = f.properties.name;
            suggestions.appendChild(option);
          });
        });
    }, 200);
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (input.value.trim()) { ask("/placenames/search", filters()); }
  });
})();
