"""How many messages per second does the hub carry from an IMAP mailbox into the mail log?

Every message the hub reads crosses the same path: the IMAP connector fetches it (``UID FETCH
... BODY.PEEK[]`` in batches), ``MailIngest`` parses it in a thread and writes its bytes and
attachments to the blob store, and ``MailLog.file`` stores it, threads it and links it to the
clients whose addresses it names, one transaction per batch together with the folder's
checkpoint.  The target:

- end to end, at least 50% of the rate at which a bare aioimaplib loop fetches the same
  messages from the same server in the same run (``UID FETCH <a>:<b> (UID BODY.PEEK[])`` in
  batches of the connector's size, the bytes thrown away): the cheapest read of that mailbox
  this machine does, so the ratio says what parsing, linking and storing cost on top of it.

The server is a private real Dovecot (``tests.dovecot``), with one mailbox holding N messages
(2,000; 300 with --quick): mostly ordinary business mail in Russian (plain text in UTF-8 or
windows-1251, multipart/alternative with HTML, a fifth with a small PDF-like attachment, a
third of them replies in a thread), from the addresses of 80 companies, half of which are on
client cards in the database (most of their people too), so that about two messages in five
are linked to a client and the rest await triage; and, spread among them, every hostile or
broken specimen of ``tests.mail_corpus`` (its empty message aside: an IMAP server stores none).
The hub is the real one: migrations on a fresh database, the seeded client cards, ``MailIngest``
and the real ``ImapConnector`` following INBOX from an empty checkpoint, logs formatted at INFO
(written to /dev/null).  The end-to-end time runs from ``ImapConnector.run()`` to the moment the
batch holding the last message was committed; the table splits it into fetching, parsing and
logging.  The bare passes run just before and just after each end-to-end run, so a noisy moment
hurts both alike.

    .venv/bin/python -m bench.imap                          # SQLite, 2000 messages
    .venv/bin/python -m bench.imap --backend both --profile /tmp/imap.prof
    .venv/bin/python bench/imap.py --quick                  # a smoke run of about ten seconds

The connector and Dovecot share this machine's cores, as they would on a small office server;
the table says how busy each was.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import random
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository's packages (tests, bench) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aioimaplib import aioimaplib
from sqlalchemy import event, func, select

from bench.hub_logs import WarningTally, configure_logs
from bench.lookup import postgresql_database, sqlite_database
from bench.summary import Row
from bench.summary import add_option as add_summary_option
from bench.summary import write as write_summary
from connectors.imap import ImapConnector, MailboxSettings
from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.mail.events import FetchedMessage
from crm_core.mail.mail_log import Filed
from crm_core.mail.models import MailCopy, MailLink, MailMessage, MailQuarantine
from hub.config import Settings
from hub.context import HubContext
from hub.mail_ingest import MailIngest
from tests.dovecot import Dovecot, MailUser
from tests.mail_corpus import corpus

TARGET_SHARE_OF_BARE = 0.50
TARGET = f"end to end >= {TARGET_SHARE_OF_BARE:.0%} of the bare fetch rate"  # as the report states it
BARE = "bare aioimaplib UID FETCH"
END_TO_END = "end to end: fetch, parse, link, store"

MAILBOX = "sales"  # the hub's name for the mailbox
OWN_DOMAIN = "hub.example"  # the company's domain: its addresses are never filed as a client's
OUR_ADDRESSES = (
    ("Отдел продаж", f"sales@{OWN_DOMAIN}"),
    ("Мария Соколова", f"m.sokolova@{OWN_DOMAIN}"),
    ("Бухгалтерия", f"buh@{OWN_DOMAIN}"),
)
DEFAULT_BATCH = MailboxSettings(name="-", host="-", port=0, username="-", password="-").fetch_batch
MAX_BATCH = 200  # aioimaplib recurses once per response line: a larger FETCH can hit RecursionError
COMPANIES = 80
KNOWN_EVERY = 2  # every second company is on a client card
KINDS = ("plain", "alternative", "attachment")
KIND_WEIGHTS = (0.45, 0.35, 0.20)
REPLY_SHARE = 0.30  # follow-ups in a thread: "Re:", In-Reply-To, References
CC_SHARE = 0.20  # a colleague of the sender or another company in Cc
CP1251_SHARE = 0.15  # plain text as windows-1251, as 1C and old Outlooks still send it
PRICE_LIST_SHARE = 0.25  # attachments that are the same price list again (stored once in the blob store)
MSK = timezone(timedelta(hours=3))

# -- the mail ---------------------------------------------------------------------------------

COMPANY_WORDS = (
    ("Ромашка", "romashka"),
    ("Север", "sever"),
    ("Вектор", "vektor"),
    ("Альянс", "alyans"),
    ("Гранит", "granit"),
    ("Меридиан", "meridian"),
    ("Техно", "tekhno"),
    ("Волга", "volga"),
    ("Урал", "ural"),
    ("Сибирь", "sibir"),
    ("Феникс", "feniks"),
    ("Капитал", "kapital"),
    ("Стройинвест", "stroyinvest"),
    ("Логистик", "logistik"),
    ("Агро", "agro"),
    ("Профи", "profi"),
)
FORMS = ("ООО", "АО", "ИП", "ПАО")
PEOPLE = (
    ("Иван", "Петров", "ivan.petrov"),
    ("Анна", "Смирнова", "a.smirnova"),
    ("Сергей", "Кузнецов", "kuznetsov"),
    ("Ольга", "Попова", "olga.popova"),
    ("Дмитрий", "Лебедев", "d.lebedev"),
    ("Елена", "Новикова", "novikova.e"),
    ("Алексей", "Морозов", "morozov"),
    ("Наталья", "Волкова", "n.volkova"),
    ("Пётр", "Соколов", "petr.sokolov"),
    ("Мария", "Фёдорова", "fedorova"),
)
SHARED_MAILBOXES = ("info", "zakaz", "buh", "office", "snab")
POSITIONS = ("менеджер по закупкам", "главный бухгалтер", "руководитель отдела снабжения", "логист", "директор")
GREETINGS = ("Добрый день!", "Здравствуйте!", "Добрый день, коллеги!", "Доброе утро!", "Уважаемые коллеги!")
SENTENCES = (
    "Направляем вам счёт на оплату по договору поставки.",
    "Просим подтвердить получение и сообщить ориентировочную дату оплаты.",
    "Отгрузка запланирована на следующую неделю, точную дату сообщим дополнительно.",
    "Во вложении акт сверки взаимных расчётов за прошедший квартал.",
    "Прошу выставить счёт на 40 штук позиции «Кабель ВВГнг 3х2,5».",
    "Оплата прошла вчера, платёжное поручение во вложении.",
    "Уточните, пожалуйста, актуальные реквизиты для оплаты.",
    "Водитель будет на складе с 9:00 до 12:00, пропуск заказан.",
    "Цены действительны до конца месяца при условии 100% предоплаты.",
    "К сожалению, часть товара пришла с повреждённой упаковкой, фотографии пришлём отдельно.",
    "Договор подписан с нашей стороны, оригиналы отправим Почтой России.",
    "Готовы рассмотреть отсрочку платежа на 30 календарных дней.",
    "Напоминаем, что срок оплаты по счёту истекает в пятницу.",
    "Просим предоставить сертификаты соответствия на поставляемую продукцию.",
    "Менеджер свяжется с вами в течение рабочего дня.",
    "Также интересует возможность доставки в Екатеринбург и Новосибирск.",
    "По вашему запросу подготовили коммерческое предложение с учётом скидки 7%.",
    "Счёт-фактуру и товарную накладную передадим с водителем.",
    "Подскажите, есть ли на складе 120 метров трубы ПНД 32 мм?",
    "Согласовали изменения в спецификации, новая редакция ниже.",
)
SUBJECTS = (
    "Счёт на оплату № {n}",
    "Акт сверки за {month}",
    "Заявка на поставку № {n}",
    "Договор поставки № {n}/24",
    "Вопрос по отгрузке",
    "Претензия по заказу {n}",
    "Прайс-лист на {month}",
    "Доставка задерживается",
    "Уточнение реквизитов",
    "Коммерческое предложение",
    "Запрос цены: трубы ПНД",
    "Оплата по счёту {n}",
)
MONTHS = ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь", "октябрь")
ITEMS = ("Кабель ВВГнг 3х2,5", "Труба ПНД 32 мм", "Автомат ABB 16А", "Щит ЩРН-12", "Гофра ПВХ 20 мм")


@dataclass(frozen=True, slots=True)
class Person:
    name: str  # as shown in From; "" for a shared mailbox such as info@
    first: str
    last: str
    address: str
    on_card: bool  # the address is on a client card in the database, so mail naming it is linked


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    people: tuple[Person, ...]  # the shared mailbox first
    known: bool  # has a client card


@dataclass(frozen=True, slots=True)
class Sent:
    """What a later reply needs of an earlier message."""

    message_id: str
    subject: str
    sender: Person
    references: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class Mailbox:
    """The messages to append, in order, and what the log should conclude from them."""

    messages: list[bytes]
    ordinary: int
    specimens: int
    linkable: int  # ordinary messages naming an address that is on a card
    companies: list[Company]
    kinds: Counter[str]

    @property
    def size(self) -> int:
        return sum(len(raw) for raw in self.messages)


def make_companies(rng: random.Random) -> list[Company]:
    """80 companies of a shared mailbox and 1-3 people; every second one on a card, with one person
    of each left off the card (a new employee nobody entered yet)."""
    companies = []
    for i in range(COMPANIES):
        word, slug = COMPANY_WORDS[i % len(COMPANY_WORDS)]
        domain = f"{slug}-{i}.example"
        known = i % KNOWN_EVERY == 0
        shared = SHARED_MAILBOXES[i % len(SHARED_MAILBOXES)]
        people = [Person("", "", "", f"{shared}@{domain}", known)]
        staff = rng.sample(PEOPLE, rng.randint(1, 3))
        for n, (first, last, local) in enumerate(staff):
            on_card = known and (n < len(staff) - 1 or len(staff) == 1)
            people.append(Person(f"{first} {last}", first, last, f"{local}@{domain}", on_card))
        companies.append(Company(f"{FORMS[i % len(FORMS)]} «{word}-{i}»", tuple(people), known))
    return companies


def _text(rng: random.Random, sender: Person, company: Company, reply_to: Sent | None) -> str:
    lines = [rng.choice(GREETINGS), ""]
    lines += [" ".join(rng.sample(SENTENCES, rng.randint(1, 3))) for _ in range(rng.randint(1, 5))]
    if rng.random() < 0.3:
        lines += ["", "Позиция; количество; цена, руб."]
        lines += [f"{item}; {rng.randint(1, 500)}; {rng.randint(50, 90_000)},00" for item in rng.sample(ITEMS, 3)]
    lines += ["", "С уважением,", sender.name or "Отдел снабжения", rng.choice(POSITIONS), company.name]
    lines.append(f"тел. +7 (495) {rng.randint(100, 999)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}")
    if reply_to is not None:
        lines += ["", f"{reply_to.sender.name or reply_to.sender.address} писал(а):"]
        lines += [f"> {line}" for line in reply_to.text.splitlines()[:12]]
    return "\n".join(lines) + "\n"


def _html(text: str) -> str:
    paragraphs = "".join(
        f'<p style="margin:0 0 8px 0;font-family:Arial">{block.replace(chr(10), "<br>")}</p>'
        for block in text.split("\n\n")
    )
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
        f'<body><div class="WordSection1">{paragraphs}</div></body></html>'
    )


def pdf_like(rng: random.Random, size: int) -> bytes:
    """A PDF's shape around incompressible bytes, as a real PDF's compressed streams are."""
    head = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n4 0 obj\n"
    head += b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % size
    return head + rng.randbytes(size) + b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def business_mail(
    i: int, rng: random.Random, companies: Sequence[Company], earlier: list[Sent], price_lists: list[bytes]
) -> tuple[bytes, str, bool]:
    """One ordinary message: (raw bytes with CRLF, kind, names an address on a card)."""
    reply_to = rng.choice(earlier[-60:]) if earlier and rng.random() < REPLY_SHARE else None
    if reply_to is not None:
        sender = reply_to.sender
        company = next(c for c in companies if sender in c.people)
        subject = reply_to.subject if reply_to.subject.startswith("Re: ") else f"Re: {reply_to.subject}"
    else:
        company = rng.choice(companies)
        sender = rng.choice(company.people[1:]) if rng.random() < 0.8 else company.people[0]
        subject = rng.choice(SUBJECTS).format(n=rng.randint(100, 9999), month=rng.choice(MONTHS))
    participants = [sender]
    message = EmailMessage()
    message["From"] = f"{sender.name} <{sender.address}>" if sender.name else sender.address
    name, address = OUR_ADDRESSES[0] if rng.random() < 0.7 else rng.choice(OUR_ADDRESSES)
    message["To"] = f"{name} <{address}>"
    if rng.random() < CC_SHARE:
        other = rng.choice(company.people if rng.random() < 0.6 else rng.choice(companies).people)
        if other is not sender:
            participants.append(other)
            message["Cc"] = f"{other.name} <{other.address}>" if other.name else other.address
    message["Subject"] = subject
    sent_at = datetime(2024, 10, 1, 9, tzinfo=UTC) + timedelta(minutes=7 * i + rng.randint(0, 6))
    message["Date"] = format_datetime(sent_at.astimezone(MSK))
    domain = sender.address.rpartition("@")[2]
    message_id = f"{rng.getrandbits(64):016x}.{i}@{domain}"
    message["Message-ID"] = f"<{message_id}>"
    references: tuple[str, ...] = ()
    if reply_to is not None:
        references = (*reply_to.references, reply_to.message_id)[-10:]
        message["In-Reply-To"] = f"<{reply_to.message_id}>"
        message["References"] = " ".join(f"<{ref}>" for ref in references)
    message["X-Mailer"] = rng.choice(("Microsoft Outlook 16.0", "Mozilla Thunderbird", "1C:Enterprise 8.3", "Mail.ru"))
    text = _text(rng, sender, company, reply_to)
    kind = rng.choices(KINDS, weights=KIND_WEIGHTS)[0]
    if kind == "plain" and rng.random() < CP1251_SHARE / KIND_WEIGHTS[0]:
        message.set_content(text, charset="windows-1251", cte=rng.choice(("8bit", "quoted-printable")))
    else:
        message.set_content(text, cte=rng.choice((None, "base64", "quoted-printable")))
    if kind != "plain":
        message.add_alternative(_html(text), subtype="html", cte=rng.choice(("base64", "quoted-printable")))
    if kind == "attachment":
        if rng.random() < PRICE_LIST_SHARE:
            data, filename = rng.choice(price_lists), "Прайс-лист.pdf"
        else:
            data, filename = pdf_like(rng, rng.randint(6_000, 60_000)), f"Счёт № {rng.randint(100, 9999)}.pdf"
        message.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    for n, part in enumerate(p for p in message.walk() if p.is_multipart()):
        part.set_boundary(f"----=_Part_{i}_{n}.{rng.getrandbits(32):08x}")  # the stdlib's would be unseeded
    earlier.append(Sent(message_id, subject, sender, references, text))
    return message.as_bytes(policy=policy.SMTP), kind, any(p.on_card for p in participants)


def make_mailbox(count: int, rng: random.Random) -> Mailbox:
    companies = make_companies(rng)
    specimens = [s.raw for s in corpus() if s.raw.strip()]  # IMAP servers store no empty message
    specimens = specimens[: max(0, count // 5)]
    earlier: list[Sent] = []
    price_lists = [pdf_like(rng, size) for size in (24_000, 41_000, 58_000)]
    messages: list[bytes] = []
    kinds: Counter[str] = Counter()
    linkable = 0
    for i in range(count - len(specimens)):
        raw, kind, linked = business_mail(i, rng, companies, earlier, price_lists)
        messages.append(raw)
        kinds[kind] += 1
        linkable += linked
    # The specimens go in at random places; the ordinary mail keeps its order (replies after their originals).
    for raw in specimens:
        messages.insert(rng.randint(0, len(messages)), raw)
    kinds["hostile or broken (tests.mail_corpus)"] = len(specimens)
    known = [p.address.encode() for c in companies for p in c.people if p.on_card]
    if any(address in raw for raw in specimens for address in known):
        raise RuntimeError("a corpus specimen names a seeded address: the expected link count would be wrong")
    return Mailbox(messages, count - len(specimens), len(specimens), linkable, companies, kinds)


def load_mailbox(server: Dovecot, user: MailUser, messages: Sequence[bytes]) -> list[int]:
    """APPEND every message over one connection (a connection per message would take minutes); their UIDs."""
    uids = []
    with server.imap(user.name, timeout=60) as client:
        for raw in messages:
            typ, data = client.append("INBOX", None, None, raw)
            answer = data[0] if data and isinstance(data[0], bytes) else b""
            match = re.search(rb"\[APPENDUID \d+ (\d+)\]", answer)
            if typ != "OK" or match is None:
                raise RuntimeError(f"APPEND failed: {typ} {data!r}")
            uids.append(int(match[1]))
    return uids


async def seed_clients(context: HubContext, companies: Sequence[Company]) -> None:
    """A card for every known company: its shared address on the card, its people as contacts."""
    async with context.transaction() as session:
        book = ClientBook(session, context.rules)
        for company in companies:
            if not company.known:
                continue
            shared, *staff = company.people
            contacts = [
                {"first_name": p.first, "last_name": p.last, "emails": [{"address": p.address}]}
                for p in staff
                if p.on_card
            ]
            card = ClientIn(name=company.name, emails=[{"address": shared.address}], contacts=contacts, tags=["bench"])
            await book.create(card, SYSTEM)


# -- the bare read, for reference -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BarePass:
    messages: int
    size: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


def _uid_set(uids: Sequence[int]) -> str:
    if uids[-1] - uids[0] + 1 == len(uids):
        return f"{uids[0]}:{uids[-1]}"
    return ",".join(map(str, uids))


async def bare_fetch(server: Dovecot, user: MailUser, uids: Sequence[int], batch: int, timeout: float) -> BarePass:
    """Connect, log in, select, then UID FETCH every message in batches and throw the bytes away."""
    started = time.perf_counter()
    client = aioimaplib.IMAP4(server.host, server.port, timeout=timeout)
    try:
        await asyncio.wait_for(client.wait_hello_from_server(), timeout)
        for response in (
            await asyncio.wait_for(client.login(user.name, user.password), timeout),
            await asyncio.wait_for(client.select("INBOX"), timeout),
        ):
            if response.result != "OK":
                raise RuntimeError(f"bare loop: {response.result} {response.lines!r}")
        messages = size = 0
        for start in range(0, len(uids), batch):
            chunk = uids[start : start + batch]
            response = await asyncio.wait_for(client.uid("fetch", _uid_set(chunk), "(UID BODY.PEEK[])"), timeout)
            if response.result != "OK":
                raise RuntimeError(f"bare loop: UID FETCH {response.result} {response.lines[-1:]!r}")
            literals = [line for line in response.lines if isinstance(line, bytearray)]
            if len(literals) != len(chunk):
                raise RuntimeError(f"bare loop: {len(literals)} messages in a FETCH of {len(chunk)}")
            messages += len(literals)
            size += sum(map(len, literals))
        seconds = time.perf_counter() - started
        await asyncio.wait_for(client.logout(), timeout)
    finally:
        if client.protocol is not None and client.protocol.transport is not None:
            client.protocol.transport.abort()
    return BarePass(messages, size, seconds)


# -- the end-to-end run -------------------------------------------------------------------------


class MeasuredIngest(MailIngest):
    """``MailIngest`` with stopwatches: when the last expected message was committed, the time spent
    in ``deliver`` (as opposed to fetching), and within it in ``_prepare`` (the parse and the blob
    writes, in a thread).  The work is MailIngest's own; only the clocks are added."""

    def __init__(self, context: HubContext, expected: int) -> None:
        super().__init__(context)
        self.expected = expected
        self.delivered = 0
        self.batches = 0
        self.in_deliver = 0.0
        self.in_prepare = 0.0
        self.finished_at: float | None = None
        self.done = asyncio.Event()

    async def deliver(self, sent_folder: bool, messages: Sequence[FetchedMessage]) -> list[Filed | None]:
        started = time.perf_counter()
        result = await super().deliver(sent_folder, messages)
        now = time.perf_counter()
        self.in_deliver += now - started
        self.delivered += len(messages)
        self.batches += 1
        if self.delivered >= self.expected and self.finished_at is None:
            self.finished_at = now
            self.done.set()
        return result

    def _prepare(self, fetched: FetchedMessage) -> Any:
        started = time.perf_counter()
        try:
            return super()._prepare(fetched)
        finally:
            self.in_prepare += time.perf_counter() - started  # one thread at a time: deliver awaits each


