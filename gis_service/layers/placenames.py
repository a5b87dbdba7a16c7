"""Place names (地名): the gazetteer, in the field order of the national place-name database."""

from gis_service.layers.base import Field, Layer, data_source_field, division_field, name_field

CATEGORIES = ("administrative", "settlement", "road", "natural", "memorial", "facility")

place_names = Layer(
    id="place_names",
    table="place_names",
    title="Place names",
    title_zh="地名",
    description="Standard names with their Hanyu Pinyin, category, meaning, origin and history. Historical and "
    "cancelled names are kept, pointing at their successor.",
    geometry_type="Point",
    fields=(
        name_field("Standard name (标准名称)."),
        Field("pinyin", "text", "Roman-alphabet spelling: Hanyu Pinyin with tone marks (generated from the name "
              "when not given).", title_zh="罗马字母拼写", max_length=200),
        Field("pinyin_manual", "text", "Pinyin set by the place-name office for a name with a polyphonic character "
              "(多音字); searched besides the generated spelling.", title_zh="人工拼音", max_length=200,
              pattern=r"^[A-Za-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüÜĀÁǍÀĒÉĚÈĪÍǏÌŌÓǑÒŪÚǓÙǕǗǙǛêÊ' \-]{1,200}$"),
        Field("category", "text", "administrative (行政区划), settlement (居民点), road (道路街巷), natural "
              "(自然地理实体), memorial (纪念地/名胜) or facility (设施).", title_zh="类别", required=True,
              enum=CATEGORIES),
        division_field(),
        Field("meaning", "text", "Meaning of the name (含义).", title_zh="含义", max_length=2000, multiline=True),
        Field("origin", "text", "Origin of the name (来历).", title_zh="来历", max_length=2000, multiline=True),
        Field("history", "text", "History (历史沿革).", title_zh="历史沿革", max_length=4000, multiline=True),
        Field("status", "text", "current, historical or cancelled.", title_zh="状态",
              enum=("current", "historical", "cancelled"), default="current"),
        Field("successor_id", "integer", "For a historical name: the id of the name that replaced it.",
              title_zh="现名"),
        Field("heritage_listed", "boolean", "On the place-name cultural-heritage list (地名文化遗产保护名录).",
              title_zh="地名文化遗产", default=False),
        data_source_field(),
    ),
)
