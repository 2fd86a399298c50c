"""A whole file to cards: decode, find the delimiter and the header, read every record."""

from __future__ import annotations

from dataclasses import dataclass

from crm_core.client_csv.columns import check_header, find_header, requisite_title
from crm_core.client_csv.decoding import readings
from crm_core.client_csv.errors import CsvError
from crm_core.client_csv.records import delimiters, records
from crm_core.client_csv.rows import ParsedRow, read_row, requisites_text


class _NoHeader(CsvError):
    """No name column in this reading of the file; another encoding may still find one."""


@dataclass(frozen=True, slots=True)
class ParsedCsv:
    encoding: str
    delimiter: str
    header_line: int
    columns: dict[str, str]  # card field -> the (first) column title that feeds it
    unknown_columns: list[str]  # titles stored in custom_fields
    rows: list[ParsedRow]


def read_clients_csv(data: bytes) -> ParsedCsv:
    """Decode, find the delimiter and the header, and turn every record into a card or problems."""
    no_header: _NoHeader | None = None
    for text, encoding in readings(data):
        try:
            return _read_text(text, encoding)
        except _NoHeader as exc:
            no_header = no_header or exc
    assert no_header is not None
    raise no_header


def _read_text(text: str, encoding: str) -> ParsedCsv:
    text, candidates = delimiters(text)
    for delimiter in candidates:
        found = find_header(text, delimiter)
        if found is not None:
            break
    else:
        names = ", ".join(repr(a) for a in ("Наименование", "Название", "Контрагент", "name"))
        raise _NoHeader(f"no name column: the header must have a column such as {names}")
    header_line, columns = found
    check_header(columns, header_line)
    titles: dict[str, str] = {}
    for column in columns:
        if column.target:
            titles.setdefault(column.target, column.title)
    rows: list[ParsedRow] = []
    unknown: dict[str, None] = {c.title: None for c in columns if c.target is None and not c.blank}
    for line, cells in records(text, delimiter):
        if line <= header_line or not any(c.strip() for c in cells):
            continue
        rows.append(read_row(line, cells, columns, titles))
        for column in columns[: len(cells)]:
            if column.blank and cells[column.index].strip():
                unknown.setdefault(column.title, None)
    _mark_duplicates(rows, titles)
    return ParsedCsv(encoding, delimiter, header_line, titles, list(unknown), rows)


def _mark_duplicates(rows: list[ParsedRow], titles: dict[str, str]) -> None:
    first: dict[tuple[str, str | None], int] = {}
    for row in rows:
        if row.requisites is None:
            continue
        if row.requisites in first:
            row.reject(
                f"{requisite_title(titles)}: INN {requisites_text(row.requisites)} "
                f"is already on line {first[row.requisites]}"
            )
        else:
            first[row.requisites] = row.line
