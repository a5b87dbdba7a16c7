"""Named roads (道路): the segments of the road network with their standard names."""

from gis_service.layers.base import (
    AppendFormerName,
    Field,
    Layer,
    MapStyle,
    Spelling,
    Value,
    data_source_field,
    name_field,
)

#: Road classes, each with its map colour; the drive speed of each is a setting (gis_service.analysis.travel).
ROAD_CLASSES = (
    Value("urban_arterial", "城市主干路", ("主干路",), color="#d84315"),
    Value("urban_secondary", "城市次干路", ("次干路",), color="#ef6c00"),
    Value("urban_branch", "城市支路", ("支路",), color="#ffa726"),
    Value("county", "县道", ("县级公路",), color="#c62828"),
    Value("township", "乡道", ("乡级公路",), color="#8d6e63"),
    Value("village", "村道", ("村级公路",), color="#a1887f"),
    Value("path", "小路", ("便道", "步道"), color="#cfc6bf"),
)

roads = Layer(
    id="roads",
    table="roads",
    title="Named roads",
    title_zh="道路",
    description="Road segments between network nodes; segments of one road share its standard name. "
    "Segments meet only at shared end points, so the layer is a routable network.",
    geometry_type="LineString",
    fields=(
        name_field("Standard road name.", synonyms=("道路名称", "路名")),
        Field("pinyin", "text", "Hanyu Pinyin spelling with tone marks.", title_zh="汉语拼音", max_length=200,
              synonyms=("拼音", "罗马字母拼写")),
        Field("road_class", "text", "Road class: " + ", ".join(v.code for v in ROAD_CLASSES) + ".",
              title_zh="道路等级", required=True, values=ROAD_CLASSES, synonyms=("等级", "道路类别", "公路等级")),
        Field("is_bridge", "boolean", "The segment is a bridge.", title_zh="桥梁", default=False,
              synonyms=("是否桥梁",)),
        Field("width_m", "number", "Carriageway width in metres.", title_zh="宽度(米)", minimum=0.5, maximum=99,
              storage="real", synonyms=("路宽", "路面宽度")),
        Field("length_m", "number", "Length in metres, measured in the county's Gauss-Krüger zone.",
              title_zh="长度(米)", computed=True),
        Field("named_on", "date", "Date the name was approved.", title_zh="命名日期", synonyms=("命名时间",)),
        Field("approval_no", "text", "Number of the naming approval document.", title_zh="批准文号", max_length=100,
              synonyms=("文号", "命名文号")),
        Field("former_names", "text_list", "Earlier names of the road.", title_zh="曾用名", default=(),
              synonyms=("原名",)),
        data_source_field(),
    ),
    temporal=("named_on",),
    writers={"placename": None},
    spelling=Spelling(),
    on_rename=AppendFormerName("former_names"),
    # a map holds a few thousand named roads, not every segment; thousands of short named paths as one
    map_style=MapStyle(by="road_class", merged_by=("name", "road_class"), unnamed_when=("road_class", "path")),
)
