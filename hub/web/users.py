"""/api/users and /api/me: who may use the hub, in which role, on which extension."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm_core import audit
from crm_core.errors import InvalidInput
from crm_core.models import Role, User
from crm_core.users import NewUser, UserDirectory
from hub.web.endpoints import ALL_ROLES, Api, actor_of, current_user, json_response, session_of
from hub.web.schemas import UserCreate, UserList, UserOut, UserPatch

api = Api()
ADMIN = {Role.admin}
USER = r"/api/users/{id:\d+}"


def user_to_dict(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role.value,
        "extension": user.extension,
        "locale": user.locale,
        "is_active": user.is_active,
        "created_at": user.created_at.isoformat(),
    }


def _directory(request: web.Request) -> UserDirectory:
    return UserDirectory(session_of(request))


def _not_locking_out(request: web.Request, user: User, *, role: Role, active: bool) -> None:
    """An admin may not take their own admin role or account away: nobody could give it back."""
    if user.id == current_user(request).id and (role is not Role.admin or not active):
        raise InvalidInput("you cannot take away your own admin role or account; ask another admin", field="role")


@api.route("GET", "/api/me", summary="The user making the request", roles=ALL_ROLES, tag="users", response=UserOut)
async def me(request: web.Request) -> web.Response:
    return json_response(user_to_dict(current_user(request)))


@api.route("GET", "/api/users", summary="List users", roles=ADMIN, tag="users", response=UserList)
async def list_users(request: web.Request) -> web.Response:
    return json_response({"items": [user_to_dict(u) for u in await _directory(request).list()]})


@api.route(
    "POST",
    "/api/users",
    summary="Create a user",
    roles=ADMIN,
    tag="users",
    body=UserCreate,
    response=UserOut,
    response_status=201,
    errors=(409, 422),
)
async def create_user(request: web.Request, body: UserCreate) -> web.Response:
    user = await _directory(request).create(
        NewUser(
            username=body.username,
            role=body.role,
            password=body.password,
            extension=body.extension,
            full_name=body.full_name,
            locale=body.locale,
        )
    )
    audit.record(
        session_of(request), actor_of(request), "create", "user", user.id, username=user.username, role=user.role.value
    )
    return json_response(user_to_dict(user), status=201, headers={"Location": f"/api/users/{user.id}"})


@api.route("GET", USER, summary="Read a user", roles=ADMIN, tag="users", response=UserOut, errors=(404,))
async def read_user(request: web.Request) -> web.Response:
    return json_response(user_to_dict(await _directory(request).get(int(request.match_info["id"]))))


@api.route(
    "PATCH",
    USER,
    summary="Change a user's role, password, extension or state",
    roles=ADMIN,
    tag="users",
    body=UserPatch,
    response=UserOut,
    errors=(404, 409, 422),
)
async def update_user(request: web.Request, body: UserPatch) -> web.Response:
    directory = _directory(request)
    user = await directory.get(int(request.match_info["id"]))
    changes = body.model_dump(exclude_unset=True)
    _not_locking_out(request, user, role=changes.get("role", user.role), active=changes.get("is_active", True))
    await directory.update(user, **changes)
    shown = {k: v for k, v in changes.items() if k != "password"}
    if "password" in changes:
        shown["password"] = "changed"
    audit.record(
        session_of(request),
        actor_of(request),
        "update",
        "user",
        user.id,
        changed={k: str(v.value if isinstance(v, Role) else v) for k, v in shown.items()},
    )
    return json_response(user_to_dict(user))


@api.route(
    "DELETE",
    USER,
    summary="Deactivate a user (history keeps their name)",
    roles=ADMIN,
    tag="users",
    response=UserOut,
    errors=(404,),
)
async def deactivate_user(request: web.Request) -> web.Response:
    directory = _directory(request)
    user = await directory.get(int(request.match_info["id"]))
    _not_locking_out(request, user, role=user.role, active=False)
    user = await directory.update(user, is_active=False)
    audit.record(session_of(request), actor_of(request), "deactivate", "user", user.id)
    return json_response(user_to_dict(user))
