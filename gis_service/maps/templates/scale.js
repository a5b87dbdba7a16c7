{#- folium macro: a metric scale bar in 米 and 公里 (Leaflet's writes m and km; folium's shows miles too). -#}
{% macro script(this, kwargs) %}
            new (L.Control.Scale.extend({
                _updateMetric: function (maxMetres) {
                    var metres = this._getRoundNum(maxMetres);
                    this._updateScale(this._mScale, metres < 1000 ? metres + " 米" : metres / 1000 + " 公里",
                                      metres / maxMetres);
                }
            }))({imperial: false, maxWidth: 160}).addTo({{ this._parent.get_name() }});
            {% endmacro %}
