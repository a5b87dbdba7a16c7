"""Inspectors' field records brought back in: ``gis-service import marker_inspections FILE``.

Inspectors return from a joint inspection with a sheet (CSV or XLSX, often Chinese headers) or a handheld GPS's GPX
of the markers they visited. Each row names a marker by its number (界桩编号), what they found (完好, 损坏, 丢失 …,
read with the words of :data:`gis_service.layers.boundaries.CONDITION_WORDS`), the date (2021-03-05, 2021/3/5,
2021.3.5, 2021年3月5日), who inspected and notes. GPX waypoints: ``<name>`` is the marker number, ``<time>`` the date
(taken in China Standard Time: a waypoint at 23:30 UTC was made the next morning), ``<cmt>`` the condition and
``<desc>`` the notes (a ``<desc>`` starting with a condition gives it when ``<cmt>`` does not).

Every row is checked first; one bad row and nothing is written, every problem listed with what would be right.
Then each row becomes an inspection through :func:`gis_service.edits.write_inspection`, the rule the API uses: the
marker's condition and last-inspected date follow the newest inspection (an older one entered late only joins the
history), and the audit trail records each marker's change, all in one transaction.
"""

from __future__ import annotations

import datetime as dt
import getpass
import re
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyogrio
import sqlalchemy as sa

from gis_service.auth import Principal
from gis_service.edits import MAX_NOTES_LENGTH, write_inspection
from gis_service.errors import ImportRejected, InvalidInputError, RowProblem
from gis_service.io.files import read_table
from gis_service.io.validate import DATE_FORMS, parse_date, text_problem
from gis_service.layers import get_layer
from gis_service.layers.base import header_key
from gis_service.layers.boundaries import CONDITION_WORDS, CONDITION_ZH
from gis_service.search.keys import levenshtein

#: The columns of a field record and the headers they go by (compared without spaces, case or full-width forms).
#: GPX gives name, time, cmt and desc.
COLUMNS: dict[str, tuple[str, ...]] = {
    "number": ("number", "marker", "marker_number", "界桩编号", "界桩号", "桩号", "编号", "name"),
    "condition": ("condition", "状况", "界桩状况", "现状", "完好情况", "桩况", "检查结果", "cmt"),
    "inspected_on": ("inspected_on", "date", "检查日期", "巡查日期", "检查时间", "巡查时间", "日期", "time"),
    "inspector": ("inspector", "检查人", "巡查人", "检查人员", "巡查人员", "巡检人", "检查员"),
    "notes": ("notes", "备注", "说明", "情况说明", "描述", "desc"),
}
REQUIRED = ("number", "condition", "inspected_on")
SUFFIXES = (".csv", ".xlsx", ".gpx", ".geojson", ".json")
#: China Standard Time, in which an inspection's day is counted.
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))
MAX_INSPECTOR_LENGTH = 100
_WORD_END = re.compile(r"[\s,，;；:：、。.()（）\[\]【】-]")


@dataclass
class InspectionImport:
    """What an import of field records did (or, for a dry run, would do)."""

    rows: int
    markers: int
    #: Markers whose condition the import changed, per new condition.
    changed: Counter = field(default_factory=Counter)
    #: Rows older than their marker's last inspection: kept in the history only.
    older: int = 0
    #: Columns of the file that are not part of a field record (left out).
    unused_columns: list[str] = field(default_factory=list)
    note: str = ""


def parse_condition(value: object) -> str:
    """The condition code a cell means: a code, a Chinese word for it, or text starting with one (损坏，桩体断裂)."""
    text = unicodedata.normalize("NFKC", str(value)).strip().lower()
    for code, words in CONDITION_WORDS.items():
        if text == code or text in words:
            return code
    starts = {code for code, words in CONDITION_WORDS.items() for word in (code, *words)
              if text.startswith(word) and _WORD_END.match(text, len(word))}
    if len(starts) == 1:
        return starts.pop()
    accepted = ", ".join(f"{CONDITION_ZH[code]} ({code})" for code in CONDITION_WORDS)
    aliases = "; also " + ", ".join(w for words in CONDITION_WORDS.values() for w in words[1:])
    raise ValueError(f"{_short(value)} is not a condition; write one of {accepted}{aliases}")


