"""Excel workbooks (.xlsx) in and out, with openpyxl.

Reading takes one sheet (the first, or the one named) the way a county office fills it in: title rows above the
header ("秀山县养老机构名单", "填报单位：…"), cells merged over several rows (a township written once for its
villages), empty rows between blocks, a 合计 row at the bottom, numbers typed as text and dates as Excel dates.
The header row is the first of the top rows that holds the most known column names (field names, their Chinese
titles, lon/lat …), unless ``--header-row`` says; merged cells below it give their value to every cell they cover;
empty rows and total rows are left out. Rows keep the sheet's row numbers, so that errors name the row a user sees.

Writing puts every text cell in as text, never as a formula: openpyxl turns a string starting with ``=`` into a
formula (and ``#N/A`` into an error) unless the cell's type is set after the value, which :func:`write_sheet` does;
text that a spreadsheet would run if retyped (``=``, ``+``, ``-``, ``@``) also gets Excel's quote prefix, the
apostrophe Excel shows in the formula bar but never as part of the value. Dates are dates (yyyy-mm-dd).
"""

from __future__ import annotations

import datetime as dt
import math
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from gis_service.errors import InvalidInputError
from gis_service.io.csv_cells import FORMULA_STARTS
from gis_service.layers.base import header_key
from gis_service.limits import check_zip

#: The rows from the top searched for the header row.
HEADER_SEARCH_ROWS = 30
#: Largest workbook read, uncompressed (openpyxl holds a workbook in memory: about 50 times its file's size).
MAX_WORKBOOK_BYTES = 64 * 1024**2
#: A row whose first filled cell is one of these is a total, not a feature.
TOTAL_LABELS = ("合计", "总计", "小计", "total")


def read_sheet(path: Path, *, sheet: str | None = None, header_row: int | None = None,
               known_headers: Iterable[str] = ()) -> tuple[pd.DataFrame, list[int], str]:
    """The rows of one sheet (cells as openpyxl reads them: text, numbers, datetimes, booleans; empty cells None),
    the sheet's row number of each, and a sentence saying what was read."""
    import openpyxl

    path = Path(path)
    check_zip(path)
    with zipfile.ZipFile(path) as archive:
        if sum(m.file_size for m in archive.infolist()) > MAX_WORKBOOK_BYTES:
            raise InvalidInputError(f"{path.name} expands to more than {MAX_WORKBOOK_BYTES // 1024**2} MiB; split it "
                                    "into smaller workbooks")
    try:
        workbook = openpyxl.load_workbook(path, data_only=True)
    except Exception as exc:  # a damaged or foreign file fails in many ways inside openpyxl
        raise InvalidInputError(f"cannot read {path.name} as an Excel workbook (.xlsx): {type(exc).__name__}; "
                                "save it from Excel or WPS as .xlsx") from None
    if sheet is None:
        worksheet = workbook.worksheets[0]
    elif sheet in workbook.sheetnames:
        worksheet = workbook[sheet]
    else:
        raise InvalidInputError(f"{path.name} has no sheet {sheet!r}; its sheets are {', '.join(workbook.sheetnames)}")
    cells = [[_cell_value(v) for v in row] for row in worksheet.iter_rows(values_only=True)]
    for merged in worksheet.merged_cells.ranges:
        value = cells[merged.min_row - 1][merged.min_col - 1] if merged.min_row <= len(cells) else None
        for r in range(merged.min_row, min(merged.max_row, len(cells)) + 1):
            for c in range(merged.min_col, merged.max_col + 1):
                if c <= len(cells[r - 1]):
                    cells[r - 1][c - 1] = value
    where = f"sheet {worksheet.title!r} of {path.name}"
    header_at = _header_row(cells, header_row, known_headers, where=where)
    columns = _column_names(cells[header_at - 1], where=where, row=header_at)
    rows, numbers, totals = [], [], 0
    for number, row in enumerate(cells[header_at:], start=header_at + 1):
        values = [row[i] if i < len(row) else None for i, _ in columns]
        filled = [v for v in values if v is not None]
        if not filled:
            continue
        if isinstance(filled[0], str) and filled[0].replace(" ", "").lower() in TOTAL_LABELS:
            totals += 1
            continue
        rows.append(values)
        numbers.append(number)
    frame = pd.DataFrame(rows, columns=[name for _, name in columns], dtype=object)
    skipped = f"; rows 1-{header_at - 1} above it taken for titles" if header_at > 1 else ""
    total_note = f"; {totals} total row{'s' if totals > 1 else ''} (合计) left out" if totals else ""
    note = f"{where}: header in row {header_at}{skipped}{total_note}; rows are numbered as in the sheet"
    return frame, numbers, note


