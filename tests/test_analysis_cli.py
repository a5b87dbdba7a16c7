"""``gis-service analyse ...`` writes the same answers as the API, as GeoJSON and CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gis_service.cli import app


@pytest.fixture()
def runner(engine: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("GIS_DATABASE_URL", database_url)
    return CliRunner()


def test_coverage_writes_units_as_csv_and_unserved_settlements_as_geojson(runner: CliRunner, tmp_path: Path,
                                                                          engine: sa.Engine) -> None:
    result = runner.invoke(app, ["analyse", "coverage", "--group-by", "township", "--out", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    assert "1,200 m" in result.output and "households" in result.output
    with (tmp_path / "t.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 27
    assert {r["mode"] for r in rows} == {"walk"} and {r["limit_m"] for r in rows} == {"1200.0"}
    result = runner.invoke(app, ["analyse", "coverage", "--out", str(tmp_path / "unserved.geojson")])
    assert result.exit_code == 0, result.output
    collection = json.loads((tmp_path / "unserved.geojson").read_text(encoding="utf-8"))
    assert collection["parameters"]["method"] == "network"
    assert sum(int(r["unserved_settlements"]) for r in rows) == len(collection["features"])


def test_service_areas_and_indicators_from_the_command_line(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["analyse", "service-areas", "--kind", "welfare_institution",
                                 "--out", str(tmp_path / "areas.geojson")])
    assert result.exit_code == 0, result.output
    areas = json.loads((tmp_path / "areas.geojson").read_text(encoding="utf-8"))
    assert areas["features"] and all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in areas["features"])
    result = runner.invoke(app, ["analyse", "indicators", "--out", str(tmp_path / "indicators.csv")])
    assert result.exit_code == 0, result.output
    with (tmp_path / "indicators.csv").open(encoding="utf-8-sig") as handle:
        assert len(list(csv.DictReader(handle))) == 10
    result = runner.invoke(app, ["analyse", "facility-area", "--level", "county"])
    assert result.exit_code == 0 and "m² per 100 households" in result.output


def test_a_bad_option_is_one_plain_message(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["analyse", "coverage", "--mode", "fly"])
    assert result.exit_code != 0
    assert "mode must be one of" in str(result.exception)
