"""Settlements (the demand side) and the facilities that serve them."""

from gis_service.layers.base import (
    URBAN_RURAL_VALUES,
    Field,
    Layer,
    MapStyle,
    NetworkRole,
    Reach,
    RowRule,
    Value,
    data_source_field,
    division_field,
    facility_network_role,
    location_precision_field,
    name_field,
    status_field,
)

#: The planners keep the facilities and the settlements they serve.
PLANNERS = {"planner": None}
#: Headers the bureau's lists give a facility's name and its kind.
FACILITY_NAMES = ("机构名称", "设施名称", "单位名称")
FACILITY_KINDS = ("类别", "设施类型", "机构类型", "设施类别")
URBAN_RURAL = ("城乡属性", "城乡分类", "城乡类型")

settlements = Layer(
    id="settlements",
    table="settlements",
    title="Residential settlements",
    title_zh="居民点",
    description="Settlements and residential compounds with their households: the demand side of coverage.",
    geometry_type="Point",
    fields=(
        name_field(synonyms=("居民点名称", "小区名称", "自然村名称")),
        division_field("village_code", required=True, description="12-digit code of the village or community.",
                       synonyms=("村(社区)代码", "村代码", "社区代码")),
        Field("households", "integer", "Households (户).", title_zh="户数", required=True, minimum=0,
              synonyms=("总户数", "户")),
        Field("population", "integer", "Residents.", title_zh="人口", minimum=0,
              synonyms=("人口数", "总人口", "常住人口", "户籍人口", "人数")),
        data_source_field(),
    ),
    writers=PLANNERS,
    network=NetworkRole("demand", ("name", "households", "village_code"), village="village_code"),
    map_style=MapStyle(size=6, color="#2e7d32"),
)

#: Tag of the burial facilities the plan's coverage indicator counts (公益性安葬(放)设施).
PUBLIC_WELFARE_BURIAL = "public_welfare_burial"
#: Tag of the elder-care institutions (养老机构) whose beds the plan's bed indicators count.
INSTITUTION = "institution"

CEMETERY_KINDS = (
    Value("public_welfare_cemetery", "公益性公墓", ("公益性墓地",), frozenset({PUBLIC_WELFARE_BURIAL}),
          color="#455a64", shape="cross"),
    Value("burial_point", "集中安葬点", ("安葬点", "骨灰安放点"), frozenset({PUBLIC_WELFARE_BURIAL}),
          color="#78909c", shape="cross"),
    Value("funeral_home", "殡仪馆", color="#212121", shape="square"),
    Value("funeral_service_station", "殡葬服务站", ("殡仪服务站",), color="#5d4037", shape="diamond"),
    Value("commercial_cemetery", "经营性公墓", ("经营性墓地",), color="#9e9e9e", shape="cross"),
)

cemeteries = Layer(
    id="cemeteries",
    table="cemeteries",
    title="Cemeteries and funeral facilities",
    title_zh="殡葬设施",
    description="Public-welfare cemeteries, central burial points, the funeral home and funeral service stations.",
    geometry_type="Point",
    fields=(
        name_field(synonyms=FACILITY_NAMES),
        Field("kind", "text", "public_welfare_cemetery (公益性公墓), burial_point (集中安葬点), funeral_home "
              "(殡仪馆), funeral_service_station (殡葬服务站) or commercial_cemetery.", title_zh="类型",
              required=True, values=CEMETERY_KINDS, synonyms=FACILITY_KINDS),
        Field("urban_rural", "text", "urban or rural.", title_zh="城乡", required=True, values=URBAN_RURAL_VALUES,
              synonyms=URBAN_RURAL),
        Field("public_welfare", "boolean", "Public-welfare (公益性).", title_zh="公益性", default=True,
              synonyms=("是否公益性",)),
        Field("capacity", "integer", "Graves it can hold.", title_zh="容量(穴)", minimum=0,
              synonyms=("墓穴容量", "设计容量", "总穴位")),
        Field("graves_used", "integer", "Graves used.", title_zh="已用(穴)", minimum=0,
              synonyms=("已用墓穴", "已使用", "已用穴位")),
        status_field(),
        division_field(),
        data_source_field(),
        location_precision_field(),
    ),
    rules=(
        RowRule(("capacity", "graves_used"), "graves_used", lambda row: row["graves_used"] <= row["capacity"],
                "{graves_used} graves used exceed the capacity {capacity}"),
    ),
    writers=PLANNERS,
    network=facility_network_role("kind"),
    map_style=MapStyle(symbol="icon", size=13, by="kind"),
)