class ThreadProfiles:
    """cProfile of this thread (the event loop) and of every thread started while it is on: the
    executor's workers that parse and write blobs, and aiosqlite's connection threads."""

    def __init__(self) -> None:
        self.loop = cProfile.Profile()
        self.threads: list[cProfile.Profile] = []

    def _new_thread(self, *_: object) -> None:
        # Called on the new thread's first event; enabling replaces this hook with the profiler's.
        profile = cProfile.Profile()
        self.threads.append(profile)
        profile.enable()

    def start(self) -> None:
        threading.setprofile(self._new_thread)
        self.loop.enable()

    def stop(self) -> None:
        self.loop.disable()
        threading.setprofile(None)  # type: ignore[arg-type]

    def dump(self, path: str) -> list[str]:
        """Call once the profiled threads have ended; writes ``path`` (loop) and ``path.threads``."""
        pstats.Stats(self.loop).dump_stats(path)
        written = [path]
        if self.threads:
            pstats.Stats(*self.threads).dump_stats(f"{path}.threads")
            written.append(f"{path}.threads")
        return written


class Executors:
    """The loop's default executor, owned here: each end-to-end run gets fresh threads (so a
    profile sees them from their start) and the old ones are shut down."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.current: ThreadPoolExecutor | None = None
        self.renew()

    def renew(self) -> None:
        old, self.current = self.current, ThreadPoolExecutor(thread_name_prefix="asyncio")
        self.loop.set_default_executor(self.current)
        if old is not None:
            old.shutdown(wait=True)


@dataclass
class Run:
    backend: str
    messages: int  # in the mailbox
    size: int  # their bytes, as the bare loop counted them
    profiled: bool = False
    seconds: float = 0.0
    in_deliver: float = 0.0  # inside MailIngest.deliver
    in_prepare: float = 0.0  # of which in MailIngest._prepare (parse, blob writes)
    statements: int = 0  # SQL statements the database was sent
    batches: int = 0
    fetched: int = 0  # status.folders["INBOX"].fetched
    copies: int = 0
    quarantined: int = 0
    stored: int = 0  # MailMessage rows (a duplicate Message-ID is one message with two copies)
    linked: int = 0  # MailMessage rows not awaiting triage: filed under a client
    links: int = 0
    hub_cpu: float = 0.0  # this process's CPU time over the run's wall time (100% = one core)
    loop_cpu: float = 0.0  # the event loop's thread alone
    dovecot_cpu: float = 0.0
    load1: float = 0.0
    timed_out: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.fetched / self.seconds if self.seconds > 0 else 0.0


def dovecot_cpu_seconds(server: Dovecot) -> float:
    """CPU time of the instance's processes (its master leads their process group), the exited
    ones included through the master's reaped-children counters; NaN where /proc says nothing."""
    try:
        master = int((server.root / "base" / "master.pid").read_text().strip())
    except (OSError, ValueError):
        return float("nan")
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == master:
            ticks += int(fields[11]) + int(fields[12])
            if int(entry.name) == master:
                ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


