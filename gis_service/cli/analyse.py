"""``gis-service analyse coverage|service-areas|facility-area|indicators|site-suggestions ... --out FILE``.

Each command prints a summary and writes the answer: ``.geojson`` (EPSG:4326 features: service-area polygons,
unserved settlements, suggested sites), ``.csv`` or ``.xlsx`` (one row per unit, facility or indicator) or ``.json``
(the API's answer as is).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gis_service.cli.common import database, out, progress_bar
from gis_service.settings import get_settings

app = typer.Typer(help="Coverage along the road network, service areas, floor area per 100 households, "
                       "the plan's indicators and site suggestions.", no_args_is_help=True)

LayerOption = Annotated[str, typer.Option(help="elder_care, community_centres or cemeteries.")]
KindOption = Annotated[str | None, typer.Option(help="Facility kind within the layer (default: every kind).")]
PopulationOption = Annotated[str | None, typer.Option(help="Whose households count: everyone, urban_communities, "
                                                           "rural_villages or own_township (default: those the kind "
                                                           "is for).")]
MinutesOption = Annotated[float | None, typer.Option(help="Travel time limit in minutes (0-120]; default: the "
                                                          "kind's (township_home 30, others 15).")]
ModeOption = Annotated[str | None, typer.Option(help="walk, cycle or drive; default: the kind's (township_home "
                                                     "drive, others walk).")]
OutOption = Annotated[Path | None, typer.Option("--out", help="Write the answer to FILE (.geojson, .csv, .xlsx or "
                                                              ".json).")]

LabelsOption = Annotated[str, typer.Option(help="csv, xlsx: zh writes Chinese headers and values (类型, 层级, "
                                                "是/否); en the keys and codes of the JSON answer.")]

FORMATS = (".geojson", ".csv", ".xlsx", ".json")
#: Formats of one row per unit, facility or indicator.
TABLE_FORMATS = (".csv", ".xlsx")


def _check_out(out: Path | None, labels: str = "en") -> None:
    from gis_service.errors import InvalidInputError

    if out is not None and out.suffix.lower() not in FORMATS:
        raise InvalidInputError(f"--out must end in {', '.join(FORMATS)}; got {out.name}")
    if labels not in ("en", "zh"):
        raise InvalidInputError(f"--labels is en or zh; got {labels!r}")
    if labels == "zh" and (out is None or out.suffix.lower() not in TABLE_FORMATS):
        raise InvalidInputError("--labels zh applies to tables: --out FILE.csv or FILE.xlsx")


def _run(task: str, compute, *, steps: int = 3):
    """Run ``compute(conn, advance)`` against the service's database with a progress bar of ``steps`` steps."""
    from gis_service.analysis.travel import AnalysisSettings

    settings = get_settings()
    with database(settings) as engine, progress_bar() as bar:
        job = bar.add_task(task, total=steps)
        bar.update(job, description=f"{task}: connecting")
        with engine.connect() as conn:
            bar.advance(job)
            bar.update(job, description=f"{task}: network")
            from gis_service.analysis.network import ensure_network

            ensure_network(conn, measure_srid=settings.measure_srid, settings=AnalysisSettings())
            bar.advance(job)
            bar.update(job, description=f"{task}: computing")
            answer = compute(conn, settings, AnalysisSettings(), bar, job)
            conn.commit()
            bar.update(job, completed=steps, description=f"{task}: done")
    return answer


def _write_table(path: Path, rows: list[dict], *, labels: str = "en", layer: str | None = None) -> None:
    """One line per row, a column per key of any row, as CSV or XLSX by ``path``'s suffix; no cell a spreadsheet
    would run (io/csv_cells.py, io/excel.py). ``labels="zh"``: in Chinese (analysis/columns.py; ``layer`` the
    facility layer analysed)."""
    from gis_service.analysis.columns import rows_in_chinese
    from gis_service.io.csv_cells import write_rows
    from gis_service.io.excel import write_sheet

    if labels == "zh":
        rows = rows_in_chinese(rows, layer=layer)

    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]

    def cell(value: object) -> object:
        return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value

    write = write_sheet if path.suffix.lower() == ".xlsx" else write_rows
    write(path, columns, ([cell(row.get(k)) for k in columns] for row in rows))


def _write_json(path: Path, body: dict) -> None:
    path.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")