def import_inspections(conn: sa.Connection, path: Path, *, inspector: str | None = None,
                       recorded_by: str | None = None, dry_run: bool = False, encoding: str | None = None,
                       sheet: str | None = None, header_row: int | None = None) -> InspectionImport:
    """Check every row of a field record and, unless ``dry_run``, record them all in the caller's transaction.

    ``inspector`` stands for an empty or missing inspector column; ``recorded_by`` is who the audit trail names
    (default: the user running the command). Raises ImportRejected listing every bad row, or InvalidInputError
    for the file as a whole; then nothing is written.
    """
    frame, source_rows, note = read_records(path, encoding=encoding, sheet=sheet, header_row=header_row)
    columns, unused = _match_columns(frame.columns, name=Path(path).name)
    labels = {f: str(columns.get(f, COLUMNS[f][1])) for f in COLUMNS}  # problems name the file's own headers
    numbers = _marker_numbers(conn)
    problems: list[RowProblem] = []
    checked: list[tuple[int, int, dt.date, str, str, str | None]] = []
    seen: dict[tuple[int, dt.date], int] = {}
    today = dt.date.today()
    for index, record in enumerate(frame.to_dict("records")):
        row = source_rows[index] if source_rows else index + 1
        values = {name: _cell(record.get(column)) for name, column in columns.items()}
        found = _row(values, row, labels=labels, numbers=numbers, inspector=inspector, today=today,
                     problems=problems)
        if found is None:
            continue
        marker_id, inspected_on = found[0], found[1]
        if (marker_id, inspected_on) in seen:
            problems.append(RowProblem(row, labels["number"], f"{values['number']} is recorded twice for "
                                       f"{inspected_on} (also row {seen[marker_id, inspected_on]}); keep one row"))
            continue
        seen[marker_id, inspected_on] = row
        checked.append((row, *found))
    if not len(frame):
        raise InvalidInputError(f"{Path(path).name} holds no field records")
    if problems:
        raise ImportRejected("marker_inspections", problems, len(frame),
                             numbering="rows are numbered as in the sheet" if source_rows else "")
    result = InspectionImport(rows=len(checked), markers=len({c[1] for c in checked}), unused_columns=unused,
                              note=note)
    layer = get_layer("boundary_markers")
    principal = Principal(token_id=None, name=recorded_by or f"{getpass.getuser()} (command line)", role="admin")
    request_id = f"import-{uuid.uuid4().hex[:16]}"
    before = dict(conn.execute(sa.text("SELECT id, condition FROM boundary_markers WHERE id = ANY(:ids)"),
                               {"ids": sorted({c[1] for c in checked})}).all())
    last = dict(conn.execute(sa.text("SELECT id, last_inspected FROM boundary_markers WHERE id = ANY(:ids)"),
                             {"ids": sorted({c[1] for c in checked})}).all())
    newest: dict[int, tuple[dt.date, str]] = {}
    for _, marker_id, inspected_on, condition, who, notes in sorted(checked, key=lambda c: c[2]):
        if last[marker_id] is not None and inspected_on < last[marker_id]:
            result.older += 1
        else:
            newest[marker_id] = (inspected_on, condition)
        if not dry_run:
            write_inspection(conn, layer, marker_id, inspected_on=inspected_on, condition=condition, notes=notes,
                             inspector=who, principal=principal, request_id=request_id)
    result.changed = Counter(condition for marker_id, (_, condition) in newest.items()
                             if condition != before[marker_id])
    return result


