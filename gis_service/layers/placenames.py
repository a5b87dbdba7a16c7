"""Place names (地名): the gazetteer, in the field order of the national place-name database."""

from gis_service.layers.base import (
    Field,
    KeepFormerRecord,
    Layer,
    MapStyle,
    Reference,
    RowRule,
    Spelling,
    Value,
    data_source_field,
    division_field,
    name_field,
)

CATEGORIES = (
    Value("administrative", "行政区划", ("行政区划名称",)),
    Value("settlement", "居民点", ("居民点名称", "村庄", "小区")),
    Value("road", "道路街巷", ("道路", "街巷")),
    Value("natural", "自然地理实体", ("自然地理实体名称", "山川")),
    Value("memorial", "纪念地/名胜", ("纪念地", "名胜", "旅游胜地")),
    Value("facility", "设施", ("专业设施", "公共设施")),
)
STATUSES = (
    Value("current", "现行", ("现名", "标准名称")),
    Value("historical", "历史", ("历史地名", "曾用名")),
    Value("cancelled", "注销", ("已注销", "废止")),
)

place_names = Layer(
    id="place_names",
    table="place_names",
    title="Place names",
    title_zh="地名",
    description="Standard names with their Hanyu Pinyin, category, meaning, origin and history. Historical and "
    "cancelled names are kept, pointing at their successor.",
    geometry_type="Point",
    fields=(
        name_field("Standard name (标准名称).", synonyms=("地名",)),
        Field("pinyin", "text", "Roman-alphabet spelling: Hanyu Pinyin with tone marks (generated from the name "
              "when not given).", title_zh="罗马字母拼写", max_length=200, synonyms=("汉语拼音", "拼音")),
        Field("pinyin_manual", "text", "Pinyin set by the place-name office for a name with a polyphonic character "
              "(多音字); searched besides the generated spelling.", title_zh="人工拼音", max_length=200,
              pattern=r"^[A-Za-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüÜĀÁǍÀĒÉĚÈĪÍǏÌŌÓǑÒŪÚǓÙǕǗǙǛêÊ' \-]{1,200}$"),
        Field("category", "text", "administrative (行政区划), settlement (居民点), road (道路街巷), natural "
              "(自然地理实体), memorial (纪念地/名胜) or facility (设施).", title_zh="类别", required=True,
              values=CATEGORIES, synonyms=("地名类别", "类型")),
        division_field(),
        Field("meaning", "text", "Meaning of the name (含义).", title_zh="含义", max_length=2000, multiline=True),
        Field("origin", "text", "Origin of the name (来历).", title_zh="来历", max_length=2000, multiline=True),
        Field("history", "text", "History (历史沿革).", title_zh="历史沿革", max_length=4000, multiline=True),
        Field("status", "text", "current, historical or cancelled.", title_zh="状态", values=STATUSES,
              default="current"),
        Field("successor_id", "integer", "For a historical name: the id of the name that replaced it.",
              title_zh="现名", storage="bigint", synonyms=("现名编号",),
              references=Reference("place_names", "id", "no place name has id {value}", on_delete="SET NULL")),
        Field("heritage_listed", "boolean", "On the place-name cultural-heritage list (地名文化遗产保护名录).",
              title_zh="地名文化遗产", default=False, synonyms=("地名文化遗产保护名录", "是否地名文化遗产")),
        data_source_field(),
    ),
    rules=(
        RowRule(("successor_id", "status"), "successor_id", lambda row: row["status"] != "current",
                "only historical or cancelled names have a successor"),
    ),
    writers={"placename": None},
    spelling=Spelling(manual="pinyin_manual"),
    on_rename=KeepFormerRecord(),
    map_style=MapStyle(color="#37474f"),
)