def _export(out: Path | None, answer: dict, *, command: str, rows: list[dict], geojson: dict | None = None,
            labels: str = "en", layer: str | None = None) -> None:
    """Write the analysis to ``out`` by its suffix: .csv or .xlsx ``rows`` (one per unit, facility or indicator),
    .geojson ``geojson`` (refused when the command has none), .json the whole ``answer``; nothing without ``out``."""
    if out is None:
        return
    suffix = out.suffix.lower()
    if suffix in TABLE_FORMATS:
        _write_table(out, rows, labels=labels, layer=layer)
    elif suffix == ".geojson":
        if geojson is None:
            from gis_service.errors import InvalidInputError

            raise InvalidInputError(f"{command} writes .csv, .xlsx or .json")
        _write_json(out, geojson)
    else:
        _write_json(out, answer)
    _echo(f"wrote {out}")


def _points(rows: list[dict], parameters: dict) -> dict:
    return {"type": "FeatureCollection", "parameters": parameters, "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
         "properties": {k: v for k, v in r.items() if k not in ("lon", "lat")}} for r in rows]}


def _echo(text: str) -> None:
    out.print(text, highlight=False, soft_wrap=True)


def _parameters(answer: dict) -> dict:
    keys = ("method", "layer", "kind", "mode", "speed_kmh", "speeds_kmh_by_road_class", "minutes", "limit_s",
            "limit_m", "group_by", "k")
    return {k: answer[k] for k in keys if k in answer}


@app.command("coverage")
def coverage_command(layer: LayerOption = "elder_care", kind: KindOption = None, minutes: MinutesOption = None,
                     mode: ModeOption = None,
                     group_by: Annotated[str, typer.Option(help="county, township or village.")] = "township",
                     method: Annotated[str, typer.Option(help="network or euclidean.")] = "network",
                     population: PopulationOption = None, out: OutOption = None,
                     labels: LabelsOption = "en") -> None:
    """Households served and not served per unit; .geojson writes the unserved settlements, .csv the units."""
    from gis_service.analysis.coverage import coverage

    _check_out(out, labels)
    answer = _run("coverage", lambda conn, s, a, bar, job: coverage(
        conn, layer=layer, kind=kind, minutes=minutes, mode=mode, group_by=group_by, method=method,
        measure_srid=s.measure_srid, settings=a, population=population))
    t = answer["totals"]
    _echo(f"{answer['method']} coverage of {layer}{' / ' + kind if kind else ''} within {answer['minutes']:g} min "
          f"{answer['mode']} ({answer['speed_kmh']} km/h, {answer['limit_m']:,.0f} m): "
          f"{t['served_households']:,} of {t['households']:,} households of "
          f"{answer['served_population']['code']} ({t['coverage_percent']} %), "
          f"{t['unserved_settlements']:,} settlements unserved")
    _export(out, answer, command="coverage", rows=[{**_parameters(answer), **row} for row in answer["units"]],
            geojson=_points(answer["unserved"], _parameters(answer)), labels=labels, layer=layer)


@app.command("service-areas")
def service_areas_command(layer: LayerOption = "elder_care", kind: KindOption = None, minutes: MinutesOption = None,
                          mode: ModeOption = None,
                          buffer_m: Annotated[float, typer.Option(help="Metres the reached roads are grown by.")] = 50,
                          out: OutOption = None, labels: LabelsOption = "en") -> None:
    """One polygon per facility from the roads reachable in time; .csv writes the facilities' figures."""
    from gis_service.analysis.service_areas import service_areas

    _check_out(out, labels)
    answer = _run("service areas", lambda conn, s, a, bar, job: service_areas(
        conn, layer=layer, kind=kind, minutes=minutes, mode=mode, buffer_m=buffer_m, measure_srid=s.measure_srid,
        settings=a))
    _echo(f"{len(answer['features']):,} service areas ({answer['parameters']['minutes']:g} min "
          f"{answer['parameters']['mode']}, {answer['parameters']['limit_m']:,.0f} m)")
    _export(out, answer, command="service-areas",
            rows=[{**answer["parameters"], **f["properties"]} for f in answer["features"]], geojson=answer,
            labels=labels, layer=layer)