async def count_rows(context: HubContext, run: Run) -> None:
    async with context.reading() as session:

        async def count(table: Any, *where: Any) -> int:
            return int(await session.scalar(select(func.count()).select_from(table).where(*where)) or 0)

        run.copies = await count(MailCopy)
        run.quarantined = await count(MailQuarantine)
        run.stored = await count(MailMessage)
        run.linked = await count(MailMessage, MailMessage.awaiting_triage.is_(False))
        run.links = await count(MailLink)


async def end_to_end(
    backend: str,
    url: str,
    server: Dovecot,
    user: MailUser,
    box: Mailbox,
    size: int,
    args: argparse.Namespace,
    executors: Executors,
    profile_path: str | None = None,
) -> tuple[Run, list[str]]:
    """The hub following INBOX from an empty checkpoint on a fresh database until every message is stored."""
    run = Run(backend, len(box.messages), size, profiled=profile_path is not None)
    profiles = ThreadProfiles() if profile_path is not None else None
    with tempfile.TemporaryDirectory(prefix="hub_bench_imap_") as data_dir:
        settings = Settings(database_url=url, data_dir=Path(data_dir), mail={"own_domains": [OWN_DOMAIN]})
        context = await HubContext.open(settings, upgrade=True)
        connector: ImapConnector | None = None
        task: asyncio.Task[None] | None = None
        try:
            await seed_clients(context, box.companies)
            # The run opens its own connections (on SQLite, each with its aiosqlite thread) and gets
            # fresh executor threads, so what the profile sees starts with the run.
            await context.engine.dispose()
            executors.renew()
            sink = MeasuredIngest(context, len(box.messages))
            statements = 0

            def count_statement(*_: object) -> None:
                nonlocal statements
                statements += 1

            event.listen(context.engine.sync_engine, "before_cursor_execute", count_statement)
            mailbox = MailboxSettings(
                name=MAILBOX,
                host=server.host,
                port=server.port,
                username=user.name,
                password=user.password,
                security="none",
                folders=("INBOX",),
                fetch_batch=args.batch,
                timeout=60.0,
                idle_seconds=600.0,
            )
            connector = ImapConnector(mailbox, sink)
            dovecot_before, cpu_before, loop_cpu_before = (
                dovecot_cpu_seconds(server),
                time.process_time(),
                time.thread_time(),
            )
            if profiles is not None:
                profiles.start()
            started = time.perf_counter()
            task = asyncio.create_task(connector.run(), name="bench:imap")
            waiter = asyncio.create_task(sink.done.wait())
            await asyncio.wait({task, waiter}, timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED)
            if profiles is not None:
                profiles.stop()  # and again below, should the run fail before this
            wall = time.perf_counter() - started
            run.hub_cpu = (time.process_time() - cpu_before) / wall
            run.loop_cpu = (time.thread_time() - loop_cpu_before) / wall
            run.dovecot_cpu = (dovecot_cpu_seconds(server) - dovecot_before) / wall
            run.load1 = os.getloadavg()[0]
            waiter.cancel()
            run.timed_out = sink.finished_at is None
            run.seconds = (sink.finished_at or time.perf_counter()) - started
            run.in_deliver, run.in_prepare, run.batches = sink.in_deliver, sink.in_prepare, sink.batches
            run.statements = statements
            status = connector.status.folders.get("INBOX")
            run.fetched = status.fetched if status is not None else 0
            if task.done() and not task.cancelled() and task.exception() is not None:
                run.errors.append(f"the connector ended: {task.exception()!r}")
            for error in (connector.status.last_error, status.last_error if status else None):
                if error and error not in run.errors:
                    run.errors.append(f"the connector reported: {error}")
        finally:
            if profiles is not None:
                profiles.stop()
            if connector is not None:
                await connector.stop()
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            try:
                await count_rows(context, run)
            finally:
                await context.close()
    written: list[str] = []
    if profiles is not None and profile_path is not None:
        executors.renew()  # the profiled workers end here; aiosqlite's threads ended with the engine
        await asyncio.sleep(0.05)
        written = profiles.dump(profile_path)
    return run, written


