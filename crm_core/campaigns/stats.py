"""What a campaign's mailing did: its recipients by state, bounces, opens and clicks (people's
and machines' apart), unsubscribes, per link and over time; and the same per recipient, as
rows for a table and as CSV.

Everything is counted in SQL with conditional aggregates, so a campaign of any size costs a
handful of queries.  Machines' hits (image proxies, link scanners) are counted apart and never
in the rates: a rate says what people did.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, Subquery, and_, case, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.book import Campaigns
from crm_core.campaigns.models import Bounce, CampaignLink, Recipient, RecipientStatus, TrackingHit
from crm_core.client_csv.cells import FORMULA_START
from crm_core.errors import InvalidInput, NotFound
from crm_core.models import UTCDateTime

BucketSize = Literal["hour", "day"]

# A recipient with several bounces counts once, under the worst: a soft bounce can be followed
# by the hard one of the same message, a bounce by a complaint.
_SEVERITY = {"soft": 1, "hard": 2, "complaint": 3}
_KIND_OF = {severity: kind for kind, severity in _SEVERITY.items()}


@dataclass(frozen=True, slots=True)
class Hits:
    total: int
    unique: int  # distinct recipients


@dataclass(frozen=True, slots=True)
class Engagement:
    """Opens or clicks; a recipient with hits of both kinds counts among people and machines."""

    human: Hits
    machine: Hits


@dataclass(frozen=True, slots=True)
class Bounced:
    total: int
    hard: int
    soft: int
    complaint: int


@dataclass(frozen=True, slots=True)
class LinkStats:
    number: int
    url: str  # as written in the campaign, before it is rendered for each recipient
    clicks: int
    unique_clicks: int
    machine_clicks: int


@dataclass(frozen=True, slots=True)
class TimeBucket:
    start: datetime
    opens: int
    machine_opens: int
    clicks: int
    machine_clicks: int


@dataclass(frozen=True, slots=True)
class CampaignStats:
    campaign_id: int
    recipients: dict[str, int]  # every status, zeros included
    bounced: Bounced
    opens: Engagement
    clicks: Engagement
    unsubscribed: int
    links: tuple[LinkStats, ...]
    bucket: BucketSize
    timeline: tuple[TimeBucket, ...]  # only buckets with hits, oldest first

    @property
    def sent(self) -> int:
        return self.recipients[RecipientStatus.sent.value]

    @property
    def open_rate(self) -> float | None:
        return _ratio(self.opens.human.unique, self.sent)

    @property
    def click_rate(self) -> float | None:
        return _ratio(self.clicks.human.unique, self.sent)

    @property
    def click_to_open(self) -> float | None:
        """Can pass 1: a person who clicks with images blocked has no recorded open."""
        return _ratio(self.clicks.human.unique, self.opens.human.unique)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["links"] = list(data["links"])
        data["timeline"] = [{**point, "start": point["start"].isoformat()} for point in data["timeline"]]
        return data | {
            "sent": self.sent,
            "failed": self.recipients[RecipientStatus.failed.value],
            "review": self.recipients[RecipientStatus.review.value],
            "rates": {"open": self.open_rate, "click": self.click_rate, "click_to_open": self.click_to_open},
        }


@dataclass(frozen=True, slots=True)
class RecipientRow:
    id: int
    address: str
    client_id: int | None
    status: str
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    opens: int  # people's; machines' are apart
    machine_opens: int
    clicks: int
    machine_clicks: int
    first_open_at: datetime | None  # a person's
    last_click_at: datetime | None  # a person's
    unsubscribed: bool
    bounce: str | None  # hard, soft or complaint: the worst of the recipient's

    def as_dict(self) -> dict[str, Any]:
        return {name: value.isoformat() if isinstance(value, datetime) else value for name, value in _items(self)}


_ROW_FIELDS = tuple(field.name for field in fields(RecipientRow))


async def campaign_stats(session: AsyncSession, campaign_id: int, bucket: BucketSize = "hour") -> CampaignStats:
    """The campaign's figures; ``NotFound`` if there is no such campaign.

    The timeline is grouped in SQL, the hour or day cut in UTC by each database's own function
    (``date_trunc`` on PostgreSQL, ``strftime`` on SQLite): a campaign's hits never leave the
    database one by one, however many there are.
    """
    if bucket not in ("hour", "day"):
        raise InvalidInput("the bucket is hour or day", field="bucket")
    campaigns = Campaigns(session)
    await campaigns.get(campaign_id)
    opens, clicks, unsubscribed = await _engagement(session, campaign_id)
    return CampaignStats(
        campaign_id=campaign_id,
        recipients=await campaigns.recipient_counts(campaign_id),
        bounced=await _bounced(session, campaign_id),
        opens=opens,
        clicks=clicks,
        unsubscribed=unsubscribed,
        links=await _links(session, campaign_id),
        bucket=bucket,
        timeline=await _timeline(session, campaign_id, bucket),
    )


async def recipient_rows(
    session: AsyncSession, campaign_id: int, status: str | None, after_id: int, limit: int
) -> list[RecipientRow]:
    """Up to ``limit`` recipients with ids above ``after_id`` (the last id of the previous page),
    in id order, with their hits and worst bounce counted in the same query."""
    where = [Recipient.campaign_id == campaign_id, Recipient.id > after_id]
    if status is not None:
        where.append(Recipient.status == _status(status))
    page = select(Recipient.id).where(*where).order_by(Recipient.id).limit(limit).cte("page")
    ids = select(page.c.id)
    human_open, human_click = _hit("open", True), _hit("click", True)
    hits = (
        select(
            TrackingHit.recipient_id,
            _count(human_open).label("opens"),
            _count(_hit("open", False)).label("machine_opens"),
            _count(human_click).label("clicks"),
            _count(_hit("click", False)).label("machine_clicks"),
            func.min(case((human_open, TrackingHit.at))).label("first_open_at"),
            func.max(case((human_click, TrackingHit.at))).label("last_click_at"),
            _count(TrackingHit.kind == "unsubscribe").label("unsubscribes"),
        )
        .where(TrackingHit.recipient_id.in_(ids))
        .group_by(TrackingHit.recipient_id)
        .subquery()
    )
    bounces = _worst_bounces(ids)
    rows = await session.execute(
        select(
            Recipient.id,
            Recipient.address,
            Recipient.client_id,
            Recipient.status,
            Recipient.sent_at,
            Recipient.attempts,
            Recipient.last_error,
            hits.c.opens,
            hits.c.machine_opens,
            hits.c.clicks,
            hits.c.machine_clicks,
            hits.c.first_open_at,
            hits.c.last_click_at,
            hits.c.unsubscribes,
            bounces.c.severity,
        )
        .join(page, page.c.id == Recipient.id)
        .outerjoin(hits, hits.c.recipient_id == Recipient.id)
        .outerjoin(bounces, bounces.c.recipient_id == Recipient.id)
        .order_by(Recipient.id)
    )
    return [
        RecipientRow(
            id=row.id,
            address=row.address,
            client_id=row.client_id,
            status=row.status.value,
            sent_at=row.sent_at,
            attempts=row.attempts,
            last_error=row.last_error,
            opens=row.opens or 0,
            machine_opens=row.machine_opens or 0,
            clicks=row.clicks or 0,
            machine_clicks=row.machine_clicks or 0,
            first_open_at=row.first_open_at,
            last_click_at=row.last_click_at,
            unsubscribed=bool(row.unsubscribes),
            bounce=_KIND_OF.get(row.severity),
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class HitEvent:
    kind: str  # open, click, unsubscribe
    at: datetime
    human: bool
    reason: str | None  # the rule that took it for a machine's
    link_number: int | None
    url: str | None  # the link as written in the campaign
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class BounceEvent:
    kind: str  # hard, soft, complaint
    at: datetime
    status: str | None
    diagnostic: str


async def people_engaged(session: AsyncSession, campaign_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Per campaign, the recipients a person opened and clicked for: a campaign list's glance,
    in one query for the whole list."""
    wanted = list(campaign_ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(TrackingHit.campaign_id, _count_recipients(_hit("open", True)), _count_recipients(_hit("click", True)))
        .where(TrackingHit.campaign_id.in_(wanted))
        .group_by(TrackingHit.campaign_id)
    )
    return {campaign_id: (opened, clicked) for campaign_id, opened, clicked in rows.all()}


