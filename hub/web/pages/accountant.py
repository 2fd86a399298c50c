"""The accountant's pages: 1C connections, sync status and history, conflicts, one counterparty's sync.

Each page is a shell; its script (``static/accountant-*.js``, with the shared ``accountant.js``)
reads /api/onec and /api/clients.  The texts below also name what the API only codes: sync
phases, log actions, failure kinds, card fields.
"""

from __future__ import annotations

from aiohttp import web

from crm_core.onec.models import OnecRun
from hub.web.pages.core import ACCOUNTANTS, Texts, page_user, render
from hub.web.state import CONTEXT

routes = web.RouteTableDef()

_RU = {
    "connections_title": "Синхронизация с 1С",
    "runs_title": "История синхронизаций",
    "run_title": "Синхронизация №{id}",
    "conflicts_title": "Конфликты и сопоставления",
    "card_title": "Синхронизация одного контрагента",
    "tabs": {
        "connections": "Подключения",
        "runs": "История",
        "conflicts": "Конфликты",
        "card": "Один контрагент",
    },
    "no_onec": "Подключение к 1С не настроено: добавьте раздел [[onec]] в настройки хаба и перезапустите его.",
    "url": "Адрес публикации",
    "kind": "Конфигурация",
    "interval": "Расписание",
    "every": "каждые {n} мин",
    "manual_only": "только вручную",
    "last_success": "Последняя успешная синхронизация",
    "never": "ещё не было",
    "running": "Идёт синхронизация",
    "idle": "Сейчас не выполняется",
    "progress": "{done} из {total}",
    "last_run": "Последний запуск",
    "last_error": "Ошибка последнего запуска",
    "details": "Подробности",
    "links": "Связано контрагентов",
    "open_conflicts": "Открытых конфликтов",
    "open_proposals": "Ждут сопоставления",
    "see_conflicts": "Разобрать",
    "sync_now": "Синхронизировать сейчас",
    "started": "Синхронизация запущена",
    "busy": "Синхронизация этого подключения уже идёт",
    "open_log": "Журнал",
    "ago": {
        "now": "только что",
        "minutes": "{n} мин назад",
        "hours": "{n} ч назад",
        "days": "{n} дн. назад",
    },
    "phases": {
        "starting": "запуск",
        "checking 1C": "проверка 1С",
        "reading versions": "чтение списка из 1С",
        "applying 1C changes": "приём изменений из 1С",
        "sending hub changes": "отправка изменений хаба",
        "creating in 1C": "создание в 1С",
        "finished": "завершена",
    },
    "statuses": {"running": "идёт", "done": "успешно", "failed": "с ошибкой", "pending": "ждёт очереди"},
    "failures": {
        "login": "1С не принимает имя пользователя или пароль. Проверьте их в настройках подключения и право "
        "пользователя 1С на стандартный интерфейс OData.",
        "unreachable": "1С не отвечает: сервер 1С или веб-сервер перед ним недоступен либо не успел ответить. "
        "Проверьте, что 1С работает, и повторите синхронизацию.",
        "not_published": "В 1С не опубликован нужный справочник или документ. Администратору 1С нужно добавить его "
        "в состав стандартного интерфейса OData.",
        "schema": "В конфигурации 1С нет нужного реквизита. Проверьте вид конфигурации и сопоставление полей "
        "в настройках подключения.",
        "interrupted": "Синхронизация прервана: хаб был остановлен. Следующая продолжит с того же места.",
        "refused": "1С отказала в записи.",
    },
    "triggers": {
        "schedule": "по расписанию",
        "api": "вручную",
        "request": "по запросу карточки",
        "cli": "из командной строки",
    },
    "counts": {
        "created_hub": "создано в хабе",
        "created_1c": "создано в 1С",
        "updated_hub": "обновлено в хабе",
        "updated_1c": "обновлено в 1С",
        "linked": "сопоставлено",
        "proposed": "на сопоставление",
        "conflicts": "конфликтов",
        "skipped": "пропущено",
        "failed": "ошибок",
        "unchanged": "без изменений",
        "gone": "удалено в 1С",
    },
    "nothing_done": "изменений не было",
    "run": {
        "number": "№",
        "connection": "Подключение",
        "trigger": "Запуск",
        "started": "Начало",
        "duration": "Длительность",
        "figures": "Итоги",
        "seconds": "{n} с",
        "minutes": "{m} мин {s} с",
        "prev": "← Новее",
        "next": "Старше →",
        "page": "Стр. {page} из {pages}",
        "empty": "Синхронизаций ещё не было",
        "back": "← К истории",
    },
    "log": {
        "counterparty": "Контрагент",
        "action": "Что сделано",
        "fields": "Поля",
        "why": "Пояснение",
        "all": "Все действия",
        "empty": "В журнале этой синхронизации нет записей: изменений не было",
        "onec_item": "элемент 1С {ref}",
    },
    "actions": {
        "created_hub": "Создана карточка в хабе (из 1С)",
        "created_1c": "Создан контрагент в 1С (из хаба)",
        "updated_hub": "Обновлена карточка в хабе (из 1С)",
        "updated_1c": "Обновлён контрагент в 1С (из хаба)",
        "linked": "Сопоставлен с карточкой",
        "proposed": "Предложено сопоставление",
        "conflict": "Конфликт",
        "skipped": "Пропущен",
        "failed_hub": "Хаб не принял данные из 1С",
        "failed_1c": "1С не приняла изменения",
        "failed": "Ошибка",
        "gone": "Удалён в 1С",
    },
    "action_filter": {
        "created": "создание",
        "updated": "обновление",
        "linked": "сопоставление",
        "proposed": "предложено сопоставление",
        "conflict": "конфликт",
        "skipped": "пропуск",
        "failed": "ошибка",
        "gone": "удалён в 1С",
    },
    "reasons": {
        "changed on both sides": "изменено и в хабе, и в 1С",
        "the same INN": "тот же ИНН",
        "the same INN and KPP": "те же ИНН и КПП",
        "the same name": "то же наименование",
        "the same INN; the card has no KPP": "тот же ИНН, а у карточки нет КПП",
        "several cards have the same INN": "этот ИНН у нескольких карточек",
        "several cards have the same INN and KPP": "эти ИНН и КПП у нескольких карточек",
        "marked for deletion in 1C": "помечен на удаление в 1С",
        "created by an earlier, interrupted sync": "создан прерванной ранее синхронизацией",
        "the item no longer exists in 1C (destroyed there); the card is kept": "в 1С его больше нет; "
        "карточка в хабе сохранена",
        "changed in 1C while being written; the next sync retries": "изменился в 1С во время записи; "
        "следующая синхронизация повторит",
    },
    "fields": {
        "name": "Наименование",
        "full_name": "Полное наименование",
        "kind": "Вид",
        "inn": "ИНН",
        "kpp": "КПП",
        "ogrn": "ОГРН",
        "phones": "Телефоны",
        "emails": "Эл. почта",
        "legal_address": "Юридический адрес",
        "actual_address": "Фактический адрес",
        "group": "Группа в 1С",
        "deleted": "Пометка удаления",
    },
    "values": {
        "legal": "юридическое лицо",
        "person": "физическое лицо",
        "deleted": "помечен на удаление",
        "not_deleted": "не помечен",
        "blank": "(пусто)",
    },
    "conflict": {
        "intro": "Эти поля изменили по-разному и в хабе, и в 1С. Выберите для каждого поля, какое значение "
        "оставить: выбранное запишется в обе системы.",
        "field": "Поле",
        "base": "Было согласовано",
        "hub": "В хабе",
        "onec": "В 1С",
        "choice": "Оставить",
        "keep_hub": "из хаба",
        "take_onec": "из 1С",
        "apply": "Применить выбор",
        "choose_first": "Выберите значение хотя бы для одного поля",
        "saved": "Выбор сохранён: карточка синхронизируется с 1С",
        "waiting": "ждёт синхронизации",
        "applied": "записано в хаб и 1С",
        "chosen": "Выбрано: {value}",
        "none": "Конфликтов нет",
        "connection": "подключение {name}",
    },
    "proposal": {
        "title": "Возможные совпадения",
        "intro": "При первой синхронизации эти карточки похожи на контрагентов 1С, но уверенности нет. Решите, "
        "один ли это контрагент.",
        "hub": "Карточка в хабе",
        "onec": "Контрагент в 1С",
        "why": "Почему похожи",
        "ref": "Ссылка в 1С",
        "accept": "Это один контрагент",
        "reject": "Это разные контрагенты",
        "accepted": "Сопоставлено: карточка будет синхронизирована с 1С",
        "rejected": "Отмечено как разные: следующая синхронизация создаст отдельную карточку",
        "none": "Нет предложений на сопоставление",
    },
    "card": {
        "intro": "Найдите карточку по названию или ИНН и синхронизируйте только её, не дожидаясь общей синхронизации.",
        "query": "Название или ИНН",
        "found": "Найдено: {n}",
        "not_found": "Ничего не найдено",
        "choose": "Выбрать",
        "sync": "Синхронизировать с 1С",
        "queued": "Запрос отправлен, ждём 1С…",
        "waiting": "Ждёт своей очереди: идёт общая синхронизация или хаб ещё не взял запрос…",
        "outcome": "Результат",
        "done": "Синхронизация завершена",
        "failed": "Синхронизация не удалась",
        "unchanged": "Изменений нет: в хабе и в 1С одинаковые данные",
        "now": "Карточка сейчас",
        "open_card": "Открыть карточку",
        "resolve": "Разобрать конфликт",
    },
}