# -- the report -----------------------------------------------------------------------------------


def bare_reference(bare: Sequence[BarePass], box: Mailbox) -> tuple[float, float]:
    """The reference every run is judged against: the median bare pass's seconds, and the rate they make."""
    seconds = statistics.median(p.seconds for p in bare)
    return seconds, len(box.messages) / seconds


def share_of_bare(run: Run, bare_rate: float) -> float:
    return run.per_second / bare_rate if bare_rate > 0 else 0.0


def misses_of(run: Run, bare_rate: float, box: Mailbox) -> list[str]:
    misses = []
    share = share_of_bare(run, bare_rate)
    if share < TARGET_SHARE_OF_BARE:
        misses.append(f"{share:.1%} of the bare fetch rate is under {TARGET_SHARE_OF_BARE:.0%}")
    if run.timed_out:
        misses.append(f"timed out: {run.fetched} of {run.messages} messages stored")
    if run.fetched != run.messages:
        misses.append(f"the connector counted {run.fetched} messages fetched and stored, {run.messages} in the mailbox")
    if run.copies + run.quarantined != run.messages:
        misses.append(
            f"{run.copies} copies logged + {run.quarantined} quarantined = {run.copies + run.quarantined}, "
            f"not the {run.messages} in the mailbox"
        )
    if run.quarantined > box.specimens:
        misses.append(f"{run.quarantined} quarantined: ordinary mail among them (only {box.specimens} are hostile)")
    if run.linked != box.linkable:
        misses.append(f"{run.linked} messages linked to a client, {box.linkable} name an address on a card")
    return misses + run.errors


