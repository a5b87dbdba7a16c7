"""Boundary lines (行政区域界线) and boundary markers (界桩)."""

import re

from gis_service.layers.base import Field, Layer, MapStyle, Reference, RowRule, Value, data_source_field

#: What an inspector finds at a marker; markers and their inspection records share it. The aliases are the words
#: inspectors write on field records (行政区域界线管理条例's inspections record 完好/损坏/缺失/移位).
CONDITIONS = (
    Value("intact", "完好", ("完整", "良好", "正常", "基本完好"), color="#2e7d32"),
    Value("damaged", "损坏", ("破损", "损毁", "毁坏", "残缺", "破坏", "受损"), color="#f9a825"),
    Value("missing", "缺失", ("丢失", "遗失", "灭失", "缺少", "不见"), color="#c62828"),
    Value("displaced", "移位", ("位移", "偏移", "移动", "移动位置"), color="#6a1b9a"),
)
#: Each condition's code -> its label, then its aliases (how field records are read: io/inspections.py).
CONDITION_WORDS: dict[str, tuple[str, ...]] = {v.code: (v.label_zh, *v.aliases) for v in CONDITIONS}
#: The Chinese label of each condition.
CONDITION_ZH = {v.code: v.label_zh for v in CONDITIONS}
LINE_LEVELS = (
    Value("county", "县级界线", ("县级", "县界", "县级行政区域界线")),
    Value("township", "乡级界线", ("乡级", "乡界", "乡镇界线", "乡级行政区域界线")),
)
LINE_STATUSES = (
    Value("agreed", "已勘定", ("已确认", "勘定")),
    Value("disputed", "有争议", ("争议",)),
    Value("under_survey", "勘界中", ("待勘定", "勘定中")),
)
#: The letter ending a marker's number: a single marker, a pair with the same number (同号双立) or a triple.
MARKER_TYPES = (
    Value("Q", "单立", ("单立界桩",)),
    Value("A", "同号双立"),
    Value("B", "同号双立"),
    Value("C", "同号三立"),
    Value("D", "同号三立"),
    Value("E", "同号三立"),
)
#: Headers of the date a line or marker was last inspected.
INSPECTED = ("检查日期", "最近检查", "巡查日期", "检查时间")
MATERIALS = (
    Value("granite", "花岗岩", ("石质", "石材")),
    Value("concrete", "混凝土", ("钢筋混凝土", "水泥")),
    Value("steel", "钢质", ("钢", "金属")),
    Value("plastic", "塑料", ("复合材料",)),
)

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
              title_zh="界线编号", required=True, pattern=r"^[0-9]{6,12}-[0-9]{6,12}$", unique=True,
              synonyms=("界线代码", "编号")),
        Field("name", "text", "Line name.", title_zh="界线名称", required=True, max_length=100,
              synonyms=("名称", "名字")),
        Field("level", "text", "county or township.", title_zh="界线级别", required=True, values=LINE_LEVELS,
              synonyms=("级别",)),
        Field("left_code", "text", "Code of the unit on one side.", title_zh="一侧区划代码", required=True,
              pattern=r"^[0-9]{6,12}$", storage="varchar(12)"),
        Field("left_name", "text", "Name of the unit on one side.", title_zh="一侧区划名称", required=True),
        Field("right_code", "text", "Code of the unit on the other side (may be a neighbouring county).",
              title_zh="另一侧区划代码", required=True, pattern=r"^[0-9]{6,12}$", storage="varchar(12)"),
        Field("right_name", "text", "Name of the unit on the other side.", title_zh="另一侧区划名称",
              required=True),
        Field("length_m", "number", "Length in metres, measured in the county's Gauss-Krüger zone.",
              title_zh="长度(米)", computed=True),
        Field("status", "text", "agreed, disputed or under_survey.", title_zh="状态", values=LINE_STATUSES,
              default="agreed"),
        Field("last_inspected", "date", "Date of the last joint inspection.", title_zh="最近检查日期",
              synonyms=INSPECTED),
        data_source_field(),
    ),
    temporal=("last_inspected",),
    writers={"inspector": None},
    map_style=MapStyle(color="#6d4c41"),
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
              required=True, unique=True, max_length=40, synonyms=("界桩号", "编号")),
        Field("marker_type", "text", "Q single; A/B pair (同号双立); C/D/E triple.", title_zh="类型",
              required=True, values=MARKER_TYPES, storage="char(1)", synonyms=("界桩类型",)),
        Field("line_code", "text", "Code of the boundary line the marker belongs to.", title_zh="所属界线",
              required=True, synonyms=("界线编号", "界线代码"), references=Reference("boundary_lines", "code",
                                                  "{value} is not the code of a boundary line", on_update="CASCADE")),
        Field("material", "text", "granite, concrete, steel or plastic.", title_zh="材质", values=MATERIALS,
              synonyms=("材料", "界桩材质")),
        Field("set_on", "date", "Date the marker was set.", title_zh="埋设日期", synonyms=("埋设时间",)),
        Field("condition", "text", "intact, damaged, missing or displaced.", title_zh="状况", values=CONDITIONS,
              default="intact", synonyms=("界桩状况", "完好情况", "状态")),
        Field("last_inspected", "date", "Date of the last inspection.", title_zh="最近检查日期",
              synonyms=INSPECTED),
        data_source_field(),
    ),
    temporal=("set_on", "last_inspected"),
    label_field="number",
    rules=(
        RowRule(("line_code", "number", "marker_type"), "number",
                lambda row: re.fullmatch(re.escape(row["line_code"]) + r"-[0-9]{3}" + row["marker_type"],
                                         row["number"]) is not None,
                "{number} does not follow <line code>-<3-digit sequence><type>, i.e. {line_code}-001{marker_type}"),
    ),
    writers={"inspector": None},
    map_style=MapStyle(by="condition"),
)
