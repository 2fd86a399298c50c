"""Counterparties in and out of CSV: what an accountant exports from 1C or Excel, and back.

Reading is pure: bytes -> encoding, delimiter, header mapping, then for every data row
either a validated ``ClientIn`` or the problems found, each naming the column as written
in the file, at the physical line where the record starts.  ``import_clients`` adds what
only the database knows (clients that already have the INN+KPP, owners given by name)
and creates the cards through ``ClientBook`` inside a SAVEPOINT of the caller's session.
``export_clients_csv`` writes the same columns, so an export reads back as the same cards.

Cell conventions, shared by import and export:
- phones, e-mails, tags: several per cell, separated by ``,`` or ``;``; a phone or
  e-mail may carry a label as ``label: value``;
- addresses: one column per kind, one address per line of the cell;
- contacts: one per line (or ``;``), parts separated by ``,``:
  ``Surname Name Patronymic, position, phones..., e-mails..., note``.

The stages, one module each: ``decoding`` (bytes to text), ``records`` (delimiter and
records), ``columns`` (the header), ``cells`` and ``rows`` (a record to a card),
``reading`` (a whole file), ``importing`` (into the database), ``exporting`` (back to CSV).
"""

from crm_core.client_csv.decoding import decode_csv
from crm_core.client_csv.errors import CsvError
from crm_core.client_csv.exporting import export_clients_csv
from crm_core.client_csv.importing import ImportReport, import_clients
from crm_core.client_csv.reading import ParsedCsv, read_clients_csv
from crm_core.client_csv.rows import ParsedRow, RowError

__all__ = [
    "CsvError",
    "ImportReport",
    "ParsedCsv",
    "ParsedRow",
    "RowError",
    "decode_csv",
    "export_clients_csv",
    "import_clients",
    "read_clients_csv",
]