def verdict_of(run: Run, bare_rate: float, box: Mailbox) -> bool | None:
    """Whether the run met the target and missed nothing else; None for a profiled run (not judged)."""
    return None if run.profiled else not misses_of(run, bare_rate, box)


def summary_rows(bare: Sequence[BarePass], runs: Sequence[Run], box: Mailbox) -> list[Row]:
    """The bare reference, and each end-to-end run against it with the report's verdict."""
    _, bare_rate = bare_reference(bare, box)
    rows = [Row("imap", BARE, "-", bare_rate, "messages/s")]
    for run in runs:
        figure, target = (f"{END_TO_END}, under cProfile", "") if run.profiled else (END_TO_END, TARGET)
        rows.append(Row("imap", figure, run.backend, run.per_second, "messages/s", bare_rate, BARE, target,
                        verdict_of(run, bare_rate, box)))  # fmt: skip
    return rows


def print_report(
    bare: Sequence[BarePass], runs: Sequence[Run], box: Mailbox, args: argparse.Namespace, warnings: Counter[str]
) -> None:
    median_seconds, bare_rate = bare_reference(bare, box)
    size = bare[0].size
    megabytes = size / 1e6
    print(
        f"\ncores: {os.cpu_count()}   python {sys.version.split()[0]}   load1 now {os.getloadavg()[0]:.1f}   "
        f"mailbox: {len(box.messages)} messages, {megabytes:.1f} MB ({size / len(box.messages) / 1024:.1f} KiB "
        f"on average), UID FETCH in batches of {args.batch}"
    )
    print("mix: " + ", ".join(f"{n} {kind}" for kind, n in box.kinds.items()))
    header = (
        f"{'what':<40}{'backend':<11}{'messages':>9}{'seconds':>9}{'msg/s':>8}{'MB/s':>7}{'% of bare':>10}"
        f"{'fetch':>7}{'parse':>7}{'log':>7}{'sql/msg':>8}{'hub cpu':>8}{'loop cpu':>9}{'dovecot':>8}{'load1':>6}"
        "  verdict"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{BARE + ' (reference)':<40}{'-':<11}{len(box.messages):>9}{median_seconds:>9.3f}"
        f"{bare_rate:>8,.0f}{megabytes / median_seconds:>7.1f}{1:>10.0%}{'':>7}{'':>7}{'':>7}{'':>8}{'':>8}{'':>9}"
        f"{'':>8}{'':>6}  -"
    )
    for run in runs:
        label = "  the same under cProfile" if run.profiled else END_TO_END
        met = verdict_of(run, bare_rate, box)
        verdict = "info" if met is None else "PASS" if met else "FAIL"
        wall = run.seconds or float("nan")
        shares = (wall - run.in_deliver, run.in_prepare, run.in_deliver - run.in_prepare)
        print(
            f"{label:<40}{run.backend:<11}{run.fetched:>9}{run.seconds:>9.2f}{run.per_second:>8,.0f}"
            f"{megabytes / wall:>7.1f}{share_of_bare(run, bare_rate):>10.1%}"
            + "".join(f"{share / wall:>7.0%}" for share in shares)
            + f"{run.statements / max(1, run.fetched):>8.1f}{run.hub_cpu:>8.0%}{run.loop_cpu:>9.0%}"
            f"{run.dovecot_cpu:>8.0%}{run.load1:>6.1f}  {verdict}"
        )
    rates = ", ".join(f"{p.per_second:,.0f}" for p in bare)
    print(
        f"\nbare: the median of {len(bare)} passes ({rates} msg/s), {args.bare_passes} just before and after each "
        "end-to-end run; each pass connects, logs in, selects and fetches every message"
    )
    print(
        "end to end: from ImapConnector.run() (a session to find the folders, then one for INBOX: select, "
        "checkpoint, UID SEARCH, fetch) to the commit of the batch holding the last message"
    )
    print(
        "fetch, parse, log: shares of that time.  parse: in MailIngest._prepare (parsing, blob writes with fsync; "
        "in a thread, one message at a time); log: the rest of MailIngest.deliver (MailLog.file and the checkpoint "
        "in one transaction per batch, and the hops to and from the thread); fetch: the rest (the connector's "
        "IMAP commands, which it does not overlap with filing).  sql/msg: statements sent to the database per message"
    )
    print(
        "hub cpu: this process's CPU time over the run's wall time (100% = one core; aiosqlite's and the parse "
        "threads included); loop cpu: the event loop's thread alone; dovecot: the server's processes; load1 as the "
        f"run ended (above {os.cpu_count()}: the machine was shared, and the figures say so)"
    )
    if args.quick:
        print("--quick: a smoke run; with few messages the fixed costs (logins, the first statements) weigh more")
    print(f"\ntarget: {TARGET} (applied to every backend)")
    for run in runs:
        misses = misses_of(run, bare_rate, box)
        met = verdict_of(run, bare_rate, box)
        result = "info, not judged (the profiler slows it)" if met is None else "PASS" if met else "FAIL"
        print(
            f"{run.backend}, end to end{' (profiled)' if run.profiled else ''}: {result}; {run.fetched} fetched in "
            f"{run.batches} batches, {run.copies} copies logged ({run.stored} messages), {run.quarantined} "
            f"quarantined, {run.linked} linked to a client ({box.linkable} expected, {run.links} links), "
            f"{run.stored - run.linked} awaiting triage; per message {_ms(run.seconds - run.in_deliver, run)} "
            f"fetching, {_ms(run.in_prepare, run)} parsing, {_ms(run.in_deliver - run.in_prepare, run)} logging"
        )
        if not run.profiled:
            for miss in misses:
                print(f"  - {miss}")
    if warnings:
        print("\nwarnings the hub logged during the end-to-end runs (quarantines are the corpus's broken specimens):")
        for text, count in warnings.most_common():
            print(f"  {count:>6} x {text}")


