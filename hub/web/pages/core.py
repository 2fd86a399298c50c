"""What every page shares: the templates, the texts in Russian and English, the menu each role
sees, and the check that refuses a page to a role that may not open it (the server's word, not
only the menu's)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from crm_core.models import Role, User
from hub.web.auth import authenticate
from hub.web.state import CONTEXT

Texts = dict[str, dict[str, Any]]  # language -> key -> text (or a nested dict of texts)
LANGUAGES = ("ru", "en")

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent.parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)

OPERATORS = frozenset({Role.operator, Role.admin})
MARKETERS = frozenset({Role.marketer, Role.admin})
ACCOUNTANTS = frozenset({Role.accountant, Role.admin})
ADMINS = frozenset({Role.admin})
EVERYONE = frozenset(Role)


@dataclass(frozen=True)
class MenuItem:
    href: str
    text: str  # a key of COMMON["menu"]
    roles: frozenset[Role]


MENU = (
    MenuItem("/operator", "calls", OPERATORS),
    MenuItem("/calls/missed", "missed", OPERATORS),
    MenuItem("/clients", "clients", EVERYONE),
    MenuItem("/campaigns", "campaigns", MARKETERS),
    MenuItem("/segments", "segments", MARKETERS),
    MenuItem("/suppressions", "suppressions", MARKETERS),
    MenuItem("/onec", "onec", ACCOUNTANTS),
    MenuItem("/admin/users", "users", ADMINS),
    MenuItem("/admin/connections", "connections", ADMINS),
    MenuItem("/admin/audit", "audit", ADMINS),
)

# Where each role lands after logging in.
START = {Role.operator: "/operator", Role.marketer: "/campaigns", Role.accountant: "/onec", Role.admin: "/admin/users"}

COMMON: Texts = {
    "ru": {
        "login_title": "Вход",
        "username": "Имя пользователя",
        "password": "Пароль",
        "login": "Войти",
        "logout": "Выйти",
        "bad_login": "Неверное имя пользователя или пароль",
        "too_many": "Слишком много неудачных попыток, попробуйте позже",
        "forbidden_title": "Нет доступа",
        "forbidden": "Эта страница недоступна для роли «{role}».",
        "not_found": "Не найдено",
        "language": "Язык",
        "roles": {
            "admin": "администратор",
            "operator": "оператор",
            "marketer": "маркетолог",
            "accountant": "бухгалтер",
        },
        "menu": {
            "calls": "Звонки",
            "missed": "Пропущенные",
            "clients": "Клиенты",
            "campaigns": "Рассылки",
            "segments": "Сегменты",
            "suppressions": "Стоп-лист",
            "onec": "1С",
            "users": "Пользователи",
            "connections": "Подключения",
            "audit": "Журнал",
        },
        "ui": {
            "save": "Сохранить",
            "saved": "Сохранено",
            "cancel": "Отмена",
            "delete": "Удалить",
            "edit": "Изменить",
            "create": "Создать",
            "search": "Найти",
            "loading": "Загрузка…",
            "empty": "Пусто",
            "error": "Ошибка",
            "more": "Ещё",
            "confirm": "Вы уверены?",
            "yes": "Да",
            "no": "Нет",
            "close": "Закрыть",
            "name": "Название",
            "status": "Состояние",
            "when": "Когда",
            "total": "Всего",
        },
        "unsubscribe_title": "Отписка от рассылки",
        "unsubscribe_question": "Больше не получать наши рассылки на этот адрес?",
        "unsubscribe_button": "Отписаться",
        "unsubscribe_done": "Готово: рассылки на этот адрес больше не придут.",
    },
    "en": {
        "login_title": "Log in",
        "username": "User name",
        "password": "Password",
        "login": "Log in",
        "logout": "Log out",
        "bad_login": "Wrong user name or password",
        "too_many": "Too many failed attempts; try again later",
        "forbidden_title": "Not allowed",
        "forbidden": "This page is not open to the {role} role.",
        "not_found": "Not found",
        "language": "Language",
        "roles": {"admin": "admin", "operator": "operator", "marketer": "marketer", "accountant": "accountant"},
        "menu": {
            "calls": "Calls",
            "missed": "Missed",
            "clients": "Clients",
            "campaigns": "Campaigns",
            "segments": "Segments",
            "suppressions": "Suppressions",
            "onec": "1C",
            "users": "Users",
            "connections": "Connections",
            "audit": "Audit log",
        },
        "ui": {
            "save": "Save",
            "saved": "Saved",
            "cancel": "Cancel",
            "delete": "Delete",
            "edit": "Edit",
            "create": "Create",
            "search": "Search",
            "loading": "Loading…",
            "empty": "Nothing here",
            "error": "Error",
            "more": "More",
            "confirm": "Are you sure?",
            "yes": "Yes",
            "no": "No",
            "close": "Close",
            "name": "Name",
            "status": "Status",
            "when": "When",
            "total": "Total",
        },
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_question": "Stop receiving our mailings at this address?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribe_done": "Done: no more mailings will be sent to this address.",
    },
}

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def language(request: web.Request, user: User | None) -> str:
    """The user's own choice; before login, what the browser asks for (Russian by default)."""
    if user is not None and user.locale in LANGUAGES:
        return user.locale
    accepted = request.headers.get("Accept-Language", "")
    return "en" if accepted.lower().startswith("en") else "ru"


def texts(lang: str, area: Texts | None = None) -> dict[str, Any]:
    return {**COMMON[lang], **(area[lang] if area else {})}


def render(
    request: web.Request,
    template: str,
    user: User | None,
    area: Texts | None = None,
    status: int = 200,
    **values: Any,
) -> web.Response:
    """A page in the user's language; ``area`` adds the texts of one kind of page (which its
    script also reads, from the page's ``#texts`` block)."""
    lang = language(request, user)
    t = texts(lang, area)
    menu = [item for item in MENU if user is not None and user.role in item.roles]
    html = _env.get_template(template).render(
        lang=lang,
        t=t,
        user=user,
        role_title=t["roles"][user.role.value] if user else "",
        menu=menu,
        path=request.path,
        **values,
    )
    return web.Response(text=html, content_type="text/html", status=status, headers=HEADERS)


def missing(request: web.Request, user: User, area: Texts, key: str, back_href: str) -> web.Response:
    """A 404 page for a record that is not there, with the way back; its words are the area's
    ``missing`` and ``back`` under ``key``."""
    words = texts(language(request, user), area)[key]
    return render(
        request, "missing.html", user, area, status=404,
        message=words["missing"], back_href=back_href, back_text=words["back"],
    )  # fmt: skip


def render_public(request: web.Request, template: str, **values: Any) -> web.Response:
    """A page for someone not logged in (a mail recipient), in the language their browser asks for."""
    return render(request, template, None, **values)


async def page_user(request: web.Request, roles: frozenset[Role] = EVERYONE) -> User:
    """The logged-in user allowed on this page; others go to the login form or are refused (403)."""
    async with request.app[CONTEXT].transaction() as session:
        user = await authenticate(request, session)
    if user is None:
        raise web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe="/"))
    if user.role not in roles:
        t = texts(language(request, user))
        message = t["forbidden"].format(role=t["roles"][user.role.value])
        page = render(request, "forbidden.html", user, status=403, message=message)
        raise web.HTTPForbidden(text=page.text, content_type="text/html", headers=HEADERS)
    return user
