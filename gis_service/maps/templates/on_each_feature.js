{#- Tooltips and popups: the labels are sent once per layer, each feature's values as it opens. -#}
function(feature, layer) {
    var T = {{ tooltip }}, P = {{ popup }}, p = feature.properties;
    function table(labels, cells) {
        if (labels.length === 1) { return cells[0]; }
        var rows = labels.map(function(label, i) {
            return "<tr><th>" + label + "</th><td>" + cells[i] + "</td></tr>"; });
        return '<table class="gis-props">' + rows.join("") + "</table>";
    }
    if (p.t) { layer.bindTooltip(function() { return table(T, p.t); }, {sticky: {{ sticky }}, direction: "top"}); }
    if (p.p) { layer.bindPopup(function() { return table(P, p.p); }, {maxWidth: 360}); }
}