_EN = {
    "connections_title": "1C sync",
    "runs_title": "Sync history",
    "run_title": "Sync #{id}",
    "conflicts_title": "Conflicts and matches",
    "card_title": "Sync one counterparty",
    "tabs": {"connections": "Connections", "runs": "History", "conflicts": "Conflicts", "card": "One counterparty"},
    "no_onec": "No 1C connection is set up: add an [[onec]] section to the hub's settings and restart it.",
    "url": "Publication address",
    "kind": "Configuration",
    "interval": "Schedule",
    "every": "every {n} min",
    "manual_only": "manual only",
    "last_success": "Last good sync",
    "never": "none yet",
    "running": "Sync running",
    "idle": "Not running now",
    "progress": "{done} of {total}",
    "last_run": "Last run",
    "last_error": "Last run's error",
    "details": "Details",
    "links": "Linked counterparties",
    "open_conflicts": "Open conflicts",
    "open_proposals": "Matches to decide",
    "see_conflicts": "Review",
    "sync_now": "Sync now",
    "started": "Sync started",
    "busy": "A sync of this connection is already running",
    "open_log": "Log",
    "ago": {"now": "just now", "minutes": "{n} min ago", "hours": "{n} h ago", "days": "{n} days ago"},
    "phases": {
        "starting": "starting",
        "checking 1C": "checking 1C",
        "reading versions": "reading 1C's list",
        "applying 1C changes": "taking 1C's changes",
        "sending hub changes": "sending the hub's changes",
        "creating in 1C": "creating in 1C",
        "finished": "finished",
    },
    "statuses": {"running": "running", "done": "done", "failed": "failed", "pending": "waiting"},
    "failures": {
        "login": "1C refuses the user name or password. Check them in the connection's settings, and that the 1C "
        "user may use the standard OData interface.",
        "unreachable": "1C does not answer: the 1C server or the web server in front of it is down or too slow. "
        "Check that 1C is running and sync again.",
        "not_published": "1C does not publish a catalogue or document the sync needs. The 1C administrator must add "
        "it to the standard OData interface.",
        "schema": "The 1C configuration lacks a field the sync needs. Check the configuration kind and the field "
        "map in the connection's settings.",
        "interrupted": "The sync was cut short: the hub was stopped. The next sync goes on from there.",
        "refused": "1C refused the write.",
    },
    "triggers": {"schedule": "scheduled", "api": "by hand", "request": "card request", "cli": "command line"},
    "counts": {
        "created_hub": "created in the hub",
        "created_1c": "created in 1C",
        "updated_hub": "updated in the hub",
        "updated_1c": "updated in 1C",
        "linked": "linked",
        "proposed": "proposed",
        "conflicts": "conflicts",
        "skipped": "skipped",
        "failed": "failed",
        "unchanged": "unchanged",
        "gone": "gone from 1C",
    },
    "nothing_done": "nothing changed",
    "run": {
        "number": "#",
        "connection": "Connection",
        "trigger": "Started",
        "started": "Began",
        "duration": "Took",
        "figures": "Figures",
        "seconds": "{n} s",
        "minutes": "{m} min {s} s",
        "prev": "← Newer",
        "next": "Older →",
        "page": "Page {page} of {pages}",
        "empty": "No syncs yet",
        "back": "← Back to history",
    },
    "log": {
        "counterparty": "Counterparty",
        "action": "What was done",
        "fields": "Fields",
        "why": "Why",
        "all": "All actions",
        "empty": "This sync's log is empty: nothing changed",
        "onec_item": "1C item {ref}",
    },
    "actions": {
        "created_hub": "Card created in the hub (from 1C)",
        "created_1c": "Counterparty created in 1C (from the hub)",
        "updated_hub": "Card updated in the hub (from 1C)",
        "updated_1c": "Counterparty updated in 1C (from the hub)",
        "linked": "Linked to a card",
        "proposed": "Match proposed",
        "conflict": "Conflict",
        "skipped": "Skipped",
        "failed_hub": "The hub refused 1C's data",
        "failed_1c": "1C refused the changes",
        "failed": "Failed",
        "gone": "Gone from 1C",
    },
    "action_filter": {
        "created": "created",
        "updated": "updated",
        "linked": "linked",
        "proposed": "match proposed",
        "conflict": "conflict",
        "skipped": "skipped",
        "failed": "failed",
        "gone": "gone from 1C",
    },
    "reasons": {
        "changed on both sides": "changed both in the hub and in 1C",
        "the same INN": "the same INN",
        "the same INN and KPP": "the same INN and KPP",
        "the same name": "the same name",
        "the same INN; the card has no KPP": "the same INN; the card has no KPP",
        "several cards have the same INN": "several cards have this INN",
        "several cards have the same INN and KPP": "several cards have this INN and KPP",
        "marked for deletion in 1C": "marked for deletion in 1C",
        "created by an earlier, interrupted sync": "created by an earlier, interrupted sync",
        "the item no longer exists in 1C (destroyed there); the card is kept": "it no longer exists in 1C; the "
        "hub's card is kept",
        "changed in 1C while being written; the next sync retries": "changed in 1C while being written; the next "
        "sync retries",
    },
    "fields": {
        "name": "Name",
        "full_name": "Full name",
        "kind": "Kind",
        "inn": "INN",
        "kpp": "KPP",
        "ogrn": "OGRN",
        "phones": "Phones",
        "emails": "E-mails",
        "legal_address": "Legal address",
        "actual_address": "Actual address",
        "group": "1C group",
        "deleted": "Deletion mark",
    },
    "values": {
        "legal": "legal entity",
        "person": "individual",
        "deleted": "marked for deletion",
        "not_deleted": "not marked",
        "blank": "(blank)",
    },
    "conflict": {
        "intro": "These fields were changed differently in the hub and in 1C. Choose which value each field keeps: "
        "it is written to both.",
        "field": "Field",
        "base": "Last agreed",
        "hub": "In the hub",
        "onec": "In 1C",
        "choice": "Keep",
        "keep_hub": "the hub's",
        "take_onec": "1C's",
        "apply": "Apply the choice",
        "choose_first": "Choose a value for at least one field",
        "saved": "Choice saved: the card is being synced with 1C",
        "waiting": "waiting for the sync",
        "applied": "written to the hub and 1C",
        "chosen": "Chosen: {value}",
        "none": "No conflicts",
        "connection": "connection {name}",
    },
    "proposal": {
        "title": "Possible matches",
        "intro": "On the first sync these cards look like 1C counterparties, but not for sure. Decide whether each "
        "is the same counterparty.",
        "hub": "Card in the hub",
        "onec": "Counterparty in 1C",
        "why": "Why they look alike",
        "ref": "1C reference",
        "accept": "The same counterparty",
        "reject": "Different counterparties",
        "accepted": "Linked: the card is being synced with 1C",
        "rejected": "Marked as different: the next sync makes a card of its own",
        "none": "No matches to decide",
    },
    "card": {
        "intro": "Find a card by name or INN and sync just that card, without waiting for the full sync.",
        "query": "Name or INN",
        "found": "Found: {n}",
        "not_found": "Nothing found",
        "choose": "Choose",
        "sync": "Sync with 1C",
        "queued": "Request sent, waiting for 1C…",
        "waiting": "Waiting its turn: a full sync is running or the hub has not taken the request yet…",
        "outcome": "Outcome",
        "done": "Sync finished",
        "failed": "Sync failed",
        "unchanged": "Nothing to change: the hub and 1C hold the same data",
        "now": "The card now",
        "open_card": "Open the card",
        "resolve": "Resolve the conflict",
    },
}

