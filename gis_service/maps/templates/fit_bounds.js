{#- folium macro: open on the bounds at once (folium's fit_bounds animates the zoom). -#}
{% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.fitBounds({{ this.bounds|tojson }},
                {padding: [40, 40], maxZoom: 14, animate: false});
            {% endmacro %}
