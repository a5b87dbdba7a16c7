"""Boundary lines (行政区域界线) and boundary markers (界桩)."""

from gis_service.layers.base import Field, Layer, data_source_field

#: A boundary marker's condition: its code, then the Chinese words inspectors write for it, the label first
#: (完好/损坏/缺失/移位, as 行政区域界线管理条例's inspections record them). The one list of these words: field records
#: are read with it (io/inspections.py) and exports label with it. Issue 11 puts each enumerated value's label and
#: aliases on its Field; this table is that data for ``condition``, to be absorbed as it is.
CONDITION_WORDS: dict[str, tuple[str, ...]] = {
    "intact": ("完好", "完整", "良好", "正常", "基本完好"),
    "damaged": ("损坏", "破损", "损毁", "毁坏", "残缺", "破坏", "受损"),
    "missing": ("缺失", "丢失", "遗失", "灭失", "缺少", "不见"),
    "displaced": ("移位", "位移", "偏移", "移动", "移动位置"),
}
CONDITIONS = tuple(CONDITION_WORDS)
#: The Chinese label of each condition.
CONDITION_ZH = {code: words[0] for code, words in CONDITION_WORDS.items()}

boundary_lines = Layer(
    id="boundary_lines",
    table="boundary_lines",
    title="Boundary lines",
    title_zh="行政区域界线",
    description="The segment of boundary between two neighbouring units (county with county, township with "
    "township). One side may be outside the county: its code and name are kept.",
    geometry_type="MultiLineString",
    fields=(
        Field("code", "text", "Line code: the two units' codes joined by '-', e.g. 500241-500242.",
              title_zh="界线编号", required=True, pattern=r"^[0-9]{6,12}-[0-9]{6,12}$", unique=True),
        Field("name", "text", "Line name.", title_zh="界线名称", required=True, max_length=100),
        Field("level", "text", "county or township.", title_zh="界线级别", required=True,
              enum=("county", "township")),
        Field("left_code", "text", "Code of the unit on one side.", title_zh="一侧区划代码", required=True,
              pattern=r"^[0-9]{6,12}$"),
        Field("left_name", "text", "Name of the unit on one side.", title_zh="一侧区划名称", required=True),
        Field("right_code", "text", "Code of the unit on the other side (may be a neighbouring county).",
              title_zh="另一侧区划代码", required=True, pattern=r"^[0-9]{6,12}$"),
        Field("right_name", "text", "Name of the unit on the other side.", title_zh="另一侧区划名称",
              required=True),
        Field("length_m", "number", "Length in metres, measured in the county's Gauss-Krüger zone.",
              title_zh="长度(米)", computed=True),
        Field("status", "text", "agreed, disputed or under_survey.", title_zh="状态",
              enum=("agreed", "disputed", "under_survey"), default="agreed"),
        Field("last_inspected", "date", "Date of the last joint inspection.", title_zh="最近检查日期"),
        data_source_field(),
    ),
    temporal=("last_inspected",),
)

boundary_markers = Layer(
    id="boundary_markers",
    table="boundary_markers",
    title="Boundary markers",
    title_zh="界桩",
    description="Numbered markers fixing the boundary lines on the ground: <line code>-<3-digit sequence><type>, "
    "type Q single, A/B a pair with the same number, C/D/E a triple.",
    geometry_type="Point",
    fields=(
        Field("number", "text", "Marker number: <line code>-<3-digit sequence><type letter>.", title_zh="界桩编号",
              required=True, unique=True, max_length=40),
        Field("marker_type", "text", "Q single; A/B pair (同号双立); C/D/E triple.", title_zh="类型",
              required=True, enum=("Q", "A", "B", "C", "D", "E")),
        Field("line_code", "text", "Code of the boundary line the marker belongs to.", title_zh="所属界线",
              required=True),
        Field("material", "text", "granite, concrete, steel or plastic.", title_zh="材质",
              enum=("granite", "concrete", "steel", "plastic")),
        Field("set_on", "date", "Date the marker was set.", title_zh="埋设日期"),
        Field("condition", "text", "intact, damaged, missing or displaced.", title_zh="状况", enum=CONDITIONS,
              default="intact"),
        Field("last_inspected", "date", "Date of the last inspection.", title_zh="最近检查日期"),
        data_source_field(),
    ),
    temporal=("set_on", "last_inspected"),
    label_field="number",
)