def read_records(path: Path, *, encoding: str | None = None, sheet: str | None = None,
                 header_row: int | None = None) -> tuple[pd.DataFrame, list[int] | None, str]:
    """The rows of a field record (no geometry), the sheet's row numbers (XLSX) and how the file was read."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InvalidInputError(f"no such file: {path}")
    if suffix not in SUFFIXES:
        raise InvalidInputError(f"cannot import {path.name} as field records: use CSV, XLSX, GPX or GeoJSON")
    if suffix in (".csv", ".xlsx"):
        known = {header for headers in COLUMNS.values() for header in headers}
        table = read_table(path, encoding=encoding, sheet=sheet, header_row=header_row, known_headers=known)
        return table.frame, table.source_rows, table.note
    if encoding is not None or sheet is not None or header_row is not None:
        raise InvalidInputError("--encoding, --sheet and --header-row apply to CSV and XLSX field records")
    try:
        if suffix == ".gpx":
            layers = [str(name) for name in pyogrio.list_layers(path)[:, 0]]
            if "waypoints" not in layers:
                raise InvalidInputError(f"{path.name} holds no waypoints: mark each marker visited as a waypoint "
                                        "named by its number")
            frame = pyogrio.read_dataframe(path, layer="waypoints", read_geometry=False)
        else:
            frame = pyogrio.read_dataframe(path, read_geometry=False)
    except InvalidInputError:
        raise
    except Exception as exc:  # GDAL reports malformed files in many ways
        raise InvalidInputError(f"cannot read {path.name}: {exc}") from None
    return pd.DataFrame(frame), None, f"{suffix[1:].upper()} read as UTF-8"


def _match_columns(headers, *, name: str) -> tuple[dict[str, str], list[str]]:
    """{field: the file's column} for the columns of a field record, and the file's other columns."""
    keys = {header_key(h): field for field, headers in COLUMNS.items() for h in headers}
    columns: dict[str, str] = {}
    unused = []
    for header in headers:
        field_name = keys.get(header_key(header))
        if field_name is None:
            unused.append(str(header))
        elif field_name in columns:
            if str(header) in ("name", "cmt", "desc", "time"):  # GPX's own columns give way to named ones
                continue
            raise InvalidInputError(f"{name} has two columns for {field_name} ({columns[field_name]} and {header}); "
                                    "keep one")
        else:
            columns[field_name] = header
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        wanted = "; ".join(f"{f}: {' / '.join(COLUMNS[f][1:4])}" for f in missing)
        raise InvalidInputError(f"{name} lacks the columns of a field record ({wanted}); its columns are "
                                + ", ".join(map(str, headers)))
    return columns, unused




def _marker_numbers(conn: sa.Connection) -> dict[str, int]:
    return dict(conn.execute(sa.text("SELECT number, id FROM boundary_markers")).all())


def _cell(value: object) -> object:
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _row(values: dict, row: int, *, labels: dict[str, str], numbers: dict[str, int], inspector: str | None,
         today: dt.date, problems: list[RowProblem]) -> tuple[int, dt.date, str, str, str | None] | None:
    """(marker id, date, condition, inspector, notes) of one row, or None with its problems added."""
    found = len(problems)

    def bad(field_name: str, message: str) -> None:
        problems.append(RowProblem(row, labels[field_name], message))

    marker_id = None
    number = values.get("number")
    if number is None:
        bad("number", "is empty; write the marker's number, e.g. 500241-500242-001Q")
    else:
        number = unicodedata.normalize("NFKC", str(number)).strip().upper()
        marker_id = numbers.get(number)
        if marker_id is None:
            bad("number", f"{_short(number)} is not the number of a boundary marker" + _did_you_mean(number, numbers))
    inspected_on = None
    if values.get("inspected_on") is None:
        bad("inspected_on", f"is empty; write the day of the inspection as {DATE_FORMS}")
    else:
        try:
            inspected_on = _date(values["inspected_on"])
        except ValueError as exc:
            bad("inspected_on", f"{_short(values['inspected_on'])} is not a date: {exc}")
        else:
            if inspected_on > today:
                bad("inspected_on", f"{inspected_on} is in the future; write the day the marker was inspected")
    condition = None
    text = values.get("condition")
    if text is None and values.get("notes") is not None:
        try:
            condition = parse_condition(values["notes"])  # a GPX <desc> starting with the condition
        except ValueError:
            pass
    if condition is None:
        if text is None:
            bad("condition", "is empty; write " + "、".join(CONDITION_ZH.values()))
        else:
            try:
                condition = parse_condition(text)
            except ValueError as exc:
                bad("condition", str(exc))
    who = values.get("inspector")
    who = str(who).strip() if who is not None else inspector
    if not who:
        bad("inspector", "is empty; write who inspected, or pass --inspector NAME for every row without one")
    elif len(who) > MAX_INSPECTOR_LENGTH or text_problem(who):
        bad("inspector", text_problem(who) or f"is {len(who)} characters long; at most {MAX_INSPECTOR_LENGTH} "
            "are allowed")
    notes = values.get("notes")
    if notes is not None:
        notes = str(notes)
        problem = text_problem(notes, multiline=True)
        if problem or len(notes) > MAX_NOTES_LENGTH:
            bad("notes", problem or f"is {len(notes):,} characters long; at most {MAX_NOTES_LENGTH:,} are allowed")
    if len(problems) > found:
        return None
    return marker_id, inspected_on, condition, who, notes


def _date(value: object) -> dt.date:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return (value.astimezone(CHINA_TIME) if value.tzinfo else value).date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(int(value)) if float(value).is_integer() else str(value)  # 20210305 typed as a number
    return parse_date(str(value))


def _did_you_mean(number: str, numbers: dict[str, int]) -> str:
    close = sorted((levenshtein(number, known, limit=3), known) for known in numbers)
    close = [known for distance, known in close if distance <= 2][:3]
    return f"; did you mean {' or '.join(close)}?" if close else "; see `gis-service export boundary_markers`"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
