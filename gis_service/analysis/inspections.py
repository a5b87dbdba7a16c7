"""Boundary markers due for inspection (界桩巡检到期): years since each marker was last inspected, its condition,
and counts per line and per township, for the inspectors' page.

A marker is **overdue** when its last inspection (or, never inspected, its setting) lies more than
``GIS_INSPECTION_INTERVAL_YEARS`` (default 5: the joint inspections of county and township lines come every five
years) before the day asked about (``as_of``, default today; a later day shows what the next round must visit):
last inspected on 2021-10-20, it is overdue from 2026-10-21. A marker never inspected and set less than the
interval ago is not yet due. Markers needing repair are those last found damaged, missing or displaced.

Townships: a marker on a township line belongs to both townships; one on a county line to the township whose part
of the line it stands on (:mod:`gis_service.store.boundary_parts`), as in the township's field package. So the
township rows add up to more than the county's markers.

Only dates and conditions are shown, never who inspected: that is in the inspection records, which need a token.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from gis_service.errors import InvalidInputError, NotFoundError
from gis_service.layers import get_layer
from gis_service.store import inspections as store_inspections

CONDITION = get_layer("boundary_markers").field_named("condition")

#: Conditions that need the inspectors' work, worst first.
NEEDS_REPAIR = ("missing", "displaced", "damaged")
_SEVERITY = {condition: rank for rank, condition in enumerate(NEEDS_REPAIR + ("intact",))}
CSV_COLUMNS = ("number", "line_code", "part_code", "township_codes", "township_names", "condition", "condition_zh",
               "last_inspected", "years_since_inspection", "set_on", "overdue", "lon", "lat")


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` earlier (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _years(since: dt.date | None, as_of: dt.date) -> float | None:
    return None if since is None else round((as_of - since).days / 365.2425, 2)


def inspections_due(conn: sa.Connection, *, interval_years: int, as_of: dt.date | None = None,
                    township: str | None = None, line: str | None = None, overdue_only: bool = False,
                    measure_srid: int = 4545) -> dict:
    """Markers (of one township or line when asked) most overdue first, then worst condition; counts per line and
    per township. ``as_of`` (default today) may be in the future: what will be due by the next round."""
    as_of = as_of or dt.date.today()
    if interval_years < 1:
        raise InvalidInputError(f"the inspection interval must be at least 1 year; got {interval_years}")
    due_before = years_before(as_of, interval_years)
    rows = store_inspections.markers_by_township(conn, measure_srid=measure_srid)
    names = store_inspections.township_names(conn)
    code9 = township.ljust(12, "0")[:9] if township else None
    if code9 and code9 not in names:
        raise NotFoundError(f"no current township has the code {township}")
    if line and not any(r["line_code"] == line for r in rows):
        raise NotFoundError(f"no boundary line with markers has the code {line}")
    markers = []
    for r in rows:
        townships = list(r["townships"] or [])
        if (code9 and code9 not in townships) or (line and r["line_code"] != line):
            continue
        since = r["last_inspected"] or r["set_on"]
        overdue = since is None or since < due_before
        markers.append({
            "number": r["number"], "line_code": r["line_code"], "line_name": r["line_name"],
            "part_code": r["part_code"], "township_codes": townships,
            "township_names": [names.get(t, t) for t in townships],
            "condition": r["condition"], "condition_zh": CONDITION.label_of(r["condition"]),
            "last_inspected": r["last_inspected"].isoformat() if r["last_inspected"] else None,
            "years_since_inspection": _years(r["last_inspected"], as_of),
            "set_on": r["set_on"].isoformat() if r["set_on"] else None,
            "years_since_set": _years(r["set_on"], as_of),
            "overdue": overdue, "lon": round(float(r["lon"]), 7), "lat": round(float(r["lat"]), 7),
        })
    markers.sort(key=lambda m: (not m["overdue"], -(m["years_since_inspection"] if m["years_since_inspection"]
                                                    is not None else m["years_since_set"] or 0.0),
                                _SEVERITY.get(m["condition"], 9), m["number"]))
    lines = _counts(markers, lambda m: [m["line_code"]],
                    {r["line_code"]: {"name": r["line_name"], "level": r["line_level"]} for r in rows})
    townships = _counts(markers, lambda m: m["township_codes"], {c: {"name": n} for c, n in names.items()})
    listed = [m for m in markers if m["overdue"]] if overdue_only else markers
    return {
        "as_of": as_of.isoformat(), "interval_years": interval_years, "due_before": due_before.isoformat(),
        "rule": f"a marker is overdue when it was last inspected (or, never inspected, set) before "
                f"{due_before.isoformat()}: more than {interval_years} years before {as_of.isoformat()} "
                "(GIS_INSPECTION_INTERVAL_YEARS)",
        "township": code9, "line": line,
        "totals": _summary(markers),
        "lines": lines, "townships": townships,
        "markers": listed,
    }


def _summary(markers: list[dict]) -> dict:
    by_condition = {c: sum(1 for m in markers if m["condition"] == c) for c in CONDITION.codes or ()}
    return {
        "markers": len(markers),
        "overdue": sum(m["overdue"] for m in markers),
        "never_inspected": sum(m["last_inspected"] is None for m in markers),
        "never_inspected_overdue": sum(m["last_inspected"] is None and m["overdue"] for m in markers),
        "needs_repair": sum(m["condition"] in NEEDS_REPAIR for m in markers),
        "overdue_or_needs_repair": sum(m["overdue"] or m["condition"] in NEEDS_REPAIR for m in markers),
        "by_condition": by_condition,
        "oldest_inspection": min((m["last_inspected"] for m in markers if m["last_inspected"]), default=None),
    }


def _counts(markers: list[dict], keys, about: dict[str, dict]) -> list[dict]:
    """One row per key (line or township code) that has markers: its counts, most overdue first."""
    groups: dict[str, list[dict]] = {}
    for marker in markers:
        for key in keys(marker):
            groups.setdefault(key, []).append(marker)
    rows = [{"code": key, **about.get(key, {}), **_summary(group)} for key, group in groups.items()]
    return sorted(rows, key=lambda row: (-row["overdue"], -row["needs_repair"], row["code"]))


def csv_rows(answer: dict) -> tuple[tuple[str, ...], list[list]]:
    """The answer's markers as CSV columns and rows (lists joined with ';')."""
    def cell(value):
        return ";".join(value) if isinstance(value, list) else value

    return CSV_COLUMNS, [[cell(m[c]) for c in CSV_COLUMNS] for m in answer["markers"]]
