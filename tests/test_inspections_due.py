"""Boundary markers due for inspection: years since the last inspection, condition, overdue by
GIS_INSPECTION_INTERVAL_YEARS, counts per line and township, and the same list as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

AS_OF = "2026-12-04"
RONGXI = "500241104"


def due(client: TestClient, **params) -> dict:
    response = client.get("/analysis/inspections-due", params={"as_of": AS_OF, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_overdue_markers_match_an_independent_count(client: TestClient, conn: sa.Connection) -> None:
    answer = due(client)
    inspected_before, never_set_before, never_recent, total = conn.execute(sa.text(
        "SELECT count(*) FILTER (WHERE last_inspected < DATE '2021-12-04'), "
        "count(*) FILTER (WHERE last_inspected IS NULL AND set_on < DATE '2021-12-04'), "
        "count(*) FILTER (WHERE last_inspected IS NULL AND set_on >= DATE '2021-12-04'), count(*) "
        "FROM boundary_markers")).one()
    assert answer["due_before"] == "2021-12-04" and answer["interval_years"] == 5
    assert answer["totals"]["markers"] == total == 234
    # 124 last inspected more than five years before 2026-12-04, and 3 never inspected and set before then; the
    # 2 set in 2022 and never inspected are not yet due (counting them gave 129)
    assert (inspected_before, never_set_before, never_recent) == (124, 3, 2)
    assert answer["totals"]["overdue"] == inspected_before + never_set_before == 127
    assert answer["totals"]["never_inspected"] == 5 and answer["totals"]["never_inspected_overdue"] == 3


def test_markers_come_most_overdue_first_with_years_and_condition(client: TestClient) -> None:
    markers = due(client)["markers"]
    overdue = [m for m in markers if m["overdue"]]
    assert markers[: len(overdue)] == overdue  # overdue first
    years = [m["years_since_inspection"] if m["years_since_inspection"] is not None else m["years_since_set"]
             for m in overdue]
    assert years == sorted(years, reverse=True)
    inspected = next(m for m in markers if m["last_inspected"])
    days = (dt.date.fromisoformat(AS_OF) - dt.date.fromisoformat(inspected["last_inspected"])).days
    assert inspected["years_since_inspection"] == pytest.approx(days / 365.2425, abs=0.01)
    assert {m["condition_zh"] for m in markers} == {"完好", "损坏", "缺失", "移位"}


def test_counts_per_line_and_township(client: TestClient, conn: sa.Connection) -> None:
    answer = due(client)
    lines = {row["code"]: row for row in answer["lines"]}
    per_line = dict(conn.execute(sa.text("SELECT line_code, count(*) FROM boundary_markers GROUP BY 1")).all())
    assert {code: row["markers"] for code, row in lines.items()} == per_line
    assert sum(row["overdue"] for row in lines.values()) == answer["totals"]["overdue"]
    townships = {row["code"]: row for row in answer["townships"]}
    assert len(townships) == 27 and townships[RONGXI]["name"] == "溶溪镇"
    package = client.get("/exports/boundaries", params={"township": RONGXI}).json()
    in_package = {f["properties"]["number"] for f in package["features"]
                  if f["properties"]["feature_type"] == "boundary_marker"}
    assert townships[RONGXI]["markers"] == len(in_package)  # the township's field package, marker for marker
    only = due(client, township=RONGXI)
    assert {m["number"] for m in only["markers"]} == in_package
    assert only["totals"]["overdue"] == townships[RONGXI]["overdue"]


def test_a_later_day_shows_what_the_next_round_must_visit(client: TestClient) -> None:
    later = due(client, as_of="2028-06-30")
    assert later["due_before"] == "2023-06-30" and later["totals"]["overdue"] > 127


def test_the_interval_is_a_setting(client_with) -> None:
    strict = client_with(inspection_interval_years=3).get("/analysis/inspections-due", params={"as_of": AS_OF})
    assert strict.json()["due_before"] == "2023-12-04" and strict.json()["totals"]["overdue"] > 127


def test_the_csv_lists_the_markers(client: TestClient) -> None:
    response = client.get("/analysis/inspections-due", params={"as_of": AS_OF, "overdue_only": True,
                                                               "format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 127 and {r["overdue"] for r in rows} == {"True"}
    assert rows[0]["number"] and rows[0]["condition_zh"] in ("完好", "损坏", "缺失", "移位")


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"as_of": "4 December"}, 400, "as_of"),
    ({"as_of": "0"}, 400, "as_of must be a date written YYYY-MM-DD"),  # not seconds since 1970
    ({"as_of": "2026-02-30"}, 400, "as_of must be a date written YYYY-MM-DD"),
    ({"township": "500241999"}, 404, "no current township"),
    ({"line": "500241-999999"}, 404, "no boundary line"),
    ({"format": "xlsx"}, 400, "format must be json or csv"),
])
def test_bad_requests_are_explained(client: TestClient, params: dict, status: int, words: str) -> None:
    response = client.get("/analysis/inspections-due", params=params)
    assert response.status_code == status
    assert words in response.json()["description"]