@app.command("facility-area")
def facility_area_command(level: Annotated[str, typer.Option(help="village, township or county.")] = "village",
                          out: OutOption = None, labels: LabelsOption = "en") -> None:
    """Community service floor area per 100 households against the 30 m² target."""
    from gis_service.analysis.facility_area import facility_area

    _check_out(out, labels)
    answer = _run("facility area", lambda conn, s, a, bar, job: facility_area(conn, level=level))
    t = answer["totals"]
    _echo(f"{t['units_meeting_target']} of {t['units']} {level} units meet "
          f"{answer['target_m2_per_100_households']:g} m² per 100 households; shortfall {t['shortfall_m2']:,.0f} m²")
    _export(out, answer, command="facility-area", rows=answer["units"], labels=labels)


@app.command("indicators")
def indicators_command(out: OutOption = None, labels: LabelsOption = "en") -> None:
    """The plan's indicators: value, target, met."""
    from gis_service.analysis.indicators import indicators

    _check_out(out, labels)
    answer = _run("indicators", lambda conn, s, a, bar, job: indicators(conn, measure_srid=s.measure_srid,
                                                                         settings=a))
    for item in answer["indicators"]:
        mark = {True: "met", False: "NOT met", None: "n/a"}[item["met"]]
        target = f"target {item['comparison']} {item['target']:g}" if item["target"] is not None else "no target"
        _echo(f"{item['title_zh']}: {item['value']} {item['unit']} ({target}) {mark}")
    _export(out, answer, command="indicators", rows=answer["indicators"], labels=labels)


@app.command("site-suggestions")
def site_suggestions_command(layer: LayerOption = "elder_care", kind: KindOption = None,
                             minutes: MinutesOption = None, mode: ModeOption = None,
                             k: Annotated[int, typer.Option(help="Number of new sites.")] = 3,
                             method: Annotated[str, typer.Option(help="max_cover (most households newly served, "
                                                                      "proven optimal), p_median (least "
                                                                      "household-weighted travel time) or "
                                                                      "greedy.")] = "max_cover",
                             candidates: Annotated[str, typer.Option(help="Where a site may stand, comma-separated: "
                                                                          "settlements, facility_sites, road_nodes, "
                                                                          "unserved_settlements.")] = (
                                 "settlements,facility_sites"),
                             time_limit_s: Annotated[float, typer.Option(help="Seconds the solver may take (at most "
                                                                              "60); past it the gap is stated.")] = 10,
                             max_candidates: Annotated[int, typer.Option(help="Most candidate sites tried.")] = 50_000,
                             population: PopulationOption = None, out: OutOption = None,
                             labels: LabelsOption = "en") -> None:
    """k new sites that together serve the most unserved households (or cut weighted travel time most)."""
    from gis_service.analysis.sites import site_suggestions

    _check_out(out, labels)

    def compute(conn, s, a, bar, job):
        sub = bar.add_task("candidate sites", total=None)
        answer = site_suggestions(conn, layer=layer, kind=kind, minutes=minutes, mode=mode, k=k, method=method,
                                  candidates=candidates, time_limit_s=time_limit_s, max_candidates=max_candidates,
                                  measure_srid=s.measure_srid, settings=a, population=population,
                                  on_progress=lambda done, total: bar.update(sub, completed=done, total=total))
        bar.update(sub, visible=False)
        return answer

    answer = _run("site suggestions", compute)
    for site in answer["sites"]:
        _echo(f"{site['rank']}. at {site['at_name']} ({site['lon']}, {site['lat']}): "
              f"+{site['newly_served_households']:,} households")
    proof = ("proven optimal" if answer["optimal"] else
             f"within {answer['optimality_gap'] * 100:.2f} % of the best possible ({answer['solver']['status']})")
    _echo(f"{answer['method']}: {answer['newly_served_households']:,} of {answer['unserved_households_before']:,} "
          f"unserved households ({answer['served_population']['code']}) newly served, {proof}; greedy: "
          f"{answer['greedy']['newly_served_households']:,} ({answer['gain_over_greedy_households']:+,})")
    if answer["method"] == "p_median":
        objective = answer["objective"]
        _echo(f"mean travel time {objective['before']['mean_minutes']} → {objective['after']['mean_minutes']} min "
              f"(greedy: {answer['greedy']['objective']['after']['mean_minutes']} min)")
    _export(out, answer, command="site-suggestions",
            rows=[{**_parameters(answer), **site} for site in answer["sites"]],
            geojson=_points(answer["sites"], _parameters(answer)), labels=labels, layer=layer)
