// 界线界桩: the markers listed on the page on a map, and the inspection form of a signed-in inspector. The form posts
// to the API's own endpoint (POST /collections/boundary_markers/items/{id}/inspections): the browser sends its
// session cookie (same origin), so the API checks the inspection and the token's role as for any client, and its
// message is shown below a plain Chinese sentence. On success the marker's row is read again from the API.
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.marker"));
  var form = document.getElementById("inspection");
  var result = document.getElementById("inspection-result");
  var box = document.getElementById("markers-map");
  //: What a refusal means, by HTTP status, in plain words; the API's own message follows it.
  var REFUSED = {
    400: "检查记录未通过检查，没有保存：",
    401: "未登录或登录已失效，没有保存。请重新登录后再记录：",
    403: "当前令牌的角色不能记录界桩检查（需要界线检查员或管理员的令牌），没有保存：",
    404: "没有这个界桩（可能已被删除），没有保存：",
    413: "备注太长，没有保存：",
    429: "记录太频繁，没有保存，请稍后再试：",
    503: "服务正忙，没有保存，请稍后再试："
  };

  function choose(id) {
    if (form) { form.elements.marker.value = id; form.elements.marker.focus(); }
  }

  if (box && rows.length) {
    var map = L.map(box), points = [];
    rows.forEach(function (row) {
      var at = [parseFloat(row.dataset.lat), parseFloat(row.dataset.lon)];
      points.push(at);
      L.circleMarker(at, {radius: 5, weight: 1, color: "#333", fillOpacity: 0.9,
                          fillColor: row.dataset.colour})
        .bindTooltip(row.querySelector("a").textContent).on("click", function () { choose(row.dataset.id); })
        .addTo(map);
    });
    map.fitBounds(points, {padding: [10, 10]});
  }
  if (!form) { return; }
  rows.forEach(function (row) {
    row.addEventListener("click", function (event) { if (event.target.tagName !== "A") { choose(row.dataset.id); } });
  });

  function say(text, ok) {
    result.textContent = text;
    result.className = ok ? "ok" : "error";
  }

  function refresh(id) {
    // the marker as the API has it now (an older inspection entered late does not change its findings)
    return fetch(form.dataset.root + "/collections/boundary_markers/items/" + id, {headers: {Accept: "application/geo+json"}})
      .then(function (answer) { return answer.json(); })
      .then(function (feature) {
        var row = document.querySelector('tr.marker[data-id="' + id + '"]');
        if (!row) { return; }
        var condition = form.elements.condition.querySelector('option[value="' + feature.properties.condition + '"]');
        row.querySelector(".condition").textContent = condition ? condition.textContent : feature.properties.condition;
        row.querySelector(".inspected").textContent = feature.properties.last_inspected || "—";
        row.dataset.condition = feature.properties.condition;
        if (feature.properties.last_inspected) {
          var years = (Date.now() - Date.parse(feature.properties.last_inspected)) / (365.25 * 86400000);
          row.querySelector(".years").textContent = Math.max(0, years).toFixed(1);
        }
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var id = form.elements.marker.value;
    if (!id) { say("请先选择界桩。", false); return; }
    var number = form.elements.marker.options[form.elements.marker.selectedIndex].text;
    var body = {inspected_on: form.elements.inspected_on.value || null, condition: form.elements.condition.value,
                notes: form.elements.notes.value.trim() || null};
    say("正在保存……", true);
    fetch(form.dataset.root + "/collections/boundary_markers/items/" + id + "/inspections",
          {method: "POST", headers: {"Content-Type": "application/json", Accept: "application/json"},
           body: JSON.stringify(body)})
      .then(function (answer) {
        return answer.json().then(function (reply) {
          if (answer.ok) {
            say("已记录：界桩 " + number + "，" + reply.inspected_on + "，" +
                form.elements.condition.options[form.elements.condition.selectedIndex].text + "。", true);
            form.elements.notes.value = "";
            return refresh(id);
          }
          say((REFUSED[answer.status] || "没有保存：") + (reply.description || answer.statusText), false);
        });
      })
      .catch(function () { say("无法连接服务，没有保存；请检查网络后再试。", false); });
  });
})();
