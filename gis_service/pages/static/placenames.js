// 地名查询: type-ahead over /placenames/autocomplete, the form over /placenames/search (ranked: its largest limit,
// shown a page at a time; 包含查询: every name holding the text, a page fetched at a time), downloads of all of
// them (/pages/placenames/export), and the map: a row flies to its place, a click on the map asks
// /placenames/reverse what is there.
(function () {
  var form = document.getElementById("search"), input = document.getElementById("q");
  var list = document.getElementById("results"), count = document.getElementById("count");
  var exportBox = document.getElementById("export"), pager = document.getElementById("pager");
  var root = form.dataset.root, limit = form.dataset.limit, pageSize = 20;
  var map = L.map("map").setView([28.45, 108.99], 9);
  var layer = L.featureGroup().addTo(map);
  drawTownships(map, root);
  var asked = 0, features = [], shownPage = 0;

  function el(tag, text, attributes) {
    var element = document.createElement(tag);
    if (text) { element.textContent = text; }
    Object.keys(attributes || {}).forEach(function (k) { element.setAttribute(k, attributes[k]); });
    return element;
  }

  // Ranked (the default): the search's best matches, at most `limit`, paged here. 包含查询 (mode=contains): every
  // name holding the text, counted by the service (numberMatched) and fetched a page at a time (offset).
  var contains = false, total = 0, lastParams = null;

  function showPage(number) {
    shownPage = number;
    list.textContent = "";
    layer.clearLayers();
    var pages = Math.ceil(total / pageSize);
    var shown = contains ? features : features.slice(number * pageSize, (number + 1) * pageSize);
    shown.forEach(function (f) {
      var at = [f.geometry.coordinates[1], f.geometry.coordinates[0]];
      var p = f.properties;
      var item = el("li");
      var link = el("a", p.name, {href: root + "/pages/placenames/" + f.id});
      item.appendChild(link);
      item.appendChild(document.createTextNode(" " + (p.pinyin || "") + " · " + (p.division_name || "") +
                                               (p.former_name ? " · 曾用名 " + p.former_name : "")));
      item.dataset.id = f.id;
      var marker = L.circleMarker(at, {radius: 6, color: "#1f4e79"}).bindTooltip(p.name).addTo(layer);
      item.addEventListener("click", function (event) {
        if (event.target === link) { return; }
        map.flyTo(at, 15, {duration: 0.5});
        marker.openTooltip();
      });
      list.appendChild(item);
    });
    pager.hidden = pages < 2;
    document.getElementById("page-of").textContent = "第 " + (number + 1) + " / " + pages + " 页";
    document.getElementById("previous").disabled = number === 0;
    document.getElementById("next").disabled = number >= pages - 1;
    if (shown.length) { map.fitBounds(layer.getBounds(), {maxZoom: 13}); }
  }

  function countText() {
    if (!total) { return "没有找到匹配的地名"; }
    var text = "共 " + total + " 条" + (total > pageSize ? "，每页 " + pageSize + " 条" : "");
    if (!contains && total >= Number(limit)) {
      text += "（最相关的 " + limit + " 条；勾选“包含查询”可列出全部含有该文字的地名及其总数）";
    }
    return text;
  }

  function show(answer, params, asking, number) {
    if (asking !== asked) { return; }  // a newer request was sent since
    features = answer.features || [];
    contains = params.mode === "contains";
    total = contains ? answer.numberMatched : features.length;
    lastParams = params;
    count.textContent = countText();
    exportBox.hidden = !total;
    Array.prototype.forEach.call(exportBox.querySelectorAll("a.download"), function (link) {
      var query = new URLSearchParams(params);
      query.delete("limit");
      query.delete("offset");
      query.set("format", link.dataset.format);
      link.href = root + "/pages/placenames/export?" + query;
    });
    showPage(number || 0);
  }

  function ask(params, number) {
    var asking = ++asked;
    var query = Object.assign({}, params);
    if (params.mode === "contains") { query.limit = pageSize; query.offset = (number || 0) * pageSize; }
    fetch(root + "/placenames/search?" + new URLSearchParams(query), {headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); })
      .then(function (answer) {
        if (answer[0]) { show(answer[1], params, asking, number); }
        else if (asking === asked) { count.textContent = answer[1].description || "查询出错"; }
      });
  }

  function filters() {
    var params = {q: input.value.trim(), limit: limit};
    new FormData(form).forEach(function (value, key) { if (value && key !== "q") { params[key] = value; } });
    return params;
  }

  function turnTo(number) {
    if (contains) { ask(lastParams, number); } else { showPage(number); }
  }

  document.getElementById("previous").addEventListener("click", function () { turnTo(shownPage - 1); });
  document.getElementById("next").addEventListener("click", function () { turnTo(shownPage + 1); });

  // While typing: the search itself (it also answers former names and typos) fills the list, and the
  // type-ahead suggestions (names, pinyin and initials by prefix) fill the box's drop-down.
  var suggestions = document.getElementById("suggestions");
  var timer = null;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    if (!input.value.trim()) { return; }
    timer = setTimeout(function () {
      ask(filters());
      fetch(root + "/placenames/autocomplete?" + new URLSearchParams({q: input.value.trim()}))
        .then(function (r) { return r.ok ? r.json() : {features: []}; })
        .then(function (answer) {
          suggestions.textContent = "";
          answer.features.forEach(function (f) { suggestions.appendChild(el("option", "", {value: f.properties.name})); });
        });
    }, 200);
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (input.value.trim()) { ask(filters()); }
  });
  form.addEventListener("change", function (event) {
    if (event.target !== input && input.value.trim()) { ask(filters()); }
  });

  // What is here: the divisions around the point, the nearest road and the nearest place names.
  var here = L.popup({maxWidth: 280});
  map.on("click", function (event) {
    var lon = event.latlng.lng.toFixed(6), lat = event.latlng.lat.toFixed(6);
    fetch(root + "/placenames/reverse?" + new URLSearchParams({lon: lon, lat: lat, nearest: 3}))
      .then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); })
      .then(function (answer) {
        var box = el("div", "", {"class": "here"}), body = answer[1];
        if (!answer[0]) {
          box.appendChild(el("p", body.description || "查询出错"));
        } else if (!body.inside_county) {
          box.appendChild(el("p", "此处不在本县范围内"));
        } else {
          var where = [body.county, body.township, body.village].filter(Boolean)
            .map(function (d) { return d.name; }).join(" ");
          box.appendChild(el("p", "所在区划：" + where));
          if (body.nearest_road) {
            box.appendChild(el("p", "最近道路：" + (body.nearest_road.name || "无名道路") + "（" +
                                    Math.round(body.nearest_road.distance_m) + " 米）"));
          }
          var names = el("p", "附近地名：");
          body.nearest_place_names.features.forEach(function (f, i) {
            if (i) { names.appendChild(document.createTextNode("、")); }
            names.appendChild(el("a", f.properties.name, {href: root + "/pages/placenames/" + f.id}));
            names.appendChild(document.createTextNode("（" + Math.round(f.properties.distance_m) + " 米）"));
          });
          box.appendChild(names);
        }
        here.setLatLng(event.latlng).setContent(box).openOn(map);
      });
  });
})();
