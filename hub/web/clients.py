"""/api/clients: the card, its search, timeline, CSV import and export; /api/lookup."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from crm_core import audit
from crm_core.client_csv import export_clients_csv, import_clients
from crm_core.client_data import ClientIn, client_to_dict
from crm_core.client_notes import ClientNotes
from crm_core.clients import ClientBook, ClientQuery, Lookup
from crm_core.models import Role
from crm_core.timeline import client_timeline
from hub.onec import document_items
from hub.web.card_schemas import NoteIn, NoteOut
from hub.web.endpoints import ALL_ROLES, Api, actor_of, json_response, page_response, session_of
from hub.web.schemas import (
    ClientOut,
    ClientPage,
    ClientPatch,
    ClientSearch,
    EmailLookupQuery,
    ImportQuery,
    ImportReportOut,
    LookupOut,
    PhoneLookupQuery,
    TimelineOut,
    TimelineQuery,
)
from hub.web.state import CONTEXT, ONEC

api = Api()
EDITORS = {Role.admin, Role.operator, Role.accountant}
BOOKKEEPERS = {Role.admin, Role.accountant}
CLIENT = r"/api/clients/{id:\d+}"
EXPORT_PAGE = 1000


def _book(request: web.Request) -> ClientBook:
    return ClientBook(session_of(request), request.app[CONTEXT].rules)


def _client_id(request: web.Request) -> int:
    return int(request.match_info["id"])


def _query(search: ClientSearch, **overrides: Any) -> ClientQuery:
    return ClientQuery(**{**search.model_dump(mode="json"), **overrides})


@api.route(
    "GET",
    "/api/clients",
    summary="Search clients by name, INN, phone, e-mail or tag",
    roles=ALL_ROLES,
    tag="clients",
    query=ClientSearch,
    response=ClientPage,
)
async def search_clients(request: web.Request, query: ClientSearch) -> web.Response:
    return page_response(await _book(request).search(_query(query)), client_to_dict)


@api.route(
    "POST",
    "/api/clients",
    summary="Create a client card",
    roles=EDITORS,
    tag="clients",
    body=ClientIn,
    response=ClientOut,
    response_status=201,
    errors=(409, 422),
)
async def create_client(request: web.Request, body: ClientIn) -> web.Response:
    client = await _book(request).create(body, actor_of(request))
    return json_response(client_to_dict(client), status=201, headers={"Location": f"/api/clients/{client.id}"})


@api.route(
    "GET",
    CLIENT,
    summary="Read a client card (written to the audit log)",
    roles=ALL_ROLES,
    tag="clients",
    response=ClientOut,
    errors=(404,),
)
async def read_client(request: web.Request) -> web.Response:
    client = await _book(request).get(_client_id(request))
    audit.record(session_of(request), actor_of(request), "read", "client", client.id)
    return json_response(client_to_dict(client), headers={"ETag": f'"{client.version}"'})


@api.route(
    "PATCH",
    CLIENT,
    summary="Change some fields of a client card",
    roles=EDITORS,
    tag="clients",
    body=ClientPatch,
    response=ClientOut,
    errors=(404, 409, 422),
)
async def update_client(request: web.Request, body: Any) -> web.Response:
    changes = body.model_dump(exclude_unset=True, mode="json")
    version = changes.pop("version", None)
    if_match = request.headers.get("If-Match", "").strip('"')
    if version is None and if_match.isdigit():
        version = int(if_match)
    client, _ = await _book(request).update(_client_id(request), changes, actor_of(request), expected_version=version)
    return json_response(client_to_dict(client), headers={"ETag": f'"{client.version}"'})


@api.route(
    "DELETE",
    CLIENT,
    summary="Delete a client card (its history is kept)",
    roles={Role.admin},
    tag="clients",
    response_status=204,
    errors=(404,),
)
async def delete_client(request: web.Request) -> web.Response:
    await _book(request).delete(_client_id(request), actor_of(request))
    return web.Response(status=204)


@api.route(
    "GET",
    CLIENT + "/timeline",
    summary="Everything that happened with a client, newest first",
    roles=ALL_ROLES,
    tag="clients",
    query=TimelineQuery,
    response=TimelineOut,
    errors=(404,),
)
async def timeline(request: web.Request, query: TimelineQuery) -> web.Response:
    client = await _book(request).get(_client_id(request))
    items = await client_timeline(session_of(request), client.id, query.before, query.limit)
    onec = request.app.get(ONEC)
    if onec is not None:  # 1C's documents, as fresh as 1C answers within a second or two, else cached
        documents = document_items(await onec.documents(client.id, timeout=2.0))
        items = sorted(
            items + [d for d in documents if query.before is None or d.at < query.before],
            key=lambda item: item.at,
            reverse=True,
        )[: query.limit]
    next_before = items[-1].at.isoformat() if len(items) == query.limit else None
    return json_response({"items": [i.as_dict() for i in items], "next_before": next_before})


@api.route(
    "POST",
    CLIENT + "/notes",
    summary="Write a note on the card (shown in its timeline)",
    roles=EDITORS,
    tag="clients",
    body=NoteIn,
    response=NoteOut,
    response_status=201,
    errors=(404, 422),
)
async def add_note(request: web.Request, body: NoteIn) -> web.Response:
    note = await ClientNotes(session_of(request)).add(_client_id(request), body.text, actor_of(request))
    return json_response(
        {
            "id": note.id,
            "client_id": note.client_id,
            "text": note.text,
            "author": note.author,
            "created_at": note.created_at.isoformat(),
        },
        status=201,
    )


@api.route(
    "POST",
    "/api/clients/import",
    summary="Import clients from CSV (cp1251 or UTF-8; ; , or tab)",
    roles=BOOKKEEPERS,
    tag="clients",
    query=ImportQuery,
    body_media_type="text/csv",
    response=ImportReportOut,
    errors=(400, 413, 422),
)
async def import_csv(request: web.Request, query: ImportQuery) -> web.Response:
    data = await request.read()
    report = await import_clients(
        _book(request), data, actor_of(request), dry_run=query.dry_run, all_or_nothing=query.mode == "all"
    )
    status = 422 if report.errors and not report.applied and not query.dry_run else 200
    return json_response(report.as_dict(), status=status)


@api.route(
    "GET",
    "/api/clients/export",
    summary="Export clients as CSV (UTF-8 with BOM, ;), audited",
    roles=BOOKKEEPERS,
    tag="clients",
    query=ClientSearch,
    response_media_type="text/csv",
)
async def export_csv(request: web.Request, query: ClientSearch) -> web.Response:
    book = _book(request)
    clients = []
    page_no = 1
    while True:
        page = await book.search(_query(query, page=page_no, per_page=EXPORT_PAGE))
        clients.extend(page.items)
        if page_no * EXPORT_PAGE >= page.total:
            break
        page_no += 1
    filters = query.model_dump(exclude_defaults=True, mode="json")
    audit.record(session_of(request), actor_of(request), "export", "client", None, count=len(clients), filters=filters)
    return web.Response(
        body=export_clients_csv(clients),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="clients.csv"'},
    )


def _lookup_json(lookup: Lookup) -> dict[str, Any]:
    return {
        "match": lookup.match,
        "ambiguous": lookup.is_ambiguous,
        "candidates": [asdict(c) for c in lookup.candidates],
    }


@api.route(
    "GET",
    "/api/lookup/phone",
    summary="Who is this number? Every matching client is returned",
    roles=ALL_ROLES,
    tag="lookup",
    query=PhoneLookupQuery,
    response=LookupOut,
)
async def lookup_phone(request: web.Request, query: PhoneLookupQuery) -> web.Response:
    return json_response(_lookup_json(await _book(request).find_by_phone(query.number)))


@api.route(
    "GET",
    "/api/lookup/email",
    summary="Who is this address? Every matching client is returned",
    roles=ALL_ROLES,
    tag="lookup",
    query=EmailLookupQuery,
    response=LookupOut,
)
async def lookup_email(request: web.Request, query: EmailLookupQuery) -> web.Response:
    return json_response(_lookup_json(await _book(request).find_by_email(query.address, query.fold_plus)))
