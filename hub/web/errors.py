"""Turning failures into JSON answers: domain errors keep their meaning, crashes get an id."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from crm_core.client_csv import CsvError
from crm_core.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from hub.web.endpoints import ApiError

log = logging.getLogger("hub.web")


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors(include_url=False)
    ]


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except ValidationError as exc:
        raise ApiError(422, "invalid", "the input is not valid", validation_details(exc)) from None
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except Conflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except InvalidInput as exc:
        details = [{"field": exc.field, "message": str(exc)}] if exc.field else None
        raise ApiError(422, "invalid", str(exc), details) from None
    except AuthenticationFailed as exc:
        raise ApiError(401, "unauthenticated", str(exc)) from None
    except CsvError as exc:
        raise ApiError(400, "bad_file", str(exc)) from None
    except Exception:
        error_id = uuid.uuid4().hex[:12]
        log.exception("unhandled error", extra={"fields": {"error_id": error_id, "path": request.path}})
        raise ApiError(500, "internal", f"internal error {error_id}; the log has the details") from None