async def recipient_events(
    session: AsyncSession, campaign_id: int, recipient_id: int
) -> tuple[RecipientRow, list[HitEvent], list[BounceEvent]]:
    """One recipient's row and everything recorded for them, oldest first: the drill-down that
    shows why a hit counted as a machine's."""
    rows = await recipient_rows(session, campaign_id, None, recipient_id - 1, 1)
    if not rows or rows[0].id != recipient_id:
        raise NotFound(f"recipient {recipient_id} of campaign {campaign_id} not found")
    hits = await session.execute(
        select(TrackingHit.kind, TrackingHit.at, TrackingHit.human, TrackingHit.reason, TrackingHit.link_number,
               CampaignLink.url, TrackingHit.ip, TrackingHit.user_agent)
        .outerjoin(CampaignLink, and_(CampaignLink.campaign_id == TrackingHit.campaign_id,
                                      CampaignLink.number == TrackingHit.link_number))
        .where(TrackingHit.recipient_id == recipient_id)
        .order_by(TrackingHit.at, TrackingHit.id)
    )  # fmt: skip
    bounces = await session.execute(
        select(Bounce.kind, Bounce.at, Bounce.status, Bounce.diagnostic)
        .where(Bounce.recipient_id == recipient_id)
        .order_by(Bounce.at, Bounce.id)
    )
    return rows[0], [HitEvent(*row) for row in hits.all()], [BounceEvent(*row) for row in bounces.all()]


