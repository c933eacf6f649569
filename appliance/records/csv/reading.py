"""Reading a CSV file: decoding it, finding its separator, and parsing it into a header and numbered rows.

Reading accepts UTF-8 with or without a byte-order mark, ``;`` or ``,``
between cells (whichever the header line uses more), and quoted cells with
line breaks. Line numbers are the file's own: the header is line 1, and a
record that spans lines is named by the line it starts on.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from appliance.errors import BadRequest

MAX_COLUMNS = 200


@dataclass
class CsvTable:
    """A parsed CSV file: its header, its data rows as ``(line, cells)``, and the separator found."""

    header: list[str]
    rows: list[tuple[int, list[str]]]
    delimiter: str


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read). Save it as 'CSV UTF-8' and try again."
        ) from None


def _delimiter(text: str) -> str:
    # The header names fields, so it holds no separators of its own: the one it uses most is the one.
    first = text.split("\n", 1)[0]
    return ";" if first.count(";") > first.count(",") else ","


def read_csv(data: bytes | str, *, max_rows: int | None = None) -> CsvTable:
    """Parse a CSV file; raises :class:`BadRequest` saying what is wrong (not UTF-8, empty, bad quoting, ...).

    Rows whose cells are all empty are skipped. The header's names are
    stripped of surrounding spaces; an empty or repeated name is refused.
    A file with more than ``max_rows`` data rows is refused, naming both
    numbers (the rows past the limit are counted, never kept).
    """
    text = _decode(data)
    if not text.strip():
        raise BadRequest("The file is empty.")
    if "\x00" in text:
        raise BadRequest("The file holds NUL characters; it is not a CSV text file.")
    delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    line = 1
    counted = 0
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if header is None:
                header = [c.strip() for c in cells]
                continue
            if not any(c.strip() for c in cells):
                continue
            counted += 1
            if max_rows is None or counted <= max_rows:
                rows.append((start, cells))
    except csv.Error as exc:
        raise BadRequest(f"Line {reader.line_num}: the file is not valid CSV ({exc}).") from None
    if max_rows is not None and counted > max_rows:
        raise BadRequest(
            f"The file has {counted} rows; at most {max_rows} can be imported at once. Split it into smaller files.",
            rows=counted,
            max_rows=max_rows,
        )
    if not header or not any(header):
        raise BadRequest("The first line must name the columns.")
    if len(header) > MAX_COLUMNS:
        raise BadRequest(f"The file has {len(header)} columns; at most {MAX_COLUMNS} are read.")
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if name and name.lower() in seen:
            raise BadRequest(f"Column {position}: the name {name!r} appears twice in the header.")
        seen.add(name.lower())
    return CsvTable(header, rows, delimiter)
