"""CSV files whose cells cannot run as spreadsheet formulas, and reading them back exactly.

Every CSV the service writes goes through :func:`write_rows` or :func:`write_frame`. A text cell that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be run as a formula by Excel, LibreOffice or
WPS (``=HYPERLINK(...)``, ``@SUM(...)``), so it is written with an apostrophe in front (OWASP, "CSV Injection").
So is a text cell that starts with an apostrophe followed by one of those or by another apostrophe: that is the
spreadsheets' own rule (a leading apostrophe means "the rest is text" and is not shown), and it makes the change
reversible: :func:`restore` (used by the CSV import) removes exactly one leading apostrophe where the export added
one, so export then import gives back the stored text unchanged. Numbers are never changed (-3.5 stays a number).

Every file starts with a UTF-8 byte-order mark: without it Excel on Chinese Windows reads a CSV as GBK and shows
UTF-8 Chinese garbled; every other reader (pandas, GDAL, LibreOffice, the import) skips it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

#: What makes a spreadsheet read a cell as a formula, when the cell starts with it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTED_STARTS = (*FORMULA_STARTS, "'")


def neutralise(value: object) -> object:
    """``value`` as written into a CSV cell: text that a spreadsheet would run gets an apostrophe in front."""
    if isinstance(value, str) and (value.startswith(FORMULA_STARTS)
                                   or (value.startswith("'") and value[1:].startswith(_QUOTED_STARTS))):
        return "'" + value
    return value


def restore(cell: str) -> str:
    """The text the service exported as ``cell``: :func:`neutralise` undone (one leading apostrophe removed where
    the export added it); any other cell unchanged."""
    if cell.startswith("'") and cell[1:].startswith(_QUOTED_STARTS):
        return cell[1:]
    return cell


def write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], *,
               encoding: str = "utf-8-sig") -> None:
    """Write ``header`` then ``rows`` to ``path``, each text cell neutralised."""
    with Path(path).open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([neutralise(value) for value in row] for row in rows)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """``header`` then ``rows`` as CSV text, each text cell neutralised (for answers sent over HTTP)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([neutralise(value) for value in row] for row in rows)
    return buffer.getvalue()


def write_frame(frame: pd.DataFrame, path: Path, *, encoding: str = "utf-8-sig") -> None:
    """Write ``frame`` (no index) to ``path``, each text cell neutralised; numeric columns as they are."""
    text_columns = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    safe = frame.copy()
    for column in text_columns:
        safe[column] = frame[column].map(neutralise, na_action="ignore")
    safe.to_csv(path, index=False, encoding=encoding)
