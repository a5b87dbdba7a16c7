{#- folium macro: a script run once the map exists (its code made from another template). -#}
{% macro script(this, kwargs) %}{{ this.code }}{% endmacro %}