def recipients_csv(rows: Iterable[RecipientRow], *, header: bool = True) -> Iterator[str]:
    """The header (unless this is a later page), then one record per row, each a string ending
    in CRLF (a multi-line error stays one quoted record), to stream.  ``;``-separated with a
    BOM, like the card export, so Russian Excel opens it as is; dates in ISO 8601; a cell Excel
    would run as a formula (an address can be anything) gets a leading apostrophe."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    if header:
        writer.writerow(_ROW_FIELDS)
        yield "\ufeff" + _drain(buffer)
    for row in rows:
        writer.writerow([_csv_cell(value) for _, value in _items(row)])
        yield _drain(buffer)


# -- private ---------------------------------------------------------------------------------


def _hit(kind: str, human: bool) -> ColumnElement[bool]:
    return and_(TrackingHit.kind == kind, TrackingHit.human.is_(human))


def _count(when: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count(case((when, 1)))


def _count_recipients(when: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count(case((when, TrackingHit.recipient_id)).distinct())


def _worst_bounces(recipient_ids: Select[Any]) -> Subquery:
    """(recipient_id, severity) of these recipients' bounces, the worst of each."""
    severity = case(_SEVERITY, value=Bounce.kind)
    return (
        select(Bounce.recipient_id, func.max(severity).label("severity"))
        .where(Bounce.recipient_id.in_(recipient_ids), Bounce.kind.in_(tuple(_SEVERITY)))
        .group_by(Bounce.recipient_id)
        .subquery()
    )


