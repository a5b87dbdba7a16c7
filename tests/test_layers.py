"""The layer registry is the one home of each layer's rules: its coded values with their Chinese labels and the
spellings people use, who writes it, its part in the analyses. Pure: no database."""

from __future__ import annotations

import pytest

from gis_service.layers import FACILITY_LAYERS, LAYERS, layers_written_by
from gis_service.layers.base import Field, Value

ENUMERATED = [(layer.id, f.name) for layer in LAYERS.values() for f in layer.fields if f.values is not None]


@pytest.mark.parametrize("layer_id, field", ENUMERATED)
def test_every_coded_value_has_a_chinese_label_and_is_found_by_it(layer_id: str, field: str) -> None:
    spec = LAYERS[layer_id].field_named(field)
    for value in spec.values:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in value.label_zh), (value.code, value.label_zh)
        assert spec.label_of(value.code) == value.label_zh
        assert spec.code_of(value.code) == value.code
        for alias in value.aliases:
            assert spec.code_of(alias) == value.code, alias
        shared = [v.code for v in spec.values if v.label_zh == value.label_zh]
        assert spec.code_of(value.label_zh) == (value.code if len(shared) == 1 else None)


@pytest.mark.parametrize("layer_id, field, text, code", [
    ("elder_care", "kind", "敬老院", "township_home"),
    ("elder_care", "kind", " 农村幸福院 ", "rural_happiness_home"),
    ("elder_care", "kind", "Township_Home", "township_home"),
    ("elder_care", "operator", "公办", "government"),
    ("elder_care", "operator", "公建民营", "public_private"),
    ("elder_care", "status", "现有", "existing"),
    ("cemeteries", "kind", "公益性公墓", "public_welfare_cemetery"),
    ("boundary_markers", "condition", "完好", "intact"),
    ("boundary_markers", "condition", "丢失", "missing"),
    ("boundary_markers", "marker_type", "单立", "Q"),
    ("boundary_markers", "marker_type", "同号双立", None),  # A and B: the letter says which
    ("boundary_lines", "level", "县界", "county"),
    ("roads", "road_class", "县道", "county"),
    ("place_names", "category", "道路街巷", "road"),
    ("place_names", "status", "注销", "cancelled"),
    ("admin_divisions", "kind", "村民委员会", "村"),
    ("admin_divisions", "urban_rural", "农村", "rural"),
    ("elder_care", "kind", "宾馆", None),
])
def test_codes_labels_and_aliases_name_the_codes_people_mean(layer_id: str, field: str, text: str,
                                                             code: str | None) -> None:
    assert LAYERS[layer_id].field_named(field).code_of(text) == code


def test_an_alias_that_is_another_values_code_is_refused_when_the_registry_is_made() -> None:
    with pytest.raises(ValueError, match="alias 'b' of a is the code b"):
        Field("x", "text", "x", values=(Value("a", "甲", ("b",)), Value("b", "乙")))


def test_the_indicators_read_their_kinds_from_the_layers() -> None:
    assert FACILITY_LAYERS["elder_care"].field_named("kind").codes_tagged("institution") == (
        "welfare_institution", "township_home")
    assert FACILITY_LAYERS["cemeteries"].field_named("kind").codes_tagged("public_welfare_burial") == (
        "public_welfare_cemetery", "burial_point")


@pytest.mark.parametrize("role, layer_id, fields, allowed", [
    ("planner", "elder_care", None, True),
    ("planner", "admin_divisions", {"households", "population"}, True),
    ("planner", "admin_divisions", {"name"}, False),
    ("planner", "admin_divisions", None, False),  # neither create nor delete a division
    ("inspector", "boundary_markers", {"condition"}, True),
    ("inspector", "elder_care", set(), False),
    ("placename", "roads", {"name"}, True),
    ("admin", "admin_divisions", None, True),
])
def test_each_layer_says_which_roles_change_it(role: str, layer_id: str, fields: set | None, allowed: bool) -> None:
    assert LAYERS[layer_id].may_be_changed_by(role, fields) is allowed


def test_the_roles_write_the_layers_the_bureau_gives_them() -> None:
    assert layers_written_by("inspector") == ["boundary_lines", "boundary_markers"]
    assert layers_written_by("placename") == ["roads", "place_names"]
    assert set(layers_written_by("planner")) == {"admin_divisions", "settlements", "cemeteries", "elder_care",
                                                 "community_centres"}


def test_facility_layers_say_what_the_analyses_read() -> None:
    assert set(FACILITY_LAYERS) == {"elder_care", "community_centres", "cemeteries"}
    assert FACILITY_LAYERS["community_centres"].kinds == ()
    assert FACILITY_LAYERS["elder_care"].kinds == ("welfare_institution", "township_home", "community_station",
                                                   "rural_happiness_home")
    assert all(dict(layer.network.counts) == {"status": "existing"} for layer in FACILITY_LAYERS.values())
