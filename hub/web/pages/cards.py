"""The client card and the client search: every role reads cards; operators and accountants
edit them, operators call and write from them."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import or_, select

from crm_core.clients import ClientBook
from crm_core.errors import NotFound
from crm_core.models import Role, User
from hub.web.pages.core import EVERYONE, Texts, missing, page_user, render
from hub.web.state import CONTEXT, MAIL, ONEC, TELEPHONY

routes = web.RouteTableDef()

EDITORS = frozenset({Role.admin, Role.operator, Role.accountant})
WRITERS = frozenset({Role.admin, Role.operator})  # send mail from the card, listen to recordings
SYNCERS = frozenset({Role.admin, Role.operator, Role.accountant})

_CARD_RU = {
    "search_title": "Клиенты",
    "missing": "Такого клиента нет (или его карточку удалили).",
    "back": "← Все клиенты",
    "search_hint": "Название, ИНН, телефон или e-mail",
    "new_client": "Новый клиент",
    "found": "Найдено",
    "nothing_found": "Никого не нашлось",
    "columns": {"name": "Клиент", "inn": "ИНН", "phones": "Телефоны", "emails": "E-mail", "tags": "Теги"},
    "kind": {"legal_entity": "юрлицо", "sole_trader": "ИП", "individual": "физлицо"},
    "status": {"lead": "потенциальный", "active": "активный", "inactive": "неактивный"},
    "fields": {
        "name": "Название",
        "full_name": "Полное название",
        "kind": "Вид",
        "status": "Статус",
        "inn": "ИНН",
        "kpp": "КПП",
        "ogrn": "ОГРН",
        "owner": "Ответственный",
        "website": "Сайт",
        "tags": "Теги (через запятую)",
        "phones": "Телефоны (по одному в строке)",
        "emails": "E-mail (по одному в строке)",
        "address": "Юридический адрес",
        "custom": "Доп. поля (поле: значение, по одному в строке)",
        "contacts": "Контакты",
        "first_name": "Имя",
        "middle_name": "Отчество",
        "last_name": "Фамилия",
        "position": "Должность",
        "note": "Заметка",
    },
    "no_owner": "—",
    "edit": "Изменить",
    "add_contact": "Добавить контакт",
    "remove_contact": "Убрать контакт",
    "call": "Позвонить",
    "calling": "Звоню: сначала зазвонит ваш телефон…",
    "call_placed": "Вызов отправлен на АТС",
    "write": "Написать письмо",
    "sync": "Синхронизировать с 1С",
    "synced": "Синхронизация с 1С выполнена",
    "conflict": "Карточку успели изменить: загружена свежая версия, внесите правку ещё раз",
    "timeline": "История",
    "filters": {
        "all": "Всё",
        "call": "Звонки",
        "email": "Письма",
        "mailing": "Рассылки",
        "note": "Заметки",
        "onec": "1С",
        "card": "Карточка",
    },
    "more": "Показать ещё",
    "note_placeholder": "Заметка к карточке…",
    "add_note": "Добавить заметку",
    "note_saved": "Заметка сохранена",
    "call_notes": "Заметка к звонку",
    "recording": "Запись разговора",
    "talk": "разговор",
    "seconds": "с",
    "operator": "оператор",
    "from": "От",
    "show_message": "Открыть письмо",
    "hide_message": "Свернуть",
    "attachments": "Вложения",
    "reply": "Ответить",
    "compose": {
        "title": "Новое письмо",
        "to": "Кому",
        "subject": "Тема",
        "text": "Текст",
        "send": "Отправить",
        "sent": "Письмо отправлено",
        "refused": "Сервер отказался доставить:",
    },
    "onec": {
        "title": "1С",
        "not_linked": "Не связан с 1С",
        "documents": "Документы",
        "linked": "Связан",
        "types": {"Document_СчетНаОплатуПокупателю": "Счёт", "Document_РеализацияТоваровУслуг": "Реализация"},
    },
    "direction": {"inbound": "входящий", "outbound": "исходящий", "internal": "внутренний"},
    "call_status": {"answered": "отвечен", "missed": "пропущен", "busy": "занято", "failed": "не состоялся"},
    "titles": {
        "Card created": "Карточка создана",
        "Card changed": "Карточка изменена",
        "Card deleted": "Карточка удалена",
        "Note": "Заметка",
        "Missed call": "Пропущенный звонок",
        "Incoming call": "Входящий звонок",
        "Outgoing call": "Исходящий звонок",
        "Call": "Звонок",
        "E-mail sent": "Письмо отправлено",
        "E-mail received": "Письмо получено",
        "Mailing sent": "Рассылка отправлена",
        "Mailing opened": "Рассылка открыта",
        "Mailing link clicked": "Переход по ссылке из рассылки",
        "Unsubscribed": "Отписка от рассылок",
        "Mailing bounced": "Рассылка не доставлена",
    },
    "machine": "робот (не человек)",
    "created": "Клиент создан",
    "shortcuts": "Клавиши: e — изменить, n — заметка, w — письмо, / — поиск",
}
_CARD_EN = {
    "search_title": "Clients",
    "missing": "There is no such client (or the card was deleted).",
    "back": "← All clients",
    "search_hint": "Name, INN, phone or e-mail",
    "new_client": "New client",
    "found": "Found",
    "nothing_found": "Nobody found",
    "columns": {"name": "Client", "inn": "INN", "phones": "Phones", "emails": "E-mail", "tags": "Tags"},
    "kind": {"legal_entity": "legal entity", "sole_trader": "sole trader", "individual": "individual"},
    "status": {"lead": "lead", "active": "active", "inactive": "inactive"},
    "fields": {
        "name": "Name",
        "full_name": "Full name",
        "kind": "Kind",
        "status": "Status",
        "inn": "INN",
        "kpp": "KPP",
        "ogrn": "OGRN",
        "owner": "Owner",
        "website": "Website",
        "tags": "Tags (comma-separated)",
        "phones": "Phones (one per line)",
        "emails": "E-mail (one per line)",
        "address": "Legal address",
        "custom": "Custom fields (field: value, one per line)",
        "contacts": "Contacts",
        "first_name": "First name",
        "middle_name": "Middle name",
        "last_name": "Last name",
        "position": "Position",
        "note": "Note",
    },
    "no_owner": "—",
    "edit": "Edit",
    "add_contact": "Add a contact",
    "remove_contact": "Remove contact",
    "call": "Call",
    "calling": "Calling: your phone rings first…",
    "call_placed": "The PBX took the call",
    "write": "Write an e-mail",
    "sync": "Sync with 1C",
    "synced": "Synced with 1C",
    "conflict": "The card was changed meanwhile: the fresh version is loaded, make your change again",
    "timeline": "History",
    "filters": {
        "all": "All",
        "call": "Calls",
        "email": "E-mail",
        "mailing": "Mailings",
        "note": "Notes",
        "onec": "1C",
        "card": "Card",
    },
    "more": "Show more",
    "note_placeholder": "A note on the card…",
    "add_note": "Add note",
    "note_saved": "Note saved",
    "call_notes": "Call note",
    "recording": "Recording",
    "talk": "talk",
    "seconds": "s",
    "operator": "operator",
    "from": "From",
    "show_message": "Open the message",
    "hide_message": "Collapse",
    "attachments": "Attachments",
    "reply": "Reply",
    "compose": {
        "title": "New e-mail",
        "to": "To",
        "subject": "Subject",
        "text": "Text",
        "send": "Send",
        "sent": "The e-mail was sent",
        "refused": "The server refused to deliver to:",
    },
    "onec": {
        "title": "1C",
        "not_linked": "Not linked to 1C",
        "documents": "Documents",
        "linked": "Linked",
        "types": {"Document_СчетНаОплатуПокупателю": "Invoice", "Document_РеализацияТоваровУслуг": "Shipment"},
    },
    "direction": {"inbound": "inbound", "outbound": "outbound", "internal": "internal"},
    "call_status": {"answered": "answered", "missed": "missed", "busy": "busy", "failed": "failed"},
    "titles": {},
    "machine": "a machine, not a person",
    "created": "Client created",
    "shortcuts": "Keys: e edit, n note, w e-mail, / search",
}
TEXTS: Texts = {"ru": {"card": _CARD_RU}, "en": {"card": _CARD_EN}}


async def _owners(request: web.Request, current: int | None = None) -> list[dict[str, Any]]:
    """Who a card can be given to: the active users, and the card's owner even if deactivated
    since, so that saving the card keeps them rather than blanking the field."""
    async with request.app[CONTEXT].reading() as session:
        query = select(User).where(or_(User.is_active.is_(True), User.id == current)).order_by(User.full_name, User.id)
        return [{"id": u.id, "name": u.full_name or u.username} for u in await session.scalars(query)]


def _abilities(request: web.Request, user: User) -> dict[str, bool]:
    """What this user's buttons may do: the API refuses the rest anyway."""
    return {
        "edit": user.role in EDITORS,
        "note": user.role in EDITORS,
        "call": user.role in WRITERS and bool(user.extension) and TELEPHONY in request.app,
        "mail": user.role in WRITERS and MAIL in request.app,
        "listen": user.role in WRITERS,
        "sync": user.role in SYNCERS and ONEC in request.app,
    }


