"""Settlements (the demand side) and the facilities that serve them."""

from gis_service.layers.base import (
    Field,
    Layer,
    data_source_field,
    division_field,
    location_precision_field,
    name_field,
    status_field,
)

settlements = Layer(
    id="settlements",
    table="settlements",
    title="Residential settlements",
    title_zh="居民点",
    description="Settlements and residential compounds with their households: the demand side of coverage.",
    geometry_type="Point",
    fields=(
        name_field(),
        division_field("village_code", required=True, description="12-digit code of the village or community."),
        Field("households", "integer", "Households (户).", title_zh="户数", required=True, minimum=0),
        Field("population", "integer", "Residents.", title_zh="人口", minimum=0),
        data_source_field(),
    ),
)

cemeteries = Layer(
    id="cemeteries",
    table="cemeteries",
    title="Cemeteries and funeral facilities",
    title_zh="殡葬设施",
    description="Public-welfare cemeteries, central burial points, the funeral home and funeral service stations.",
    geometry_type="Point",
    fields=(
        name_field(),
        Field("kind", "text", "public_welfare_cemetery (公益性公墓), burial_point (集中安葬点), funeral_home "
              "(殡仪馆), funeral_service_station (殡葬服务站) or commercial_cemetery.", title_zh="类型",
              required=True, enum=("public_welfare_cemetery", "burial_point", "funeral_home",
                                   "funeral_service_station", "commercial_cemetery")),
        Field("urban_rural", "text", "urban or rural.", title_zh="城乡", required=True, enum=("urban", "rural")),
        Field("public_welfare", "boolean", "Public-welfare (公益性).", title_zh="公益性", default=True),
        Field("capacity", "integer", "Graves it can hold.", title_zh="容量(穴)", minimum=0),
        Field("graves_used", "integer", "Graves used.", title_zh="已用(穴)", minimum=0),
        status_field(),
        division_field(),
        data_source_field(),
        location_precision_field(),
    ),
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
        name_field(),
        Field("kind", "text", "welfare_institution (社会福利机构), township_home (敬老院), community_station "
              "(社区养老服务站) or rural_happiness_home (农村幸福院).", title_zh="类型", required=True,
              enum=("welfare_institution", "township_home", "community_station", "rural_happiness_home")),
        Field("beds", "integer", "Beds.", title_zh="床位", minimum=0, default=0),
        Field("nursing_beds", "integer", "Nursing-type beds (护理型床位), at most beds.", title_zh="护理型床位",
              minimum=0, default=0),
        Field("operator", "text", "government, private or public_private (公建民营).", title_zh="运营方式",
              required=True, enum=("government", "private", "public_private")),
        Field("comprehensive", "boolean", "Has comprehensive functions (综合功能).", title_zh="综合功能",
              default=False),
        Field("rating", "integer", "Quality rating, 0 to 5 stars.", title_zh="等级", minimum=0, maximum=5),
        status_field(),
        division_field(),
        data_source_field(),
        location_precision_field(),
    ),
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
        name_field(),
        Field("floor_area_m2", "number", "Floor area in m².", title_zh="建筑面积(平方米)", required=True,
              minimum=0.01),
        Field("volunteer_point", "boolean", "A volunteer service point is inside (志愿服务站点).",
              title_zh="志愿服务站点", default=False),
        Field("minor_protection_station", "boolean", "A minor-protection work station is inside (未成年人保护工作站).",
              title_zh="未成年人保护工作站", default=False),
        division_field(required=True, description="12-digit code of the village or community it serves."),
        status_field(),
        data_source_field(),
        location_precision_field(),
    ),
)