def _ms(seconds: float, run: Run) -> str:
    return f"{seconds / max(1, run.fetched) * 1000:.2f} ms"


def print_profile(paths: Sequence[str], backend: str, run: Run) -> None:
    print(
        f"\nprofile of the end-to-end run on {backend} under cProfile ({run.seconds:.2f} s, "
        f"{run.per_second:,.0f} msg/s with the profiler on)"
    )
    titles = (
        "the event loop's thread (epoll.poll is the loop waiting: for Dovecot, for a thread, for the database)",
        "the other threads, merged: parsing and blob writes (asyncio's executor) and, on SQLite, aiosqlite's "
        "connection threads (their lock.acquire / queue get is waiting for work)",
    )
    for path, title in zip(paths, titles, strict=False):
        out = io.StringIO()
        pstats.Stats(path, stream=out).sort_stats("tottime").print_stats(30)
        print(f"\n{title}, by own time ({path}):")
        print(out.getvalue())


# -- the command --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--messages", type=int, default=2000, help="messages in the mailbox")
    parser.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        help=f"messages per UID FETCH (the connector's default, at most {MAX_BATCH})",
    )
    parser.add_argument("--bare-passes", type=int, default=3, help="bare passes before and after each end-to-end run")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds an end-to-end run may take")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 300 messages")
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="after the measured runs, one more end-to-end run per backend under cProfile, into PATH.<backend> "
        "(the event loop) and PATH.<backend>.threads; the top 30 of each by own time are printed",
    )
    parser.add_argument(
        "--pg-dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="an admin DSN; a hub_bench_<random> database is created and dropped for each run",
    )
    parser.add_argument("--seed", type=int, default=1)
    add_summary_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.bare_passes, args.timeout = 300, 2, 120.0
    if args.messages < 10 or not 1 <= args.batch <= MAX_BATCH or args.bare_passes < 1:
        parser.error(f"--messages must be at least 10, --batch within 1..{MAX_BATCH}, --bare-passes at least 1")
    return args


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    executors = Executors(asyncio.get_running_loop())
    started = time.perf_counter()
    box = make_mailbox(args.messages, rng)
    print(
        f"generated {len(box.messages)} messages ({box.size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s; "
        f"{box.linkable} of the {box.ordinary} ordinary ones name an address on a card",
        flush=True,
    )
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    bare: list[BarePass] = []
    runs: list[Run] = []
    profiles: list[tuple[list[str], str, Run]] = []
    failures: list[str] = []
    tally: WarningTally | None = None
    server = Dovecot()
    try:
        await asyncio.to_thread(server.start)
        user = server.add_user("bench", secrets.token_urlsafe(12))
        started = time.perf_counter()
        uids = await asyncio.to_thread(load_mailbox, server, user, box.messages)
        print(f"appended to Dovecot in {time.perf_counter() - started:.1f} s", flush=True)

        async def bare_passes() -> None:
            for _ in range(args.bare_passes):
                bare.append(await bare_fetch(server, user, uids, args.batch, 60.0))
            print(f"bare: {', '.join(f'{p.per_second:,.0f}' for p in bare[-args.bare_passes :])} msg/s", flush=True)

        await bare_fetch(server, user, uids, args.batch, 60.0)  # warm-up: Dovecot's caches, the page cache
        tally = configure_logs()
        await bare_passes()
        plan = [(backend, False) for backend in backends]
        if args.profile:
            plan += [(backend, True) for backend in backends]
        for backend, profiled in plan:
            try:
                database = sqlite_database() if backend == "sqlite" else postgresql_database(args.pg_dsn)
                async with database as url:
                    path = f"{args.profile}.{backend}" if profiled else None
                    run, written = await end_to_end(
                        backend, url, server, user, box, bare[0].size, args, executors, path
                    )
                runs.append(run)
                if written:
                    profiles.append((written, backend, run))
                print(
                    f"{backend}{' (profiled)' if profiled else ''}: {run.fetched} messages in {run.seconds:.2f} s, "
                    f"{run.per_second:,.0f} msg/s",
                    flush=True,
                )
            except Exception as exc:  # report what was measured, and why the rest was not
                failures.append(f"{backend}: FAIL, the run stopped: {type(exc).__name__}: {exc}")
                print(failures[-1], flush=True)
            if not profiled:
                await bare_passes()
    finally:
        await asyncio.to_thread(server.close)
    if not bare:
        print("no bare pass was measured: nothing to compare with")
        return 1
    print_report(bare, runs, box, args, tally.seen if tally is not None else Counter())
    write_summary(args.summary, summary_rows(bare, runs, box))
    for failure in failures:
        print(failure)
    for paths, backend, run in profiles:
        print_profile(paths, backend, run)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