async def _engagement(session: AsyncSession, campaign_id: int) -> tuple[Engagement, Engagement, int]:
    """Opens, clicks and the number of recipients who unsubscribed, in one pass over the hits."""
    figures = [
        aggregate(_hit(kind, human))
        for kind in ("open", "click")
        for human in (True, False)
        for aggregate in (_count, _count_recipients)
    ]
    row = (
        await session.execute(
            select(*figures, _count_recipients(TrackingHit.kind == "unsubscribe")).where(
                TrackingHit.campaign_id == campaign_id
            )
        )
    ).one()
    opens = Engagement(Hits(row[0], row[1]), Hits(row[2], row[3]))
    clicks = Engagement(Hits(row[4], row[5]), Hits(row[6], row[7]))
    return opens, clicks, row[8]


async def _bounced(session: AsyncSession, campaign_id: int) -> Bounced:
    worst = _worst_bounces(select(Recipient.id).where(Recipient.campaign_id == campaign_id))
    rows = await session.execute(select(worst.c.severity, func.count()).group_by(worst.c.severity))
    by_kind = {kind: 0 for kind in _SEVERITY} | {_KIND_OF[severity]: n for severity, n in rows.all()}
    return Bounced(total=sum(by_kind.values()), **by_kind)


async def _links(session: AsyncSession, campaign_id: int) -> tuple[LinkStats, ...]:
    """Every link of the campaign, clicked or not."""
    human = _hit("click", True)
    clicks = (
        select(
            TrackingHit.link_number,
            _count(human).label("clicks"),
            _count_recipients(human).label("unique_clicks"),
            _count(_hit("click", False)).label("machine_clicks"),
        )
        .where(TrackingHit.campaign_id == campaign_id, TrackingHit.kind == "click")
        .group_by(TrackingHit.link_number)
        .subquery()
    )
    rows = await session.execute(
        select(
            CampaignLink.number,
            CampaignLink.url,
            func.coalesce(clicks.c.clicks, 0),
            func.coalesce(clicks.c.unique_clicks, 0),
            func.coalesce(clicks.c.machine_clicks, 0),
        )
        .outerjoin(clicks, clicks.c.link_number == CampaignLink.number)
        .where(CampaignLink.campaign_id == campaign_id)
        .order_by(CampaignLink.number)
    )
    return tuple(LinkStats(*row) for row in rows.all())


async def _timeline(session: AsyncSession, campaign_id: int, bucket: BucketSize) -> tuple[TimeBucket, ...]:
    start = _bucket_start(session.get_bind().dialect.name, bucket).label("start")
    rows = await session.execute(
        select(
            start,
            _count(_hit("open", True)),
            _count(_hit("open", False)),
            _count(_hit("click", True)),
            _count(_hit("click", False)),
        )
        .where(TrackingHit.campaign_id == campaign_id, TrackingHit.kind.in_(("open", "click")))
        .group_by(start)
        .order_by(start)
    )
    return tuple(TimeBucket(*row) for row in rows.all())


def _bucket_start(dialect: str, bucket: BucketSize) -> ColumnElement[datetime]:
    """The start of the hour or day (UTC) of a hit, read back as an aware datetime."""
    if dialect == "postgresql":
        cut: ColumnElement[Any] = func.date_trunc(bucket, func.timezone("UTC", TrackingHit.at))
    else:  # SQLite keeps UTC as text: YYYY-MM-DD HH:MM:SS.ffffff
        cut = func.strftime("%Y-%m-%d %H:00:00" if bucket == "hour" else "%Y-%m-%d 00:00:00", TrackingHit.at)
    return type_coerce(cut, UTCDateTime())


def _status(status: str) -> RecipientStatus:
    try:
        return RecipientStatus(status)
    except ValueError:
        known = ", ".join(s.value for s in RecipientStatus)
        raise InvalidInput(f"unknown recipient status {status!r} (one of {known})", field="status") from None


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _items(row: RecipientRow) -> Iterator[tuple[str, Any]]:
    return ((name, getattr(row, name)) for name in _ROW_FIELDS)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
