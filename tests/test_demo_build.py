"""The demo-county builder: the invariants a user of the demo data would check.

Pure Python (no database): the frames are built once per module at scale 1 and checked against the
schema of migration 0001 and against the real Xiushan figures in layers/xiushan.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from datetime import date
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from gis_service.demo import sources
from gis_service.demo.build import DEFAULT_SEED, FRAME_NAMES, build_demo, meijiang_river
from gis_service.pinyin import initials, romanize, toneless

REPO = Path(__file__).resolve().parents[1]
MIGRATION = REPO / "gis_service" / "db" / "migrations" / "versions" / "0001_layers.py"
DATA = REPO / "layers" / "xiushan"
METRIC = 4545
# Another seed can be checked with GIS_DEMO_SEED=<n> (the invariants must hold for every seed).
SEED = int(os.environ.get("GIS_DEMO_SEED", DEFAULT_SEED))


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return build_demo(scale=1, seed=SEED)


@pytest.fixture(scope="module")
def county() -> shapely.Polygon:
    polygon = sources.county_polygon()
    shapely.prepare(polygon)
    return polygon


@pytest.fixture(scope="module")
def current(frames) -> gpd.GeoDataFrame:
    admin = frames["admin_divisions"]
    return admin[admin["valid_to"].isna()]


@pytest.fixture(scope="module")
def roads_metric(frames) -> gpd.GeoDataFrame:
    return frames["roads"].to_crs(METRIC)


def _read_csv(name: str) -> list[dict[str, str]]:
    with open(DATA / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _schema_columns() -> dict[str, list[str]]:
    """Column names of every CREATE TABLE in migration 0001, in order."""
    text = MIGRATION.read_text(encoding="utf-8")
    out = {}
    for table, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\);", text, flags=re.S):
        columns = []
        for line in body.splitlines():
            word = line.strip().split(" ")[0]
            if word and word not in ("CHECK", "--", "PRIMARY", "UNIQUE") and re.fullmatch(r"[a-z_0-9]+", word):
                columns.append(word)
        out[table] = columns
    return out


# ------------------------------------------------------------------------------------------
# shape of the frames


def test_frames_have_the_schema_columns_ids_crs_and_geometry_types(frames):
    schema = _schema_columns()
    assert tuple(frames) == FRAME_NAMES
    assert set(frames) == set(schema)
    expected_types = {
        "admin_divisions": "MultiPolygon",
        "boundary_lines": "MultiLineString",
        "roads": "LineString",
    }
    for name, frame in frames.items():
        columns = [c for c in schema[name] if c != "recorded_at"]
        assert list(frame.columns) == columns, name
        assert frame["id"].tolist() == list(range(1, len(frame) + 1)), name
        if name == "marker_inspections":
            assert not isinstance(frame, gpd.GeoDataFrame)
            continue
        assert isinstance(frame, gpd.GeoDataFrame), name
        assert frame.geometry.name == "geom"
        assert frame.crs.to_epsg() == 4490, name
        geoms = frame.geometry.values
        assert set(frame.geom_type) == {expected_types.get(name, "Point")}, name
        assert shapely.is_valid(geoms).all() and not shapely.is_empty(geoms).any(), name
        assert not shapely.has_z(geoms).any(), name


def test_every_geometry_lies_inside_the_county(frames, county):
    for name, frame in frames.items():
        if not isinstance(frame, gpd.GeoDataFrame):
            continue
        geoms = frame.geometry.values
        if name in ("admin_divisions", "boundary_lines", "roads"):  # may run along the outline
            assert shapely.covers(county, geoms).all(), f"{name}: a geometry leaves the county"
        else:
            assert shapely.contains(county, geoms).all(), f"{name}: a point is not strictly inside the county"


def test_nulls_are_none_and_values_are_plain_python(frames):
    admin = frames["admin_divisions"]
    county_row = admin[admin["level"] == "county"].iloc[0]
    assert county_row["parent_code"] is None and county_row["valid_to"] is None
    assert all(v is None or isinstance(v, str) for v in frames["place_names"]["meaning"])
    assert all(v is None or isinstance(v, int) for v in frames["place_names"]["successor_id"])
    assert all(v is None or isinstance(v, int) for v in frames["cemeteries"]["capacity"])
    assert all(v is None or isinstance(v, date) for v in frames["roads"]["named_on"])
    assert all(isinstance(v, date) for v in frames["marker_inspections"]["inspected_on"])


def test_values_keep_the_schema_checks(frames):
    admin = frames["admin_divisions"]
    assert admin["code"].str.fullmatch(r"[0-9]{12}").all()
    assert ((admin["level"] == "county") == (admin["kind"] == "县")).all()
    assert ((admin["level"] == "township") == admin["kind"].isin(["街道", "镇", "乡"])).all()
    assert ((admin["level"] == "village") == admin["kind"].isin(["社区", "村"])).all()
    assert ((admin["level"] == "county") == admin["parent_code"].isna()).all()
    assert (admin["households"] >= 0).all() and (admin["population"] >= 0).all()
    dated = admin[admin["valid_to"].notna()]
    assert all(row.valid_to > row.valid_from for row in dated.itertuples())
    assert not admin[admin["valid_to"].isna()]["code"].duplicated().any()
    assert not admin[["code", "valid_from"]].duplicated().any()
    assert all(isinstance(d, date) for d in admin["valid_from"])

    lines = frames["boundary_lines"]
    assert lines["code"].str.fullmatch(r"[0-9]{6,12}-[0-9]{6,12}").all() and lines["code"].is_unique
    assert (lines["left_code"] != lines["right_code"]).all() and (lines["length_m"] > 0).all()
    assert lines["status"].isin(["agreed", "disputed", "under_survey"]).all()

    markers = frames["boundary_markers"]
    assert markers["number"].is_unique and markers["line_code"].isin(lines["code"]).all()
    assert all(
        re.fullmatch(f"{re.escape(m.line_code)}-[0-9]{{3}}{m.marker_type}", m.number) for m in markers.itertuples()
    )
    assert markers["material"].isin(["granite", "concrete", "steel", "plastic"]).all()
    assert markers["condition"].isin(["intact", "damaged", "missing", "displaced"]).all()

    inspections = frames["marker_inspections"]
    assert inspections["marker_id"].isin(markers["id"]).all()
    assert inspections["inspector"].str.len().between(1, 100).all()
    assert inspections["condition"].isin(["intact", "damaged", "missing", "displaced"]).all()
    assert (inspections["notes"].str.len() <= 2000).all()

    roads = frames["roads"]
    assert roads["name"].str.len().between(1, 100).all()
    assert (
        roads["road_class"]
        .isin(["urban_arterial", "urban_secondary", "urban_branch", "county", "township", "village", "path"])
        .all()
    )
    assert roads["width_m"].between(0, 100, inclusive="neither").all() and (roads["length_m"] > 0).all()
    assert roads["is_bridge"].dtype == bool
    assert all(isinstance(f, list) and all(isinstance(x, str) for x in f) for f in roads["former_names"])

    names = frames["place_names"]
    assert names["category"].isin(["administrative", "settlement", "road", "natural", "memorial", "facility"]).all()
    assert names["status"].isin(["current", "historical", "cancelled"]).all()
    with_successor = names[names["successor_id"].notna()]
    assert (with_successor["status"] != "current").all()
    assert (with_successor["successor_id"] != with_successor["id"]).all()
    assert with_successor["successor_id"].isin(names["id"]).all()

    cemeteries = frames["cemeteries"]
    assert (
        cemeteries["kind"]
        .isin(
            [
                "public_welfare_cemetery",
                "burial_point",
                "funeral_home",
                "funeral_service_station",
                "commercial_cemetery",
            ]
        )
        .all()
    )
    assert cemeteries["urban_rural"].isin(["urban", "rural"]).all()
    assert cemeteries["status"].isin(["existing", "planned", "closed"]).all()
    both = cemeteries.dropna(subset=["capacity", "graves_used"])
    assert (both["graves_used"] <= both["capacity"]).all()

    elder = frames["elder_care"]
    assert (
        elder["kind"].isin(["welfare_institution", "township_home", "community_station", "rural_happiness_home"]).all()
    )
    assert elder["operator"].isin(["government", "private", "public_private"]).all()
    assert (elder["nursing_beds"] <= elder["beds"]).all() and (elder["nursing_beds"] >= 0).all()
    assert all(r is None or (isinstance(r, int) and 0 <= r <= 5) for r in elder["rating"])

    centres = frames["community_centres"]
    assert (centres["floor_area_m2"] > 0).all()
    assert centres["status"].isin(["existing", "planned", "closed"]).all()


def test_division_references_name_current_divisions(frames, current):
    codes = set(current["code"])
    admin = frames["admin_divisions"]
    assert set(admin[admin["valid_to"].isna()]["parent_code"].dropna()) <= codes
    assert set(frames["settlements"]["village_code"]) <= codes
    for name in ("place_names", "cemeteries", "elder_care", "community_centres"):
        assert set(frames[name]["division_code"].dropna()) <= codes, name


# ------------------------------------------------------------------------------------------
# administrative divisions


def test_current_divisions_are_the_real_county_townships_and_villages(current):
    township_rows = _read_csv("xiushan_townships.csv")
    village_rows = _read_csv("xiushan_villages.csv")
    county_row = current[current["level"] == "county"].iloc[0]
    assert (county_row["code"], county_row["name"], county_row["short_name"]) == (
        "500241000000",
        "秀山土家族苗族自治县",
        "秀山",
    )
    townships = current[current["level"] == "township"].set_index("code")
    villages = current[current["level"] == "village"].set_index("code")
    assert len(townships) == 27 and len(villages) == 268
    assert {r["code12"]: r["name"] for r in township_rows} == townships["name"].to_dict()
    assert {r["code12"]: r["short_name"] for r in village_rows} == villages["name"].to_dict()
    assert townships.loc["500241005000", "short_name"] == "清溪场"
    assert townships.loc["500241001000", "short_name"] == "中和"
    assert villages.loc["500241001001", "short_name"] == "东风"
    assert (townships["parent_code"] == "500241000000").all()
    assert all(villages.loc[r["code12"], "parent_code"] == r["code12"][:9] + "000" for r in village_rows)
    assert all(villages.loc[r["code12"], "kind"] == r["kind"] for r in village_rows)
    assert (townships["urban_rural"] == np.where(townships["kind"] == "街道", "urban", "rural")).all()
    assert (villages["urban_rural"] == np.where(villages["kind"] == "社区", "urban", "rural")).all()


def test_polygons_tile_the_county(current):
    metric = current.to_crs(METRIC)
    county_area = metric[metric["level"] == "county"].area.iloc[0]
    townships = metric[metric["level"] == "township"]
    villages = metric[metric["level"] == "village"]
    assert townships.area.sum() == pytest.approx(county_area, rel=1e-3)
    by_township = villages.groupby("parent_code").apply(lambda g: g.area.sum(), include_groups=False)
    for code, area in townships.set_index("code").area.items():
        assert by_township[code] == pytest.approx(area, rel=1e-3), code
    for level in (townships, villages):
        geoms = level.geometry.values
        left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        pairs = left < right
        overlap = shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]]))
        assert overlap.max() < 5.0, "two divisions of one level overlap by more than 5 m2"


def test_households_follow_the_2020_census(current):
    census = {r["code12"]: r["census2020_pop"] for r in _read_csv("xiushan_townships.csv")}
    townships = current[current["level"] == "township"].set_index("code")
    for code, row in townships.iterrows():
        if code in ("500241005000", "500241120000"):
            continue
        population = int(census[code])
        assert row["population"] == population, row["name"]
        assert row["households"] == round(population / 3.03), row["name"]
    pair = townships.loc[["500241005000", "500241120000"]]
    assert pair["households"].sum() == round((45392 + 6424) / 3.03)
    assert pair["population"].sum() == 45392 + 6424
    assert townships.loc["500241121000", "households"] == round(4580 / 3.03)  # 涌洞镇: 涌洞乡's census figure
    villages = current[current["level"] == "village"]
    sums = villages.groupby("parent_code")[["households", "population"]].sum()
    assert (sums["households"] == townships["households"].reindex(sums.index)).all()
    assert (sums["population"] == townships["population"].reindex(sums.index)).all()
    county = current[current["level"] == "county"].iloc[0]
    assert county["households"] == townships["households"].sum()
    assert county["population"] == 496194


def test_2021_changes_are_kept_as_history(frames):
    admin = frames["admin_divisions"].set_index("code")
    historical = frames["admin_divisions"][frames["admin_divisions"]["valid_to"].notna()]
    assert sorted(historical["name"]) == sorted(["清溪场镇", "孝溪乡", "涌洞乡"])
    change = historical["valid_to"].iloc[0]
    assert change.year == 2021 and (historical["valid_to"] == change).all()
    for successor in ("500241005000", "500241120000", "500241121000"):
        assert admin.loc[successor, "valid_from"] == change
    metric = frames["admin_divisions"].to_crs(METRIC).set_index("code")
    before = metric.loc[["500241102000", "500241201000"]].area.sum()
    after = metric.loc[["500241005000", "500241120000"]].area.sum()
    assert before == pytest.approx(after, rel=1e-6)
    assert metric.loc["500241211000", "geom"].area == pytest.approx(metric.loc["500241121000", "geom"].area, rel=1e-9)


# ------------------------------------------------------------------------------------------
# settlements and roads


def test_settlements_sit_in_their_village_and_add_up(frames, current):
    settlements = frames["settlements"]
    assert len(settlements) >= 2000
    villages = current[current["level"] == "village"].set_index("code")
    polygons = villages.geometry.reindex(settlements["village_code"]).values
    assert shapely.contains(polygons, settlements.geometry.values).all()
    sums = settlements.groupby("village_code")[["households", "population"]].sum()
    assert (sums["households"] == villages["households"].reindex(sums.index)).all()
    assert (sums["population"] == villages["population"].reindex(sums.index)).all()
    assert set(sums.index) == set(villages.index)  # every village has settlements


def test_road_network_is_one_connected_planar_graph(frames):
    roads = frames["roads"]
    assert len(roads) >= 15000
    coords = shapely.get_coordinates(roads.geometry.values).reshape(-1, 2, 2)
    graph = nx.Graph()
    graph.add_edges_from((tuple(a), tuple(b)) for a, b in coords)
    assert nx.number_connected_components(graph) == 1
    geoms = roads.geometry.values
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    ends_l, ends_r = coords[left], coords[right]
    shared = np.zeros(len(left), dtype=bool)
    for i in (0, 1):
        for j in (0, 1):
            shared |= (ends_l[:, i] == ends_r[:, j]).all(axis=1)
    assert shared.all(), "two road segments cross or touch away from a shared end point"
    meeting = shapely.intersection(geoms[left], geoms[right])
    assert (shapely.get_type_id(meeting) == 0).all(), "two road segments overlap"


def test_roads_cross_meijiang_only_on_bridges(frames, current):
    roads = frames["roads"]
    river = meijiang_river()
    assert river.geom_type == "LineString" and river.length > 0
    crossing = shapely.intersects(roads.geometry.values, river)
    assert roads.loc[crossing, "is_bridge"].all()
    bridges = roads[roads["is_bridge"]]
    assert crossing[roads["is_bridge"].to_numpy()].all(), "a bridge that does not cross the river"
    assert (bridges["length_m"] < 200).all()
    urban = current[(current["level"] == "township") & (current["kind"] == "街道")].union_all()
    assert shapely.within(bridges.geometry.values, urban).sum() >= 3, "several bridges in the county town"
    assert len(bridges) >= 10


def test_every_settlement_is_near_a_road(frames, roads_metric):
    settlements = frames["settlements"].to_crs(METRIC)
    tree = shapely.STRtree(roads_metric.geometry.values)
    _, distance = tree.query_nearest(settlements.geometry.values, return_distance=True, all_matches=False)
    assert distance.max() <= 500.0


def test_road_attributes(frames, roads_metric):
    roads = frames["roads"]
    sample = roads_metric.sample(500, random_state=1)
    assert np.allclose(sample.length, sample["length_m"], rtol=1e-9)
    for name, spelled in roads.drop_duplicates("name").head(300)[["name", "pinyin"]].itertuples(index=False):
        assert spelled == romanize(name)
    named = roads[roads["named_on"].notna()]
    in_plan = named[[2016 <= d.year <= 2020 for d in named["named_on"]]]
    assert in_plan["name"].nunique() == 56
    assert in_plan["approval_no"].str.fullmatch(r"秀山府地名〔20(1[6-9]|20)〕[0-9]+号").all()
    assert set(in_plan["road_class"]) <= {"urban_arterial", "urban_secondary", "urban_branch"}
    assert 3 <= roads[roads["former_names"].map(len) > 0]["name"].nunique() <= 10
    urban = roads[roads["road_class"].str.startswith("urban")]
    assert urban["width_m"].min() >= 8 and roads[roads["road_class"] == "path"]["width_m"].max() <= 4
    assert roads.groupby("name").size().max() > 5  # named roads are several segments


# ------------------------------------------------------------------------------------------
# boundaries


def test_boundary_lines_are_the_county_segments_and_township_borders(frames, current):
    lines = frames["boundary_lines"]
    county_lines = lines[lines["level"] == "county"]
    assert sorted(county_lines["right_code"]) == ["433124", "433125", "433130", "500242", "520628"]
    assert (county_lines["left_code"] == "500241").all()
    assert (county_lines["code"] == "500241-" + county_lines["right_code"]).all()
    assert "秀山—酉阳县级界线" in set(county_lines["name"])
    assert county_lines["length_m"].sum() == pytest.approx(316_800, rel=0.01)
    township = lines[lines["level"] == "township"]
    assert all(a < b and len(a) == len(b) == 9 for a, b in township["code"].str.split("-"))
    assert (township["status"] == "agreed").mean() > 0.8
    # the township lines are exactly the inner borders of the township polygons
    metric = current[current["level"] == "township"].to_crs(METRIC)
    county_perimeter = current[current["level"] == "county"].to_crs(METRIC).length.iloc[0]
    inner = (metric.length.sum() - county_perimeter) / 2
    assert township["length_m"].sum() == pytest.approx(inner, rel=1e-3)


def test_boundary_markers_numbering_and_inspections(frames):
    markers = frames["boundary_markers"]
    lines = frames["boundary_lines"]
    assert markers["line_code"].nunique() == len(lines)
    assert (markers["marker_type"] == "Q").mean() > 0.6
    seq = markers["number"].str.extract(r"-([0-9]{3})[A-Z]$")[0]
    key = markers["line_code"] + "/" + seq
    for letters in ("AB", "CDE"):
        group = markers[markers["marker_type"].isin(list(letters))]
        assert len(group) > 0
        assert all(sorted(g) == list(letters) for _, g in group.groupby(key[group.index])["marker_type"])
    triples = markers[markers["marker_type"] == "C"]
    assert len(triples) == 5 and triples["line_code"].str.startswith("500241-").all()
    metric = markers.to_crs(METRIC)
    pairs = metric[metric["marker_type"].isin(["A", "B"])].groupby(key)
    gaps = pairs.apply(lambda g: g.geometry.iloc[0].distance(g.geometry.iloc[1]), include_groups=False)
    assert gaps.between(10, 80).all()
    inspections = frames["marker_inspections"]
    per_marker = inspections.groupby("marker_id").size().reindex(markers["id"], fill_value=0)
    assert per_marker.between(0, 3).all()
    latest = inspections.sort_values("inspected_on").groupby("marker_id").last()
    indexed = markers.set_index("id")
    assert (latest["inspected_on"] == indexed.loc[latest.index, "last_inspected"]).all()
    assert (latest["condition"] == indexed.loc[latest.index, "condition"]).all()
    never = indexed.loc[per_marker[per_marker == 0].index]
    assert never["last_inspected"].isna().all()
    assert (markers["condition"] == "intact").mean() > 0.7
    assert set(markers["condition"]) == {"intact", "damaged", "missing", "displaced"}


# ------------------------------------------------------------------------------------------
# facilities


def _in_division(frame: gpd.GeoDataFrame, current: gpd.GeoDataFrame) -> bool:
    polygons = current.set_index("code").geometry.reindex(frame["division_code"]).values
    return bool(shapely.contains(polygons, frame.geometry.values).all())


def test_elder_care_counts_and_shares(frames, current):
    elder = frames["elder_care"]
    existing = elder[elder["status"] == "existing"]
    kinds = existing["kind"].value_counts()
    assert kinds["welfare_institution"] + kinds["township_home"] == 33
    assert kinds["community_station"] == 62 and kinds["rural_happiness_home"] == 98
    kind_of = current.set_index("code")["kind"]
    assert (kind_of[existing[existing["kind"] == "community_station"]["division_code"]] == "社区").all()
    assert (kind_of[existing[existing["kind"] == "rural_happiness_home"]["division_code"]] == "村").all()
    homes = existing[existing["kind"] == "township_home"]
    assert kind_of[homes["division_code"]].isin(["镇", "乡"]).all()
    assert 0.45 <= existing["nursing_beds"].sum() / existing["beds"].sum() <= 0.65
    government = existing[existing["operator"] == "government"]["beds"].sum()
    assert 0.30 <= government / existing["beds"].sum() <= 0.50
    assert _in_division(elder, current)


def test_cemeteries_existing_and_planned(frames, current):
    cemeteries = frames["cemeteries"]
    existing = cemeteries[cemeteries["status"] == "existing"]
    planned = cemeteries[cemeteries["status"] == "planned"]
    public = existing[existing["kind"].isin(["public_welfare_cemetery", "burial_point"])]
    assert len(public) == 7 and public["public_welfare"].all()
    assert (existing["kind"] == "funeral_home").sum() == 1
    assert (planned["kind"] == "funeral_home").sum() == 1
    assert (planned["kind"] == "funeral_service_station").sum() == 1
    planned_cemeteries = planned[planned["kind"] == "public_welfare_cemetery"]
    assert (planned_cemeteries["urban_rural"] == "urban").sum() == 1
    assert (planned_cemeteries["urban_rural"] == "rural").sum() >= 30
    assert _in_division(cemeteries, current)


def test_community_centres_one_per_village_with_gaps(frames, current):
    centres = frames["community_centres"]
    villages = current[current["level"] == "village"].set_index("code")
    assert sorted(centres["division_code"]) == sorted(villages.index)
    per_100 = centres.set_index("division_code")["floor_area_m2"] / villages["households"] * 100
    short = per_100 < 30
    assert 0 < short.mean() < 0.5
    assert (villages.loc[short[short].index, "kind"] == "社区").any()
    assert (villages.loc[short[short].index, "kind"] == "村").any()
    assert 0.70 <= centres["volunteer_point"].mean() <= 0.85
    stations = centres[centres["minor_protection_station"]]
    township_of = villages["parent_code"]
    assert township_of[stations["division_code"]].is_unique  # at most one per township
    assert 0.40 <= len(stations) / 27 <= 0.50
    assert _in_division(centres, current)


# ------------------------------------------------------------------------------------------
# place names


def test_place_names_cover_divisions_settlements_roads_and_history(frames, current):
    names = frames["place_names"]
    assert len(names) >= 1000
    administrative = names[(names["category"] == "administrative") & (names["status"] == "current")]
    assert set(administrative["division_code"]) == set(current["code"])
    assert (names["category"] == "settlement").sum() == len(frames["settlements"])
    assert set(frames["roads"]["name"]) == set(names[names["category"] == "road"]["name"])
    natural = set(names[names["category"] == "natural"]["name"])
    assert {"梅江河", "酉水", "平江河", "溶溪河", "川河盖", "平阳盖", "太阳山", "凤凰山"} <= natural
    assert names["heritage_listed"].sum() >= 3
    by_id = names.set_index("id")
    historical = names[names["status"] == "historical"].set_index("name")
    expected = {"清溪场镇": "清溪场街道", "孝溪乡": "清溪场街道", "涌洞乡": "涌洞镇"}
    for old, new in expected.items():
        successor = by_id.loc[historical.loc[old, "successor_id"]]
        assert successor["name"] == new and successor["status"] == "current"
        assert "2021" in historical.loc[old, "history"]
    placed = names[names["category"].isin(["settlement", "natural", "memorial", "facility"])]
    placed = placed[placed["division_code"].isin(current[current["level"] == "village"]["code"])]
    assert len(placed) >= len(frames["settlements"])
    assert _in_division(placed, current), "a place name's point is outside its division"
    sample = names.drop_duplicates("name").head(400)
    assert all(p == romanize(n) for n, p in sample[["name", "pinyin"]].itertuples(index=False))


# ------------------------------------------------------------------------------------------
# pinyin and reproducibility


@pytest.mark.parametrize(
    ("name", "spelled"),
    [
        ("龙凤坝镇", "Lóngfèngbà Zhèn"),
        ("中和街道", "Zhōnghé Jiēdào"),
        ("东风社区", "Dōngfēng Shèqū"),
        ("凤凰路", "Fènghuáng Lù"),
        ("梅江河", "Méijiāng Hé"),
        ("绿水湾", "Lǜshuǐwān"),
        ("长滩村", "Chángtān Cūn"),
        ("矮坳村", "Ǎi'ào Cūn"),
    ],
)
def test_romanize(name, spelled):
    assert romanize(name) == spelled


def test_toneless_and_initials():
    assert toneless("龙凤坝镇") == "long feng ba zhen"
    assert initials("龙凤坝镇") == "lfbz"
    assert toneless("绿水湾") == "lv shui wan"


def _digest(frame: pd.DataFrame) -> str:
    h = hashlib.sha256()
    plain = frame.drop(columns=["geom"], errors="ignore").astype(str)
    h.update(pd.util.hash_pandas_object(plain, index=True).values.tobytes())
    if "geom" in frame:
        for wkb in shapely.to_wkb(frame.geometry.values):
            h.update(wkb)
    return h.hexdigest()


def test_same_seed_builds_identical_frames(frames):
    again = build_demo(scale=1, seed=SEED)
    for name in FRAME_NAMES:
        assert _digest(again[name]) == _digest(frames[name]), name
