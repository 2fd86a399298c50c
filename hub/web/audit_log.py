"""/api/audit: the admin's view of who read, changed or exported what."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import and_

from crm_core.models import AuditEntry, Role
from crm_core.paging import fetch_page
from hub.web.endpoints import Api, page_response, session_of
from hub.web.schemas import AuditPage, AuditQuery

api = Api()


@api.route(
    "GET",
    "/api/audit",
    summary="The audit log, newest first",
    roles={Role.admin},
    tag="audit",
    query=AuditQuery,
    response=AuditPage,
)
async def audit_log(request: web.Request, query: AuditQuery) -> web.Response:
    filters = [
        getattr(AuditEntry, name) == value
        for name, value in query.model_dump(include={"entity", "entity_id", "username", "action"}).items()
        if value is not None
    ]
    page = await fetch_page(
        session_of(request), AuditEntry, and_(True, *filters), (AuditEntry.id.desc(),), query.page, query.per_page
    )
    return page_response(page, audit_to_dict)


def audit_to_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "username": entry.username,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "ip": entry.ip,
        "details": entry.details,
    }
