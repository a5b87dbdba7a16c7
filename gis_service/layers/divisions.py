"""Administrative divisions (行政区划): county, townships (乡镇街道), villages and communities (村/社区)."""

import datetime as dt

from gis_service.layers.base import (
    DIVISION_CODE_PATTERN,
    DIVISION_REFERENCE,
    URBAN_RURAL_VALUES,
    Field,
    Layer,
    MapStyle,
    RowRule,
    Value,
    data_source_field,
)

LEVELS = (
    Value("county", "县级", ("县", "区县")),
    Value("township", "乡级", ("乡镇", "乡镇级", "乡镇（街道）", "乡镇(街道)")),
    Value("village", "村级", ("村（社区）", "村(社区)", "村级（社区）")),
)
#: The kinds are their own Chinese names (the codes are Chinese); the aliases are the full forms of the units.
KINDS = (
    Value("县", "县", ("自治县",)),
    Value("街道", "街道", ("街道办事处",)),
    Value("镇", "镇"),
    Value("乡", "乡", ("民族乡",)),
    Value("社区", "社区", ("居民委员会", "社区居民委员会", "居委会")),
    Value("村", "村", ("村民委员会", "村委会", "行政村")),
)

admin_divisions = Layer(
    id="admin_divisions",
    table="admin_divisions",
    title="Administrative divisions",
    title_zh="行政区划",
    description="County, township-level (乡/镇/街道) and village-level (村/社区) units with their 12-digit "
    "statistical codes, population and households. Earlier versions of a unit are kept with valid_to set.",
    geometry_type="MultiPolygon",
    fields=(
        Field("code", "text", "12-digit statistical division code (统计用区划代码).", title_zh="区划代码",
              required=True, pattern=DIVISION_CODE_PATTERN, unique=True, storage="varchar(12)",
              synonyms=("行政区划代码", "统计用区划代码", "代码")),
        Field("name", "text", "Standard name.", title_zh="名称", required=True, max_length=100,
              synonyms=("名字", "区划名称", "单位名称")),
        Field("short_name", "text", "Name without the generic suffix (镇/乡/街道, 村/社区).", title_zh="简称",
              max_length=100),
        Field("level", "text", "county, township or village.", title_zh="层级", required=True, values=LEVELS,
              synonyms=("级别", "区划级别")),
        Field("kind", "text", "县, 街道, 镇, 乡, 社区 or 村.", title_zh="类型", required=True, values=KINDS,
              synonyms=("区划类型",)),
        Field("parent_code", "text", "Code of the unit it belongs to (none for the county).", title_zh="上级代码",
              synonyms=("上级区划代码",),
              pattern=DIVISION_CODE_PATTERN, storage="varchar(12)", references=DIVISION_REFERENCE),
        Field("households", "integer", "Households (户).", title_zh="户数", minimum=0, synonyms=("总户数", "户")),
        Field("population", "integer", "Resident population.", title_zh="人口", minimum=0,
              synonyms=("人口数", "总人口", "常住人口", "户籍人口")),
        Field("urban_rural", "text", "urban or rural.", title_zh="城乡分类", values=URBAN_RURAL_VALUES,
              synonyms=("城乡", "城乡属性", "城乡类型")),
        Field("valid_from", "date", "First day this version of the unit was in force (default 1949-10-01).",
              title_zh="生效日期", default=dt.date(1949, 10, 1), synonyms=("设立日期", "起始日期")),
        Field("valid_to", "date", "Day this version was replaced; empty while current.", title_zh="失效日期",
              synonyms=("撤销日期", "终止日期")),
        data_source_field(),
    ),
    temporal=("valid_from", "valid_to"),
    validity=("valid_from", "valid_to"),
    rules=(
        RowRule(("valid_from", "valid_to"), "valid_to", lambda row: row["valid_to"] > row["valid_from"],
                "{valid_to} is not after valid_from {valid_from}"),
    ),
    # planners keep the figures up to date; boundaries and names of divisions change by decision (admin)
    writers={"planner": frozenset({"households", "population"})},
    map_style=MapStyle(color="#5d6d7e"),
)
