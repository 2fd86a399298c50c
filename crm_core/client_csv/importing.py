"""A read file into the database: checks only the database can make, then cards created under SAVEPOINTs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from crm_core import audit
from crm_core.audit import Actor
from crm_core.client_csv.columns import requisite_title
from crm_core.client_csv.reading import ParsedCsv, read_clients_csv
from crm_core.client_csv.rows import ParsedRow, RowError, requisites_text
from crm_core.clients import ClientBook
from crm_core.errors import DomainError
from crm_core.models import Client, User

_QUERY_CHUNK = 500


@dataclass(slots=True)
class ImportReport:
    encoding: str
    delimiter: str
    rows_total: int
    rows_ok: int
    errors: list[RowError]
    imported: int
    created_ids: list[int]
    dry_run: bool
    applied: bool  # False for a dry run and for an all-or-nothing run refused because of errors
    unknown_columns: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "rows_total": self.rows_total,
            "rows_ok": self.rows_ok,
            "errors": [{"line": e.line, "reason": e.reason} for e in self.errors],
            "imported": self.imported,
            "created_ids": list(self.created_ids),
            "dry_run": self.dry_run,
            "applied": self.applied,
            "unknown_columns": list(self.unknown_columns),
        }


async def import_clients(
    book: ClientBook,
    data: bytes,
    actor: Actor,
    *,
    dry_run: bool,
    all_or_nothing: bool = True,
) -> ImportReport:
    """Validate a CSV file against the rules and the database, then (unless ``dry_run``) create.

    Runs in the caller's session and leaves committing to the caller.  With
    ``all_or_nothing`` one bad row means nothing is created; otherwise the good rows are
    created and the bad ones reported.  Creation happens under SAVEPOINTs, so a failure
    mid-way never leaves part of the file behind.
    """
    parsed = read_clients_csv(data)
    await _reject_existing_requisites(book, parsed)
    await _resolve_owners(book, parsed)
    rows = parsed.rows
    created: list[int] = []
    refused = dry_run or (all_or_nothing and any(r.problems for r in rows))
    if not refused:
        good = [r for r in rows if r.client is not None]
        if all_or_nothing:
            created = await _create_all(book, good, actor)
            refused = len(created) != len(good)
        else:
            created = await _create_each(book, good, actor)
    errors = [r.error for r in rows if r.error is not None]
    report = ImportReport(
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        rows_total=len(rows),
        rows_ok=len(rows) - len(errors),
        errors=errors,
        imported=len(created),
        created_ids=created,
        dry_run=dry_run,
        applied=not refused,
        unknown_columns=parsed.unknown_columns,
    )
    if not dry_run:
        audit.record(
            book.session,
            actor,
            "import",
            "client",
            None,
            source="csv",
            rows_total=report.rows_total,
            rows_ok=report.rows_ok,
            errors=len(errors),
            imported=report.imported,
            applied=report.applied,
            all_or_nothing=all_or_nothing,
            encoding=report.encoding,
        )
    return report


async def _create_all(book: ClientBook, rows: list[ParsedRow], actor: Actor) -> list[int]:
    """Every row or none: one SAVEPOINT; the first failure undoes the rows before it."""
    created: list[int] = []
    current: ParsedRow | None = None
    try:
        async with book.session.begin_nested():
            for current in rows:
                assert current.client is not None
                created.append((await book.create(current.client, actor, source="csv")).id)
    except (DomainError, DBAPIError) as exc:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            raise
        if current is not None:
            current.reject(_failure(exc))
        return []
    return created


async def _create_each(book: ClientBook, rows: list[ParsedRow], actor: Actor) -> list[int]:
    """Good rows only: a SAVEPOINT per row, so one failure loses that row alone."""
    created: list[int] = []
    for row in rows:
        assert row.client is not None
        try:
            async with book.session.begin_nested():
                created.append((await book.create(row.client, actor, source="csv")).id)
        except (DomainError, DBAPIError) as exc:
            if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                raise
            row.reject(_failure(exc))
    return created


def _failure(exc: Exception) -> str:
    if isinstance(exc, DBAPIError):
        return f"the database refused the card: {str(exc.orig).splitlines()[0] if exc.orig else exc}"
    return str(exc)


async def _reject_existing_requisites(book: ClientBook, parsed: ParsedCsv) -> None:
    """Rows whose INN+KPP a (not deleted) client already has."""
    inns = sorted({r.requisites[0] for r in parsed.rows if r.requisites})
    existing: dict[tuple[str, str | None], tuple[int, str]] = {}
    for start in range(0, len(inns), _QUERY_CHUNK):
        result = await book.session.execute(
            select(Client.id, Client.name, Client.inn, Client.kpp)
            .where(Client.inn.in_(inns[start : start + _QUERY_CHUNK]), Client.deleted_at.is_(None))
            .order_by(Client.id)
        )
        for client_id, name, inn, kpp in result:
            if inn is not None:  # always: the query asked for these INNs
                existing.setdefault((inn, kpp), (client_id, name))
    title = requisite_title(parsed.columns)
    for row in parsed.rows:
        if row.requisites in existing:
            client_id, name = existing[row.requisites]
            row.reject(f"{title}: client {client_id} ({name}) already has INN {requisites_text(row.requisites)}")


async def _resolve_owners(book: ClientBook, parsed: ParsedCsv) -> None:
    """Owners given by id, user name or full name, as user ids; rows naming no (single) user are rejected."""
    owners = [r for r in parsed.rows if r.owner]
    if not owners:
        return
    users = (await book.session.execute(select(User.id, User.username, User.full_name))).all()
    by_id = {u.id for u in users}
    by_login = {u.username.casefold(): u.id for u in users}
    by_name: dict[str, list[int]] = {}
    for u in users:
        if u.full_name:
            by_name.setdefault(" ".join(u.full_name.casefold().split()), []).append(u.id)
    owner_title = parsed.columns["owner"]
    for row in owners:
        assert row.owner is not None
        wanted = row.owner.strip()
        if re.fullmatch(r"[0-9]+", wanted):
            user_id = int(wanted) if int(wanted) in by_id else None
        else:
            named = by_name.get(" ".join(wanted.casefold().split()), [])
            user_id = by_login.get(wanted.casefold()) or (named[0] if len(named) == 1 else None)
            if user_id is None and len(named) > 1:
                row.reject(f"{owner_title}: several users are called {wanted!r}; give the user name")
                continue
        if user_id is None:
            row.reject(f"{owner_title}: no user {wanted!r}")
        elif row.client is not None:
            row.client = row.client.model_copy(update={"owner_id": user_id})