ELDER_CARE_KINDS = (
    Value("welfare_institution", "社会福利机构", ("社会福利院", "福利院", "养老院"), frozenset({INSTITUTION}),
          color="#6a1b9a", shape="star"),
    Value("township_home", "敬老院", ("乡镇敬老院", "农村敬老院", "特困人员供养服务机构"), frozenset({INSTITUTION}),
          color="#1565c0", shape="square"),
    Value("community_station", "社区养老服务站", ("养老服务站", "社区养老服务中心", "日间照料中心"),
          color="#00838f", shape="diamond"),
    Value("rural_happiness_home", "农村幸福院", ("幸福院", "农村互助幸福院"), color="#2e7d32", shape="circle"),
)
OPERATORS = (
    Value("government", "公办", ("政府", "公办公营", "政府运营")),
    Value("private", "民办", ("民营", "社会力量")),
    Value("public_private", "公建民营", ("公办民营",)),
)

elder_care = Layer(
    id="elder_care",
    table="elder_care",
    title="Elder-care facilities",
    title_zh="养老服务设施",
    description="Social welfare institutions, township homes (敬老院), community elder-care stations and rural "
    "happiness homes, with beds and nursing-type beds.",
    geometry_type="Point",
    fields=(
        name_field(synonyms=FACILITY_NAMES),
        Field("kind", "text", "welfare_institution (社会福利机构), township_home (敬老院), community_station "
              "(社区养老服务站) or rural_happiness_home (农村幸福院).", title_zh="类型", required=True,
              values=ELDER_CARE_KINDS, synonyms=FACILITY_KINDS),
        Field("beds", "integer", "Beds.", title_zh="床位", minimum=0, default=0,
              synonyms=("床位数", "床位总数", "总床位", "总床位数")),
        Field("nursing_beds", "integer", "Nursing-type beds (护理型床位), at most beds.", title_zh="护理型床位",
              minimum=0, default=0, synonyms=("护理型床位数", "护理床位", "护理床位数")),
        Field("operator", "text", "government, private or public_private (公建民营).", title_zh="运营方式",
              required=True, values=OPERATORS, synonyms=("运营模式", "经营方式", "举办性质", "性质")),
        Field("comprehensive", "boolean", "Has comprehensive functions (综合功能).", title_zh="综合功能",
              default=False, synonyms=("是否具备综合功能", "具备综合功能")),
        Field("rating", "integer", "Quality rating, 0 to 5 stars.", title_zh="等级", minimum=0, maximum=5,
              storage="smallint", synonyms=("星级", "评定等级", "等级评定")),
        status_field(),
        division_field(),
        data_source_field(),
        location_precision_field(),
    ),
    rules=(
        RowRule(("beds", "nursing_beds"), "nursing_beds", lambda row: row["nursing_beds"] <= row["beds"],
                "{nursing_beds} nursing beds exceed {beds} beds"),
    ),
    writers=PLANNERS,
    # The plan: community stations make the urban communities' 15-minute circle (城市社区生活圈), rural happiness
    # homes serve rural villages, township homes (乡镇敬老院) their township; welfare institutions (and all kinds at
    # once) serve everyone. The plan's only figure of reach is the 15-minute circle; rural happiness homes, at the
    # village level of its three levels (县级、乡镇（街道）、社区（村）), get no figure of their own (the plan sets
    # community service radii "根据人口结构、出行规律"), so they keep the 15-minute walk their old people make to a day
    # centre; a township home is a township-level residence reached by car, 30 minutes as the burial indicator's
    # township-level reach.
    network=facility_network_role(
        "kind", serves=(("community_station", "urban_communities"), ("rural_happiness_home", "rural_villages"),
                        ("township_home", "own_township")),
        reaches=(("township_home", Reach("drive", 30, "a township-level home reached by car: 30 minutes' drive "
                                         "within its township (the plan names no figure)")),
                 ("rural_happiness_home", Reach("walk", 15, "village level (社区（村）, ch. 5 §2): the plan names no "
                                                "figure, so the 15-minute circle's walk")))),
    map_style=MapStyle(symbol="icon", size=14, by="kind"),
)

community_centres = Layer(
    id="community_centres",
    table="community_centres",
    title="Community service centres",
    title_zh="城乡社区综合服务设施",
    description="Community service centres with their floor area, and whether a volunteer service point and a "
    "minor-protection work station are inside.",
    geometry_type="Point",
    fields=(
        name_field(synonyms=FACILITY_NAMES),
        Field("floor_area_m2", "number", "Floor area in m².", title_zh="建筑面积(平方米)", required=True,
              minimum=0.01, synonyms=("面积", "用房面积")),
        Field("volunteer_point", "boolean", "A volunteer service point is inside (志愿服务站点).",
              title_zh="志愿服务站点", default=False, synonyms=("是否设志愿服务站点", "有无志愿服务站点")),
        Field("minor_protection_station", "boolean", "A minor-protection work station is inside (未成年人保护工作站).",
              title_zh="未成年人保护工作站", default=False,
              synonyms=("是否设未成年人保护工作站", "有无未成年人保护工作站")),
        division_field(required=True, description="12-digit code of the village or community it serves."),
        status_field(),
        data_source_field(),
        location_precision_field(),
    ),
    writers=PLANNERS,
    network=facility_network_role(),
    map_style=MapStyle(symbol="icon", shape="triangle", size=13, color="#ef6c00"),
)