@routes.get("/clients")
async def search_page(request: web.Request) -> web.Response:
    user = await page_user(request, EVERYONE)
    return render(
        request, "cards/search.html", user, TEXTS, can_create=user.role in EDITORS, q=request.query.get("q", "")
    )


@routes.get("/clients/new")
async def new_page(request: web.Request) -> web.Response:
    user = await page_user(request, EDITORS)
    return render(
        request,
        "cards/client.html",
        user,
        TEXTS,
        client_id=0,
        owners=await _owners(request),
        abilities=_abilities(request, user),
        preset={"phone": request.query.get("phone", ""), "name": request.query.get("name", "")},
    )


@routes.get(r"/clients/{id:\d+}")
async def card_page(request: web.Request) -> web.Response:
    user = await page_user(request, EVERYONE)
    client_id = int(request.match_info["id"])
    async with request.app[CONTEXT].reading() as session:
        try:
            owner_id = (await ClientBook(session, request.app[CONTEXT].rules).get(client_id)).owner_id
        except NotFound:
            return missing(request, user, TEXTS, "card", "/clients")
    return render(
        request,
        "cards/client.html",
        user,
        TEXTS,
        client_id=client_id,
        owners=await _owners(request, owner_id),
        abilities=_abilities(request, user),
        preset={},
    )
