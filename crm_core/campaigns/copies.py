"""One recipient's copy of a campaign: the templates rendered with the card, every link turned
into its click redirect, the open pixel added, and the unsubscribe URL made for that recipient.

With tracking off, links go straight to their URLs and there is no pixel; the unsubscribe
URL is always there (the law and RFC 8058 want it whatever the marketer wants to measure).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.templates import CampaignTemplate, Card, Person, Rendered, TemplateProblem, card_variables
from crm_core.campaigns.tokens import Purpose, make_token
from crm_core.models import Client, ClientTag, Contact


@dataclass(frozen=True, slots=True)
class TrackingUrls:
    base: str  # the hub as recipients reach it, e.g. https://hub.example.com
    key: bytes  # tokens.tracking_key(...)

    def open(self, recipient_id: int) -> str:
        return f"{self.base}/t/o/{make_token(self.key, Purpose.open, recipient_id)}"

    def click(self, recipient_id: int, link: int) -> str:
        return f"{self.base}/t/c/{make_token(self.key, Purpose.click, recipient_id, link)}"

    def unsubscribe(self, recipient_id: int) -> str:
        return f"{self.base}/u/{make_token(self.key, Purpose.unsubscribe, recipient_id)}"


@dataclass(frozen=True, slots=True)
class Copy:
    recipient_id: int
    address: str
    rendered: Rendered
    unsubscribe_url: str


class CampaignText(Protocol):
    """What a copy is made from: a ``Campaign``, or plain data carrying the same fields."""

    @property
    def name(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def text(self) -> str: ...


class CopyMaker:
    """Renders one campaign for many recipients; the templates are compiled once."""

    def __init__(self, campaign: CampaignText, urls: TrackingUrls, *, tracked: bool) -> None:
        self.name = campaign.name
        self.tracking = tracked
        self.template = CampaignTemplate.compile(campaign.subject, campaign.html, campaign.text)
        self.urls = urls

    def variables(self, recipient_id: int, address: str, card: Card, person: Person) -> dict[str, Any]:
        """What the templates see; plain data, so rendering can run off the event loop."""
        return card_variables(card, person, address, self.name, self.urls.unsubscribe(recipient_id))

    def make(self, recipient_id: int, address: str, variables: dict[str, Any]) -> Copy:
        """Raises ``TemplateProblem`` naming the recipient when their card breaks a template."""
        links = None
        pixel = None
        if self.tracking:
            links = [self.urls.click(recipient_id, n) for n in range(1, len(self.template.links) + 1)]
            pixel = self.urls.open(recipient_id)
        try:
            rendered = self.template.render(variables, link_urls=links, pixel_url=pixel)
        except TemplateProblem as exc:
            raise exc.for_recipient(address) from None
        return Copy(recipient_id, address, rendered, variables["unsubscribe_url"])


async def cards_of(
    session: AsyncSession, client_ids: Collection[int], contact_ids: Collection[int]
) -> tuple[dict[int, Card], dict[int, Person]]:
    """The living cards and the contact persons of a batch of recipients, read as rows (three
    statements for the batch); a deleted card is left out."""
    rows = await session.execute(
        select(Client.id, Client.name, Client.full_name, Client.kind, Client.inn, Client.kpp, Client.website,
               Client.status, Client.custom_fields)
        .where(Client.id.in_(client_ids), Client.deleted_at.is_(None))
    )  # fmt: skip
    fields = rows.all()
    tags: dict[int, list[str]] = {}
    for client_id, tag in await session.execute(
        select(ClientTag.client_id, ClientTag.tag).where(ClientTag.client_id.in_(client_ids)).order_by(ClientTag.tag)
    ):
        tags.setdefault(client_id, []).append(tag)
    cards = {
        cid: Card(cid, name, full_name, kind.value, inn or "", kpp or "", website or "", status.value,
                  tuple(tags.get(cid, ())), custom or {})
        for cid, name, full_name, kind, inn, kpp, website, status, custom in fields
    }  # fmt: skip
    people = {
        pid: Person(first, middle, last, position)
        for pid, first, middle, last, position in await session.execute(
            select(Contact.id, Contact.first_name, Contact.middle_name, Contact.last_name, Contact.position).where(
                Contact.id.in_(contact_ids)
            )
        )
    }
    return cards, people
