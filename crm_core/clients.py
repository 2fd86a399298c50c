"""The client book: storing counterparty cards and finding them by name, phone or e-mail.

Every capability that logs against a client (calls, mail, mailings, 1C) comes through
here to ask "who is this?", so the matching rules live in one place: exact E.164
first, then the last N digits; several matches are returned as candidates, never
silently the first.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    Row,
    Select,
    and_,
    bindparam,
    case,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit, emails, phones
from crm_core.audit import Actor
from crm_core.client_data import ClientIn, ContactIn, client_to_dict, client_to_input, person_name
from crm_core.errors import Conflict, DomainError, InvalidInput, NotFound
from crm_core.models import Client, ClientTag, Contact, Email, Phone, User, utcnow
from crm_core.outbox import Event, publish
from crm_core.paging import Page, fetch_page

MAX_CANDIDATES = 50
PHONES_PER_STATEMENT = 64
EMAILS_PER_STATEMENT = 500
INNS_PER_STATEMENT = 500


@dataclass(frozen=True, slots=True)
class MatchRules:
    """How numbers and addresses are compared; from the settings."""

    region: str = "RU"
    suffix_digits: int = 10
    fold_plus: bool = False


@dataclass(frozen=True, slots=True)
class Candidate:
    """One client (and perhaps one contact person) that a number or address points to."""

    client_id: int
    client_name: str
    contact_id: int | None
    contact_name: str | None
    matched: str  # the stored number or address that matched


@dataclass(frozen=True, slots=True)
class Lookup:
    """The answer to "who is this?": how it matched and every candidate."""

    match: str  # "exact", "suffix" or "none"
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def client_ids(self) -> list[int]:
        return list(dict.fromkeys(c.client_id for c in self.candidates))

    @property
    def is_ambiguous(self) -> bool:
        return len(self.client_ids) > 1

    @property
    def owner(self) -> tuple[int, int | None] | None:
        """(client id, contact id) when the match names one client (and one contact, if any)."""
        client_ids = self.client_ids
        if len(client_ids) != 1:
            return None
        contacts = {c.contact_id for c in self.candidates}
        return client_ids[0], contacts.pop() if len(contacts) == 1 else None


@dataclass(frozen=True, slots=True)
class ClientQuery:
    q: str | None = None
    name: str | None = None
    inn: str | None = None
    phone: str | None = None
    email: str | None = None
    tag: str | None = None
    status: str | None = None
    owner_id: int | None = None
    page: int = 1
    per_page: int = 50


def _holders_of(table: type[Phone] | type[Email], condition: Any, first: Any, *shown: Any) -> Select[Any]:
    """Rows of ``table`` meeting ``condition``, ``first`` first, with their live client's and contact's names.

    Built once at import, since the lookups run on every ringing call.  The ORDER BY
    starts with an expression no index can serve, so no planner (PostgreSQL's generic
    plans included) is tempted to walk the client_id index over the whole table.
    """
    return (
        select(
            table.client_id,
            Client.name,
            table.contact_id,
            Contact.first_name,
            Contact.middle_name,
            Contact.last_name,
            *shown,
        )
        .join(Client, Client.id == table.client_id)
        .outerjoin(Contact, Contact.id == table.contact_id)
        .where(condition, Client.deleted_at.is_(None))
        .order_by(case((first, 0), else_=1), table.client_id, table.id)
        .limit(MAX_CANDIDATES)
    )


_EXACT_E164 = Phone.e164 == bindparam("e164")
_PHONES_BY_SUFFIX = _holders_of(
    Phone,
    and_(Phone.digits_rev >= bindparam("lo"), Phone.digits_rev < bindparam("hi")),
    _EXACT_E164,
    Phone.e164,
    Phone.raw,
)
_PHONES_BY_DIGITS = _holders_of(Phone, Phone.digits_rev == bindparam("digits"), _EXACT_E164, Phone.e164, Phone.raw)
_EMAILS_LOWERED = _holders_of(Email, Email.address_lower == bindparam("address"), true(), Email.address)
_EMAILS_FOLDED = _holders_of(Email, Email.address_folded == bindparam("address"), true(), Email.address)
_ADDRESSES: BindParameter[list[str]] = bindparam("addresses", expanding=True)
_EMAILS_IN_LOWERED = _holders_of(
    Email, Email.address_lower.in_(_ADDRESSES), true(), Email.address, Email.address_lower.label("key")
).limit(None)
_EMAILS_IN_FOLDED = _holders_of(
    Email, Email.address_folded.in_(_ADDRESSES), true(), Email.address, Email.address_folded.label("key")
).limit(None)


@functools.cache
def _phones_by_suffixes(count: int) -> CompoundSelect[Any]:
    """``count`` suffix ranges (``lo<i>``, ``hi<i>``) in one statement; ``q`` says which range a row is from."""
    ranges = [
        _holders_of(
            Phone,
            and_(Phone.digits_rev >= bindparam(f"lo{i}"), Phone.digits_rev < bindparam(f"hi{i}")),
            true(),
            Phone.e164,
            Phone.raw,
            Phone.id.label("phone_id"),
            literal_column(str(i)).label("q"),
        ).subquery()
        for i in range(count)
    ]
    return union_all(*(select(r) for r in ranges))


def _address_matched(row: Row[Any]) -> str:
    return str(row.address)


def _phone_matched(row: Row[Any]) -> str:
    return str(row.e164 or row.raw)


def _suffix_lookup(key: phones.NormalisedPhone, rows: Sequence[Row[Any]]) -> Lookup:
    """Holders of the number's last digits: the exact E.164 ones if any, else all of them."""
    exact = [r for r in rows if key.e164 and r.e164 == key.e164]
    chosen, how = (exact, "exact") if exact else (rows, "suffix" if rows else "none")
    return Lookup(how, _candidates(chosen, _phone_matched))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_text(name: str, full_name: str) -> str:
    """Case-folded in Python: SQLite's LIKE folds ASCII only, and names are Cyrillic."""
    return f"{name}\n{full_name}".casefold()


