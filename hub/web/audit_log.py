"""/api/audit: the admin's view of who read, changed or exported what."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import and_, func, select

from crm_core.models import AuditEntry, Role
from hub.web.endpoints import Api, json_response, session_of
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
    where = and_(True, *filters)
    session = session_of(request)
    total = await session.scalar(select(func.count()).select_from(AuditEntry).where(where))
    rows = (
        await session.scalars(
            select(AuditEntry)
            .where(where)
            .order_by(AuditEntry.id.desc())
            .offset((query.page - 1) * query.per_page)
            .limit(query.per_page)
        )
    ).all()
    items = [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "username": r.username,
            "action": r.action,
            "entity": r.entity,
            "entity_id": r.entity_id,
            "ip": r.ip,
            "details": r.details,
        }
        for r in rows
    ]
    return json_response({"items": items, "total": total, "page": query.page, "per_page": query.per_page})