TEXTS: Texts = {"ru": {"acc": _RU}, "en": {"acc": _EN}}


@routes.get("/onec")
async def connections_page(request: web.Request) -> web.Response:
    return render(request, "accountant/connections.html", await page_user(request, ACCOUNTANTS), TEXTS)


@routes.get("/onec/runs")
async def runs_page(request: web.Request) -> web.Response:
    return render(request, "accountant/runs.html", await page_user(request, ACCOUNTANTS), TEXTS)


@routes.get(r"/onec/runs/{id:\d+}")
async def run_page(request: web.Request) -> web.Response:
    """A run that does not exist is a 404 page, not an empty log."""
    user = await page_user(request, ACCOUNTANTS)
    run_id = int(request.match_info["id"])
    async with request.app[CONTEXT].reading() as session:
        found = await session.get(OnecRun, run_id) is not None
    return render(request, "accountant/run.html", user, TEXTS, status=200 if found else 404, run_id=run_id,
                  found=found)  # fmt: skip


@routes.get("/onec/conflicts")
async def conflicts_page(request: web.Request) -> web.Response:
    return render(request, "accountant/conflicts.html", await page_user(request, ACCOUNTANTS), TEXTS)


@routes.get("/onec/card")
async def card_page(request: web.Request) -> web.Response:
    return render(request, "accountant/card.html", await page_user(request, ACCOUNTANTS), TEXTS)
