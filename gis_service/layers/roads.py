"""Named roads (道路): the segments of the road network with their standard names."""

from gis_service.layers.base import Field, Layer, data_source_field, name_field

ROAD_CLASSES = ("urban_arterial", "urban_secondary", "urban_branch", "county", "township", "village", "path")

roads = Layer(
    id="roads",
    table="roads",
    title="Named roads",
    title_zh="道路",
    description="Road segments between network nodes; segments of one road share its standard name. "
    "Segments meet only at shared end points, so the layer is a routable network.",
    geometry_type="LineString",
    fields=(
        name_field("Standard road name."),
        Field("pinyin", "text", "Hanyu Pinyin spelling with tone marks.", title_zh="汉语拼音", max_length=200),
        Field("road_class", "text", "Road class: " + ", ".join(ROAD_CLASSES) + ".", title_zh="道路等级",
              required=True, enum=ROAD_CLASSES),
        Field("is_bridge", "boolean", "The segment is a bridge.", title_zh="桥梁", default=False),
        Field("width_m", "number", "Carriageway width in metres.", title_zh="宽度(米)", minimum=0.5, maximum=99),
        Field("length_m", "number", "Length in metres, measured in the county's Gauss-Krüger zone.",
              title_zh="长度(米)", computed=True),
        Field("named_on", "date", "Date the name was approved.", title_zh="命名日期"),
        Field("approval_no", "text", "Number of the naming approval document.", title_zh="批准文号", max_length=100),
        Field("former_names", "text_list", "Earlier names of the road.", title_zh="曾用名", default=()),
        data_source_field(),
    ),
    temporal=("named_on",),
)
