// 界线界桩: choosing a line, a township or a neighbour links its package in every format /exports/boundaries offers.
(function () {
  var form = document.getElementById("package"), box = document.getElementById("formats");
  var formats = box.dataset.formats.split(",");
  form.addEventListener("change", function (event) {
    var chosen = event.target;
    Array.prototype.forEach.call(form.elements, function (other) { if (other !== chosen) { other.value = ""; } });
    box.textContent = "";
    if (!chosen.value) { return; }
    box.appendChild(document.createTextNode(chosen.options[chosen.selectedIndex].text + "："));
    formats.forEach(function (format) {
      var link = document.createElement("a");
      link.href = form.dataset.root + "/exports/boundaries?" +
        new URLSearchParams([[chosen.name, chosen.value], ["format", format]]);
      link.textContent = format.toUpperCase();
      link.className = "download";
      link.setAttribute("download", "");
      box.appendChild(link);
    });
  });
})();