class ClientBook:
    """Cards in one unit of work: the caller owns the session and its transaction."""

    def __init__(self, session: AsyncSession, rules: MatchRules | None = None) -> None:
        self.session = session
        self.rules = rules or MatchRules()
        self._updated: list[tuple[Client, dict[str, list[Any]], Actor]] = []

    # -- reading -----------------------------------------------------------------

    async def get(self, client_id: int, *, include_deleted: bool = False) -> Client:
        """By key: a card this session already holds costs no query (a sync's batch loads many at once)."""
        client = await self.session.get(Client, client_id)
        if client is None or (client.deleted_at is not None and not include_deleted):
            raise NotFound(f"client {client_id} not found")
        return client

    async def find_by_phone(self, number: str) -> Lookup:
        """Exact E.164 first, then the last N digits; every match is a candidate.

        One indexed range scan serves both: a stored number whose E.164 equals the
        caller's has the same digits, so it lies in the suffix range too, and the
        exact ones are picked out here.  Hot path of every screen-pop.
        """
        key = phones.normalise(number, self.rules.region)
        if not key.digits:
            return Lookup("none")
        n = self.rules.suffix_digits
        if len(key.digits) >= n:  # short numbers (extensions, service codes) only match in full
            prefix = phones.suffix_of(key.digits, n)
            rows = await self._holders(_PHONES_BY_SUFFIX, lo=prefix, hi=prefix + ":", e164=key.e164)
            return _suffix_lookup(key, rows)
        rows = await self._holders(_PHONES_BY_DIGITS, digits=key.digits_reversed, e164=key.e164)
        if rows:  # a short number matched in full is an exact match
            return Lookup("exact", _candidates(rows, _phone_matched))
        return Lookup("none")

    async def find_by_phones(self, numbers: Iterable[str]) -> dict[str, Lookup]:
        """``find_by_phone`` for many numbers at once (a backlog of calls, the pops waiting in a
        queue): full-length numbers take one statement per ``PHONES_PER_STATEMENT``."""
        n = self.rules.suffix_digits
        result: dict[str, Lookup] = {}
        wanted: dict[str, phones.NormalisedPhone] = {}
        for number in dict.fromkeys(numbers):
            key = phones.normalise(number, self.rules.region)
            if len(key.digits) >= n:
                wanted[number] = key
            else:
                result[number] = await self.find_by_phone(number)
        prefixes = list(dict.fromkeys(phones.suffix_of(key.digits, n) for key in wanted.values()))
        holders: defaultdict[str, list[Row[Any]]] = defaultdict(list)
        for start in range(0, len(prefixes), PHONES_PER_STATEMENT):
            chunk = prefixes[start : start + PHONES_PER_STATEMENT]
            size = 1 << (len(chunk) - 1).bit_length()  # padded, so few statement shapes get compiled
            values = {f"lo{i}": "" for i in range(size)} | {f"hi{i}": "" for i in range(size)}
            for i, prefix in enumerate(chunk):
                values[f"lo{i}"], values[f"hi{i}"] = prefix, prefix + ":"
            for row in await self.session.execute(_phones_by_suffixes(size), values):
                holders[chunk[row.q]].append(row)
        for number, key in wanted.items():
            rows = holders[phones.suffix_of(key.digits, n)]
            if len(rows) >= MAX_CANDIDATES:  # cut short: only the one-number query knows which to keep
                result[number] = await self.find_by_phone(number)
            else:
                rows.sort(key=lambda r: (r.e164 != key.e164, r.client_id, r.phone_id))
                result[number] = _suffix_lookup(key, rows)
        return result

    async def find_by_email(self, address: str, fold_plus: bool | None = None) -> Lookup:
        """Case-insensitive; with plus-folding ``ivan+shop@x.ru`` also finds ``ivan@x.ru``."""
        key = emails.normalise(address)
        fold = self.rules.fold_plus if fold_plus is None else fold_plus
        if fold:
            rows = await self._holders(_EMAILS_FOLDED, address=key.folded)
        else:
            rows = await self._holders(_EMAILS_LOWERED, address=key.lowered)
        return Lookup("exact" if rows else "none", _candidates(rows, _address_matched))

    async def find_by_emails(self, addresses: Iterable[str]) -> dict[str, Lookup]:
        """``find_by_email`` for many addresses at once (the 500 recipients of a circular)."""
        column = "folded" if self.rules.fold_plus else "lowered"
        keys = {a: getattr(emails.normalise(a), column) for a in dict.fromkeys(addresses)}
        values = list(dict.fromkeys(keys.values()))
        holders: defaultdict[str, list[Row[Any]]] = defaultdict(list)
        statement = _EMAILS_IN_FOLDED if self.rules.fold_plus else _EMAILS_IN_LOWERED
        for start in range(0, len(values), EMAILS_PER_STATEMENT):
            chunk = values[start : start + EMAILS_PER_STATEMENT]
            for row in await self.session.execute(statement, {"addresses": chunk}):
                holders[row.key].append(row)
        return {
            address: Lookup(
                "exact" if holders[key] else "none", _candidates(holders[key][:MAX_CANDIDATES], _address_matched)
            )
            for address, key in keys.items()
        }

    async def _holders(self, statement: Select[Any], **values: str | None) -> list[Row[Any]]:
        return list((await self.session.execute(statement, values)).all())

    async def search(self, query: ClientQuery) -> Page[Client]:
        conditions: list[Any] = [Client.deleted_at.is_(None)]
        if query.q:
            conditions.append(await self._free_text(query.q))
        if query.name:
            conditions.append(Client.search_name.like(f"%{_like_escape(query.name.casefold())}%", escape="\\"))
        if query.inn:
            conditions.append(Client.inn.like(f"{_like_escape(query.inn)}%", escape="\\"))
        if query.phone:
            conditions.append(Client.id.in_((await self.find_by_phone(query.phone)).client_ids))
        if query.email:
            conditions.append(Client.id.in_((await self.find_by_email(query.email)).client_ids))
        if query.tag:
            conditions.append(Client.id.in_(select(ClientTag.client_id).where(ClientTag.tag == query.tag)))
        if query.status:
            conditions.append(Client.status == query.status)
        if query.owner_id is not None:
            conditions.append(Client.owner_id == query.owner_id)
        return await fetch_page(
            self.session, Client, and_(*conditions), (Client.search_name, Client.id), query.page, query.per_page
        )

    async def _free_text(self, text: str) -> Any:
        """One search box: an address, a number (phone or INN) or part of a name."""
        text = text.strip()
        if "@" in text:
            return Client.id.in_((await self.find_by_email(text)).client_ids)
        name_match = Client.search_name.like(f"%{_like_escape(text.casefold())}%", escape="\\")
        digits = "".join(ch for ch in text if ch.isdigit())
        if len(digits) >= 5 and len(digits) >= len(text.replace(" ", "")) * 0.6:
            by_phone = Client.id.in_((await self.find_by_phone(text)).client_ids)
            return or_(by_phone, Client.inn.like(f"{digits}%"), name_match)
        return name_match

    # -- changing ----------------------------------------------------------------

    async def create(self, data: ClientIn, actor: Actor, *, source: str = "api") -> Client:
        await self._check_rules(data, exclude_id=None)
        client = Client(version=1, created_at=utcnow(), updated_at=utcnow())
        self._apply(client, data, existing_contacts={})
        self.session.add(client)
        await self.session.flush()
        audit.record(self.session, actor, "create", "client", client.id, source=source)
        await publish(self.session, Event("client.created", client_to_dict(client), client.id))
        return client

    async def create_many(self, items: Sequence[ClientIn], actor: Actor, *, source: str) -> list[Client | DomainError]:
        """Many cards in one flush (a sync's or an import's batch), the rules checked for all at once.

        A card the rules refuse (an INN taken in the database or earlier in ``items``, an
        unknown owner) is answered with its ``Conflict`` in its place; the others are created.
        """
        taken = await self._taken_requisites(items)
        owners = {i.owner_id for i in items if i.owner_id is not None}
        known = set(await self.session.scalars(select(User.id).where(User.id.in_(owners)))) if owners else set()
        results: list[Client | DomainError] = []
        for data in items:
            key = (data.inn, data.kpp)
            if data.owner_id is not None and data.owner_id not in known:
                results.append(InvalidInput(f"owner {data.owner_id} is not a user", field="owner_id"))
            elif data.inn and key in taken:
                holder = f"client {taken[key]}" if taken[key] else "an earlier card of the same batch"
                results.append(
                    Conflict(f"{holder} already has INN {data.inn}" + (f" / KPP {data.kpp}" if data.kpp else ""))
                )
            else:
                client = Client(version=1, created_at=utcnow(), updated_at=utcnow())
                self._apply(client, data, existing_contacts={})
                self.session.add(client)
                results.append(client)
                if data.inn:
                    taken[key] = None
        made = [c for c in results if isinstance(c, Client)]
        if made:
            await self.session.flush()
            await audit.record_many(self.session, actor, "create", "client", [c.id for c in made], source=source)
            await publish(self.session, *(Event("client.created", client_to_dict(c), c.id) for c in made))
        return results

    async def _taken_requisites(self, items: Sequence[ClientIn]) -> dict[tuple[str | None, str | None], int | None]:
        inns = sorted({i.inn for i in items if i.inn})
        taken: dict[tuple[str | None, str | None], int | None] = {}
        for start in range(0, len(inns), INNS_PER_STATEMENT):
            rows = await self.session.execute(
                select(Client.inn, Client.kpp, Client.id).where(
                    Client.inn.in_(inns[start : start + INNS_PER_STATEMENT]), Client.deleted_at.is_(None)
                )
            )
            taken.update({(inn, kpp): client_id for inn, kpp, client_id in rows})
        return taken

    async def update(
        self,
        client_id: int,
        changes: dict[str, Any],
        actor: Actor,
        *,
        expected_version: int | None = None,
        include_deleted: bool = False,
        batched: bool = False,
    ) -> tuple[Client, dict[str, list[Any]]]:
        """Merge ``changes`` into the card, re-validate the whole, and log what changed.

        ``include_deleted``: a deleted card too (the 1C sync keeps a card marked for deletion current).
        ``batched``: the change is written, audited and announced by ``write_batched`` with others.
        """
        client = await self.get(client_id, include_deleted=include_deleted)
        if expected_version is not None and expected_version != client.version:
            raise Conflict(
                f"client {client_id} was changed by someone else (version {client.version}, you had {expected_version})"
            )
        before = client_to_input(client)
        data = ClientIn.model_validate({**before, **changes})
        await self._check_rules(data, exclude_id=client.id, previous=before)
        after = data.model_dump(mode="json")
        diff = {k: [before.get(k), after[k]] for k in after if before.get(k) != after[k]}
        if not diff:
            return client, {}
        self._apply(client, data, existing_contacts={c.id: c for c in client.contacts})
        client.version += 1
        client.updated_at = utcnow()
        self._updated.append((client, diff, actor))
        if not batched:
            await self.write_batched()
        return client, diff

    async def write_batched(self) -> None:
        """The updates made so far: one flush, then their audit entries and events together."""
        if not self._updated:
            return
        updated, self._updated = self._updated, []
        await self.session.flush()
        for client, diff, actor in updated:
            audit.record(self.session, actor, "update", "client", client.id, changed=diff)
        await publish(
            self.session,
            *(Event("client.updated", {**client_to_dict(c), "changed": diff}, c.id) for c, diff, _ in updated),
        )

    async def delete(self, client_id: int, actor: Actor) -> None:
        """Soft delete: calls and mail logged against the client keep their history."""
        client = await self.get(client_id)
        client.deleted_at = utcnow()
        client.version += 1
        audit.record(self.session, actor, "delete", "client", client.id, name=client.name)
        await publish(self.session, Event("client.deleted", {"id": client.id, "name": client.name}, client.id))

    async def restore(self, client_id: int, actor: Actor) -> Client:
        """Undo a soft delete (1C's deletion mark taken off); the INN rule applies again."""
        client = await self.get(client_id, include_deleted=True)
        if client.deleted_at is None:
            return client
        await self._check_rules(ClientIn.model_validate(client_to_input(client)), exclude_id=client.id)
        client.deleted_at = None
        client.version += 1
        client.updated_at = utcnow()
        audit.record(self.session, actor, "restore", "client", client.id, name=client.name)
        await publish(self.session, Event("client.updated", {**client_to_dict(client), "changed": {}}, client.id))
        return client

    async def _check_rules(
        self, data: ClientIn, exclude_id: int | None, previous: dict[str, Any] | None = None
    ) -> None:
        """Owner and requisites; on an update, requisites only if they change (they held when set)."""
        was = previous or {}
        if data.owner_id is not None and await self.session.get(User, data.owner_id) is None:
            raise InvalidInput(f"owner {data.owner_id} is not a user", field="owner_id")
        if data.inn and (data.inn, data.kpp) != (was.get("inn"), was.get("kpp")):
            same = select(Client.id).where(
                Client.inn == data.inn,
                Client.kpp.is_(None) if data.kpp is None else Client.kpp == data.kpp,
                Client.deleted_at.is_(None),
            )
            if exclude_id is not None:
                same = same.where(Client.id != exclude_id)
            other = await self.session.scalar(same.limit(1))
            if other is not None:
                raise Conflict(
                    f"client {other} already has INN {data.inn}" + (f" / KPP {data.kpp}" if data.kpp else "")
                )

    def _apply(self, client: Client, data: ClientIn, existing_contacts: dict[int, Contact]) -> None:
        client.kind = data.kind
        client.name = data.name
        client.full_name = data.full_name
        client.search_name = search_text(data.name, data.full_name)
        client.inn, client.kpp, client.ogrn = data.inn, data.kpp, data.ogrn
        client.addresses = [a.model_dump() for a in data.addresses]
        client.website = data.website
        client.status = data.status
        client.owner_id = data.owner_id
        client.custom_fields = dict(data.custom_fields)
        # Rows that stay as they were are kept (not deleted and inserted again): an edit of the
        # name costs one UPDATE, not one statement per phone, address and tag.
        kept_tags = {t.tag: t for t in client.tags}
        client.tags = [kept_tags.get(t) or ClientTag(tag=t) for t in data.tags]
        contacts = [self._contact(c, existing_contacts.get(c.id) if c.id else None) for c in data.contacts]
        client.contacts = [contact for contact, _ in contacts]
        kept_phones = _pool((_key(p.raw, p.label, p.contact_id, p.contact_id is not None), p) for p in client.phones)
        client.phones = [self._phone(p, None, kept_phones) for p in data.phones] + [
            self._phone(p, contact, kept_phones) for contact, spec in contacts for p in spec.phones
        ]
        kept_emails = _pool(
            (_key(e.address, e.label, e.contact_id, e.contact_id is not None), e) for e in client.emails
        )
        client.emails = [self._email(e, None, kept_emails) for e in data.emails] + [
            self._email(e, contact, kept_emails) for contact, spec in contacts for e in spec.emails
        ]

    @staticmethod
    def _contact(spec: ContactIn, existing: Contact | None) -> tuple[Contact, ContactIn]:
        contact = existing or Contact()
        for name in ("first_name", "middle_name", "last_name", "position", "note"):
            setattr(contact, name, getattr(spec, name))
        return contact, spec

    def _phone(self, spec: Any, contact: Contact | None, kept: dict[tuple[Any, ...], list[Phone]]) -> Phone:
        number = phones.normalise(spec.number, self.rules.region)
        same = kept.get(_key(number.raw, spec.label, *_owner(contact)))
        if same:
            return same.pop()
        return Phone(
            raw=number.raw,
            e164=number.e164,
            extension=number.extension,
            digits_rev=number.digits_reversed,
            label=spec.label,
            contact=contact,
        )

    @staticmethod
    def _email(spec: Any, contact: Contact | None, kept: dict[tuple[Any, ...], list[Email]]) -> Email:
        address = emails.normalise(spec.address)
        same = kept.get(_key(address.address, spec.label, *_owner(contact)))
        if same:
            return same.pop()
        return Email(
            address=address.address,
            address_lower=address.lowered,
            address_folded=address.folded,
            label=spec.label,
            contact=contact,
        )


_Kept = TypeVar("_Kept", Phone, Email)


def _pool(items: Iterable[tuple[tuple[Any, ...], _Kept]]) -> dict[tuple[Any, ...], list[_Kept]]:
    pool: dict[tuple[Any, ...], list[_Kept]] = defaultdict(list)
    for key, item in items:
        pool[key].append(item)
    return pool


def _key(value: str, label: str | None, contact_id: int | None, of_contact: bool) -> tuple[Any, ...]:
    """A phone or address row as kept: its value and label, and whose it is (a new contact's never match)."""
    return (value, label, contact_id, of_contact)


def _owner(contact: Contact | None) -> tuple[int | None, bool]:
    return (contact.id, True) if contact is not None else (None, False)


def _candidates(rows: Any, matched: Any) -> list[Candidate]:
    seen: set[tuple[int, int | None]] = set()
    result = []
    for row in rows:
        key = (row.client_id, row.contact_id)
        if key in seen:
            continue
        seen.add(key)
        contact_name = None
        if row.contact_id is not None:
            contact_name = person_name(row.last_name, row.first_name, row.middle_name)
        result.append(Candidate(row.client_id, row.name, row.contact_id, contact_name, matched(row)))
    return result
