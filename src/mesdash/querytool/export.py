"""CSV answers of the query tool's tabs: UTF-8 with a BOM, CRLF lines, upper-case columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from fastapi.responses import Response

from mesdash.core.batch.csv_export import BOM, MEDIA_TYPE, attachment, csv_cell  # one format for every CSV


def rows_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> bytes:
    """``rows`` (dicts) as CSV; columns default to the first row's keys in order."""
    names = list(columns or (rows[0].keys() if rows else []))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(names)
    writer.writerows([csv_cell(row.get(name)) for name in names] for row in rows)
    return BOM + buffer.getvalue().encode("utf-8")


def csv_response(
    rows: Sequence[dict[str, Any]], filename: str, columns: Sequence[str] | None = None
) -> Response:
    return Response(rows_csv(rows, columns), media_type=MEDIA_TYPE, headers=attachment(filename))