def _cell_value(value: object) -> object:
    """A cell as an import sees it: text trimmed (None when blank), everything else as openpyxl reads it."""
    if isinstance(value, str):
        value = value.strip().strip("\u3000")
        return value or None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _header_row(cells: list[list], header_row: int | None, known_headers: Iterable[str], *, where: str) -> int:
    """The 1-based row holding the column names: ``header_row``, or the first of the top rows with the most known
    names, or (when none is known) the first all-text row as wide as the widest top row."""
    if header_row is not None:
        if not 1 <= header_row <= len(cells):
            raise InvalidInputError(f"--header-row {header_row} is outside {where}, which has {len(cells)} rows")
        return header_row
    if not cells:
        raise InvalidInputError(f"{where} is empty")
    known = {header_key(k) for k in known_headers}
    top = cells[:HEADER_SEARCH_ROWS]
    hits = [sum(header_key(v) in known for v in row if isinstance(v, str)) for row in top]
    if max(hits) > 0:
        return hits.index(max(hits)) + 1
    widths = [sum(v is not None for v in row) for row in top]
    widest = max(widths)
    for n, row in enumerate(top, start=1):
        if widths[n - 1] == widest and widest >= 2 and all(isinstance(v, str) for v in row if v is not None):
            return n
    raise InvalidInputError(f"cannot find the header row of {where} (no row of column names among its first "
                            f"{HEADER_SEARCH_ROWS}); pass --header-row N with the number of the row holding them")


def _column_names(header: list, *, where: str, row: int) -> list[tuple[int, str]]:
    """(index, name) of each headed column; a name twice is refused."""
    columns: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for index, value in enumerate(header):
        if value is None:
            continue
        name = str(value).strip()
        if name in seen:
            raise InvalidInputError(f"{where}: two columns of the header (row {row}) are named {name!r} (columns "
                                    f"{_letter(seen[name])} and {_letter(index)}); rename one, or pass --header-row "
                                    "N if the header is another row")
        seen[name] = index
        columns.append((index, name))
    return columns


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


# -- writing -------------------------------------------------------------------------------------------------------

def write_sheet(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], *, title: str = "data") -> None:
    """Write ``header`` then ``rows`` to one sheet of a new workbook at ``path``: text as text (never a formula),
    dates as dates, numbers and booleans as they are, None, NaN and NaT as empty cells."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet(_sheet_title(title))
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)

    def cell(value: object, *, header: bool = False) -> WriteOnlyCell:
        value = _excel_value(value)
        made = WriteOnlyCell(sheet, value=value)
        if isinstance(value, str):
            made.data_type = "s"  # after the value: openpyxl made "=..." a formula and "#N/A" an error
            if value.startswith(FORMULA_STARTS):
                made.quotePrefix = True
        elif isinstance(value, dt.datetime):
            made.number_format = "yyyy-mm-dd hh:mm:ss"
        elif isinstance(value, dt.date):
            made.number_format = "yyyy-mm-dd"
        if header:
            made.font = bold
        return made

    sheet.append([cell(name, header=True) for name in header])
    for row in rows:
        sheet.append([cell(value) for value in row])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)


def write_frame(frame: pd.DataFrame, path: Path, *, title: str = "data") -> None:
    """Write ``frame`` (no index) as :func:`write_sheet` does, its column names as the header."""
    write_sheet(path, [str(c) for c in frame.columns], frame.itertuples(index=False, name=None), title=title)


def _excel_value(value: object) -> object:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return value.item()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)  # Excel has no time zones; the service's times are UTC
    return value


def _sheet_title(title: str) -> str:
    """A sheet name Excel accepts: at most 31 characters, none of []:*?/\\."""
    cleaned = "".join("_" if c in "[]:*?/\\" else c for c in title)[:31]
    return cleaned or "data"
