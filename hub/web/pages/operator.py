"""The operator's pages: live screen-pops, the client card, search, missed calls."""

from __future__ import annotations

from aiohttp import web

from hub.web.pages.core import OPERATORS, Texts, page_user, render

routes = web.RouteTableDef()

TEXTS: Texts = {
    "ru": {
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


@routes.get("/operator")
async def operator_page(request: web.Request) -> web.Response:
    return render(request, "operator.html", await page_user(request, OPERATORS), TEXTS)
