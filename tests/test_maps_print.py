"""``gis-service map build NAME --out FILE.pdf|FILE.png``: the print layout drawn by headless Chromium, text kept as
text (read back with pypdf)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from pypdf import PdfReader
from typer.testing import CliRunner

from gis_service.cli import app
from gis_service.maps.printing import PX_PER_MM, paper_mm


@pytest.fixture()
def runner(engine: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("GIS_DATABASE_URL", database_url)
    monkeypatch.setenv("GIS_MAP_ORGANISATION", "秀山县民政局")
    return CliRunner()


def test_coverage_prints_to_a_pdf_with_legend_scale_and_county(runner: CliRunner, tmp_path: Path,
                                                              conn: sa.Connection) -> None:
    out = tmp_path / "x.pdf"
    result = runner.invoke(app, ["map", "build", "coverage", "--out", str(out), "--minutes", "20", "--landscape"])
    assert result.exit_code == 0, result.output
    reader = PdfReader(out)
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert round(float(box.width) / 72 * 25.4) == 297 and round(float(box.height) / 72 * 25.4) == 210
    text = reader.pages[0].extract_text()
    county = conn.execute(sa.text("SELECT name FROM admin_divisions WHERE level = 'county'")).scalar_one()
    for words in ("图例", "比例尺", county, "步行20分钟生活圈覆盖", "制图单位：秀山县民政局", "北", "演示数据"):
        assert words in text, words
    assert re.search(r"\d+ ?(公里|米)", text) and not re.search(r"\d+ ?k?m\b", text)  # the scale in Chinese units


def test_map_prints_to_png_at_paper_size_and_refuses_other_papers(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "boundaries.png"
    result = runner.invoke(app, ["map", "build", "boundaries", "--out", str(out), "--paper", "A3"])
    assert result.exit_code == 0, result.output
    width_mm, _ = paper_mm("A3", False)
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == 2 * round((width_mm - 16) * PX_PER_MM)
    bad = runner.invoke(app, ["map", "build", "boundaries", "--out", str(tmp_path / "y.pdf"), "--paper", "B5"])
    assert bad.exit_code != 0 and "A4, A3" in bad.output + str(bad.exception) and not (tmp_path / "y.pdf").exists()
