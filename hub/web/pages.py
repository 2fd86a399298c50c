"""Server-rendered pages: the login form and the start page (the full UI has its own issue)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from crm_core.errors import AuthenticationFailed
from crm_core.models import Role, User
from hub.web.auth import authenticate, same_origin
from hub.web.endpoints import ApiError
from hub.web.login import log_in, log_out, set_session_cookie
from hub.web.state import CONTEXT, SESSION

routes = web.RouteTableDef()
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)

TEXTS: dict[str, dict[str, Any]] = {
    "ru": {
        "login_title": "Вход",
        "unsubscribe_title": "Отписка от рассылки",
        "unsubscribe_question": "Больше не получать наши рассылки на этот адрес?",
        "unsubscribe_button": "Отписаться",
        "unsubscribe_done": "Готово: рассылки на этот адрес больше не придут.",
        "username": "Имя пользователя",
        "password": "Пароль",
        "login": "Войти",
        "logout": "Выйти",
        "welcome": "Здравствуйте",
        "bad_login": "Неверное имя пользователя или пароль",
        "too_many": "Слишком много неудачных попыток, попробуйте позже",
        "home_intro": "Хаб работает. Клиентская база доступна через API.",
        "export": "Выгрузка клиентов (CSV)",
        "roles": {
            "admin": "администратор",
            "operator": "оператор",
            "marketer": "маркетолог",
            "accountant": "бухгалтер",
        },
        "operator_title": "Входящие звонки",
        "extension": "внутренний",
        "op": {
            "connected": "На связи: звонки появятся здесь",
            "disconnected": "Нет связи с хабом, переподключаюсь…",
            "anonymous": "Номер скрыт",
            "queue": "Очередь",
            "contact": "Контакт",
            "inn": "ИНН",
            "owner": "Ответственный",
            "several": "Номер есть у нескольких клиентов:",
            "unknown": "Неизвестный номер",
            "create": "Создать клиента",
            "new_name": "Название клиента",
            "created": "Создан",
            "ringing": "Входящий звонок",
            "inbound": "входящий",
            "outbound": "исходящий",
            "internal": "внутренний",
            "answered": "отвечен",
            "missed": "пропущен",
            "answered_elsewhere": "Ответил другой оператор",
            "caller_hung_up": "Звонящий положил трубку",
            "no_answer": "Не отвечено",
            "ended": "Звонок завершён",
        },
    },
    "en": {
        "login_title": "Log in",
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_question": "Stop receiving our mailings at this address?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribe_done": "Done: no more mailings will be sent to this address.",
        "username": "User name",
        "password": "Password",
        "login": "Log in",
        "logout": "Log out",
        "welcome": "Hello",
        "bad_login": "Wrong user name or password",
        "too_many": "Too many failed attempts; try again later",
        "home_intro": "The hub is running. The client base is served by the API.",
        "export": "Export clients (CSV)",
        "roles": {"admin": "admin", "operator": "operator", "marketer": "marketer", "accountant": "accountant"},
        "operator_title": "Incoming calls",
        "extension": "extension",
        "op": {
            "connected": "Connected: calls will pop up here",
            "disconnected": "No connection to the hub, retrying…",
            "anonymous": "Number withheld",
            "queue": "Queue",
            "contact": "Contact",
            "inn": "INN",
            "owner": "Owner",
            "several": "Several clients have this number:",
            "unknown": "Unknown number",
            "create": "Create client",
            "new_name": "Client name",
            "created": "Created",
            "ringing": "Incoming call",
            "inbound": "inbound",
            "outbound": "outbound",
            "internal": "internal",
            "answered": "answered",
            "missed": "missed",
            "answered_elsewhere": "Another operator answered",
            "caller_hung_up": "The caller hung up",
            "no_answer": "Not answered",
            "ended": "Call ended",
        },
    },
}


def _lang(request: web.Request, user: User | None) -> str:
    if user is not None and user.locale in TEXTS:
        return user.locale
    accepted = request.headers.get("Accept-Language", "")
    return "en" if accepted.lower().startswith("en") else "ru"


def _render(request: web.Request, template: str, user: User | None, status: int = 200, **values: Any) -> web.Response:
    lang = _lang(request, user)
    t = TEXTS[lang]
    html = _env.get_template(template).render(
        lang=lang, t=t, user=user, role_title=t["roles"][user.role.value] if user else "", **values
    )
    return web.Response(
        text=html,
        content_type="text/html",
        status=status,
        headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
            "X-Frame-Options": "DENY",
        },
    )


def render_public(request: web.Request, template: str, **values: Any) -> web.Response:
    """A page for someone not logged in (a mail recipient), in the language their browser asks for."""
    return _render(request, template, None, **values)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    return _render(request, "login.html", None, next=_safe_next(request.query.get("next")), error="", username="")


@routes.post("/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    if not same_origin(request):
        raise web.HTTPForbidden(text="cross-site login refused")
    form = await request.post()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    async with request.app[CONTEXT].transaction() as session:
        request[SESSION] = session
        try:
            _user, cookie = await log_in(request, username, password)
        except AuthenticationFailed:
            error = TEXTS[_lang(request, None)]["bad_login"]
            return _render(request, "login.html", None, status=401, next=target, error=error, username=username)
        except ApiError as exc:
            error = TEXTS[_lang(request, None)]["too_many"]
            return _render(request, "login.html", None, status=exc.status, next=target, error=error, username=username)
    response = web.HTTPSeeOther(target)
    set_session_cookie(request, response, cookie)
    raise response


@routes.post("/logout")
async def logout_submit(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/login")
    async with request.app[CONTEXT].transaction() as session:
        request[SESSION] = session
        await log_out(request, response)
    raise response


async def _page_user(request: web.Request, roles: frozenset[Role] = frozenset(Role)) -> User:
    """The logged-in user allowed on this page; others go to the login form or get 403."""
    async with request.app[CONTEXT].transaction() as session:
        user = await authenticate(request, session)
    if user is None:
        raise web.HTTPSeeOther(f"/login?next={request.path}")
    if user.role not in roles:
        raise web.HTTPForbidden(text=f"the {user.role.value} role may not open this page")
    return user


@routes.get("/operator")
async def operator_page(request: web.Request) -> web.Response:
    return _render(request, "operator.html", await _page_user(request, frozenset({Role.operator, Role.admin})))


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    return _render(request, "home.html", await _page_user(request))
