"""What a mailing did, as the campaign's page shows it (figures, links, hours and days, the
recipients' table and its CSV) and as each client's timeline tells it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.book import Campaigns
from crm_core.campaigns.history import mailings
from crm_core.campaigns.models import Bounce, Recipient, RecipientStatus, TrackingHit
from crm_core.campaigns.stats import campaign_stats, recipient_rows, recipients_csv
from crm_core.campaigns.tracking import Tracking, Visit
from crm_core.errors import InvalidInput, NotFound
from crm_core.timeline import client_timeline
from tests.test_campaigns import _campaign, _setup

T0 = datetime(2024, 12, 2, 9, 0, tzinfo=UTC)
LINK_1 = "https://shop.example.com/sale?c={{ client.id }}"
LINK_2 = "https://shop.example.com/"


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Mailing:
    december: int  # the campaign looked at
    january: int  # another one to the same cards, which must not leak into December's figures
    segment_id: int
    cards: dict[str, int]
    recipients: dict[str, Recipient]  # December's, by address


async def _mailing(session: AsyncSession) -> Mailing:
    """December went to Ромашка, Лютик and Василёк (3 cards), to a hostile address with no card
    and failed for one; January went to Ромашка too."""
    segment_id, cards = await _setup(session)
    campaigns = Campaigns(session)
    december = await campaigns.start((await campaigns.create(_campaign(segment_id=segment_id), None)).id)
    january = await campaigns.start((await campaigns.create(_campaign(name="Январь", segment_id=segment_id), None)).id)
    session.add_all(
        [
            Recipient(campaign_id=december.id, address="=cmd@x.ru", address_key="=cmd@x.ru"),
            Recipient(
                campaign_id=december.id, address="broken@x.ru", address_key="broken@x.ru",
                status=RecipientStatus.failed, attempts=3, last_error="-ERR 550 mailbox unavailable\nfor good",
            ),
        ]
    )  # fmt: skip
    await session.flush()
    mine = (await session.scalars(select(Recipient).where(Recipient.campaign_id == december.id))).all()
    recipients = {r.address: r for r in mine}
    for address in ("info@romashka.ru", "hello@lyutik.ru", "v@vasilek.ru", "=cmd@x.ru"):
        recipients[address].status, recipients[address].sent_at, recipients[address].attempts = (
            RecipientStatus.sent, T0, 1
        )  # fmt: skip
    romashka_in_january = await session.scalar(
        select(Recipient).where(Recipient.campaign_id == january.id, Recipient.address_key == "info@romashka.ru")
    )
    assert romashka_in_january is not None
    romashka_in_january.status, romashka_in_january.sent_at = RecipientStatus.sent, _at(60)

    r, lyutik, hostile = recipients["info@romashka.ru"], recipients["hello@lyutik.ru"], recipients["=cmd@x.ru"]
    machine_click = {"human": False, "reason": "link_pair_burst"}
    for recipient, kind, minutes, link, machine in (
        (r, "open", 1, None, {"human": False, "reason": "apple_mpp"}),
        (r, "open", 10, None, {}),
        (r, "click", 12, 1, {}),
        (r, "open", 61, None, {"human": False, "reason": "apple_mpp"}),
        (r, "open", 70, None, {}),
        (r, "click", 75, 1, {}),
        (r, "click", 80, 2, {}),
        (lyutik, "open", 1, None, {"human": False, "reason": "apple_mpp"}),
        (lyutik, "click", 2, 1, machine_click),
        (lyutik, "click", 2, 2, machine_click),
        (lyutik, "open", 360, None, {}),  # 15:00 UTC: already the next day in Vladivostok
        (hostile, "click", 24 * 60 + 60, 1, {"human": False, "reason": "automation"}),
        (romashka_in_january, "open", 120, None, {}),
        (romashka_in_january, "click", 125, 1, {}),
    ):
        session.add(
            TrackingHit(campaign_id=recipient.campaign_id, recipient_id=recipient.id, kind=kind, link_number=link,
                        at=_at(minutes), **machine)
        )  # fmt: skip
        await session.flush()  # ids in the order of the hits
    assert await Tracking(session).unsubscribed(lyutik.id, Visit(_at(365), method="POST"), how="one_click")
    vasilek, bounce = recipients["v@vasilek.ru"], {"status": "5.1.1", "diagnostic": "550 5.1.1 no such user"}
    session.add_all(
        [
            Bounce(address_key="v@vasilek.ru", recipient_id=vasilek.id, kind="soft", at=_at(5),
                   status="4.2.2", diagnostic="452 mailbox full"),
            Bounce(address_key="v@vasilek.ru", recipient_id=vasilek.id, kind="hard", at=_at(6), **bounce),
            Bounce(address_key="=cmd@x.ru", recipient_id=hostile.id, kind="complaint", at=_at(2 * 24 * 60)),
            Bounce(address_key="hello@lyutik.ru", recipient_id=None, kind="hard", at=_at(7)),  # matched no copy
            Bounce(address_key="info@romashka.ru", recipient_id=romashka_in_january.id, kind="hard", at=_at(180),
                   **bounce),
        ]
    )  # fmt: skip
    await session.flush()
    return Mailing(december.id, january.id, segment_id, cards, recipients)


async def test_the_figures_count_people_and_machines_apart(session: AsyncSession) -> None:
    mailing = await _mailing(session)
    stats = (await campaign_stats(session, mailing.december)).as_dict()

    assert stats["recipients"] == {"queued": 0, "sending": 0, "sent": 4, "failed": 1, "review": 0, "cancelled": 0}
    assert (stats["sent"], stats["failed"], stats["review"]) == (4, 1, 0)
    # Василёк's soft bounce and then hard one count once, as hard; the unmatched bounce not at all.
    assert stats["bounced"] == {"total": 2, "hard": 1, "soft": 0, "complaint": 1}
    assert stats["opens"] == {"human": {"total": 3, "unique": 2}, "machine": {"total": 3, "unique": 2}}
    assert stats["clicks"] == {"human": {"total": 3, "unique": 1}, "machine": {"total": 3, "unique": 2}}
    assert stats["unsubscribed"] == 1
    assert stats["rates"] == {"open": 0.5, "click": 0.25, "click_to_open": 0.5}
    assert stats["links"] == [
        {"number": 1, "url": LINK_1, "clicks": 2, "unique_clicks": 1, "machine_clicks": 2},
        {"number": 2, "url": LINK_2, "clicks": 1, "unique_clicks": 1, "machine_clicks": 1},
    ]


async def test_opens_and_clicks_over_time_are_cut_into_utc_hours_and_days(session: AsyncSession) -> None:
    mailing = await _mailing(session)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET TIME ZONE 'Asia/Vladivostok'"))  # the server's zone must not matter

    hourly = (await campaign_stats(session, mailing.december)).as_dict()
    assert hourly["bucket"] == "hour"
    figures = ("start", "opens", "machine_opens", "clicks", "machine_clicks")
    assert [tuple(point[name] for name in figures) for point in hourly["timeline"]] == [
        ("2024-12-02T09:00:00+00:00", 1, 2, 1, 2),
        ("2024-12-02T10:00:00+00:00", 1, 1, 2, 0),
        ("2024-12-02T15:00:00+00:00", 1, 0, 0, 0),
        ("2024-12-03T10:00:00+00:00", 0, 0, 0, 1),
    ]
    daily = await campaign_stats(session, mailing.december, "day")
    assert [(p.start, p.opens, p.machine_opens, p.clicks, p.machine_clicks) for p in daily.timeline] == [
        (datetime(2024, 12, 2, tzinfo=UTC), 3, 3, 3, 2),
        (datetime(2024, 12, 3, tzinfo=UTC), 0, 0, 0, 1),
    ]


async def test_a_campaign_nobody_got_yet_has_no_rates_and_an_unknown_one_is_not_found(
    session: AsyncSession,
) -> None:
    mailing = await _mailing(session)
    january = await campaign_stats(session, mailing.january)
    assert january.recipients["sent"] == 1 and january.open_rate == 1.0 and january.click_to_open == 1.0
    fresh = await Campaigns(session).create(_campaign(name="Февраль", segment_id=mailing.segment_id), None)
    empty = await campaign_stats(session, fresh.id)
    assert empty.as_dict()["rates"] == {"open": None, "click": None, "click_to_open": None}
    assert empty.links == () and empty.timeline == () and empty.bounced.total == 0
    with pytest.raises(NotFound):
        await campaign_stats(session, fresh.id + 1000)
    with pytest.raises(InvalidInput):
        await campaign_stats(session, mailing.december, "week")  # type: ignore[arg-type]


async def test_the_recipients_table_pages_by_id_with_each_ones_figures(session: AsyncSession) -> None:
    mailing = await _mailing(session)
    r = mailing.recipients
    ids = sorted(recipient.id for recipient in r.values())

    pages, after = [], 0
    while page := await recipient_rows(session, mailing.december, None, after, 2):
        pages.append([row.id for row in page])
        after = page[-1].id
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]

    rows = {row.address: row for row in await recipient_rows(session, mailing.december, None, 0, 100)}
    romashka, lyutik = rows["info@romashka.ru"].as_dict(), rows["hello@lyutik.ru"].as_dict()
    assert romashka == {
        "id": r["info@romashka.ru"].id, "address": "info@romashka.ru", "client_id": mailing.cards["Ромашка"],
        "status": "sent", "sent_at": "2024-12-02T09:00:00+00:00", "attempts": 1, "last_error": None,
        "opens": 2, "machine_opens": 2, "clicks": 3, "machine_clicks": 0,
        "first_open_at": "2024-12-02T09:10:00+00:00", "last_click_at": "2024-12-02T10:20:00+00:00",
        "unsubscribed": False, "bounce": None,
    }  # fmt: skip
    assert (lyutik["opens"], lyutik["machine_opens"], lyutik["clicks"], lyutik["machine_clicks"]) == (1, 1, 0, 2)
    assert (lyutik["first_open_at"], lyutik["last_click_at"], lyutik["unsubscribed"]) == (
        "2024-12-02T15:00:00+00:00", None, True
    )  # fmt: skip
    assert rows["v@vasilek.ru"].bounce == "hard" and rows["=cmd@x.ru"].bounce == "complaint"
    assert rows["=cmd@x.ru"].client_id is None and rows["=cmd@x.ru"].machine_clicks == 1

    failed = await recipient_rows(session, mailing.december, "failed", 0, 10)
    assert [(row.address, row.attempts, row.sent_at) for row in failed] == [("broken@x.ru", 3, None)]
    assert [row.id for row in await recipient_rows(session, mailing.december, "sent", ids[0], 10)] == [
        i for i in ids[1:] if i != r["broken@x.ru"].id
    ]
    with pytest.raises(InvalidInput):
        await recipient_rows(session, mailing.december, "delivered", 0, 10)


async def test_the_csv_names_its_columns_and_defuses_formulas(session: AsyncSession) -> None:
    mailing = await _mailing(session)
    lines = list(recipients_csv(await recipient_rows(session, mailing.december, None, 0, 100)))

    assert len(lines) == 6 and all(line.endswith("\r\n") for line in lines)
    assert lines[0] == (
        "\ufeffid;address;client_id;status;sent_at;attempts;last_error;opens;machine_opens;clicks;"
        "machine_clicks;first_open_at;last_click_at;unsubscribed;bounce\r\n"
    )
    table = list(csv.DictReader(io.StringIO("".join(lines).removeprefix("\ufeff"), newline=""), delimiter=";"))
    by_id = {row["id"]: row for row in table}
    hostile = by_id[str(mailing.recipients["=cmd@x.ru"].id)]
    assert (hostile["address"], hostile["client_id"], hostile["bounce"]) == ("'=cmd@x.ru", "", "complaint")
    broken = by_id[str(mailing.recipients["broken@x.ru"].id)]
    assert (broken["last_error"], broken["status"]) == ("'-ERR 550 mailbox unavailable\nfor good", "failed")
    lyutik = by_id[str(mailing.recipients["hello@lyutik.ru"].id)]
    assert (lyutik["sent_at"], lyutik["first_open_at"], lyutik["unsubscribed"]) == (
        "2024-12-02T09:00:00+00:00", "2024-12-02T15:00:00+00:00", "yes"
    )  # fmt: skip
    assert by_id[str(mailing.recipients["info@romashka.ru"].id)]["unsubscribed"] == "no"


async def test_the_clients_timeline_tells_what_came_of_each_mailing(session: AsyncSession) -> None:
    mailing = await _mailing(session)
    lyutik = mailing.recipients["hello@lyutik.ru"]

    items = await client_timeline(session, mailing.cards["Лютик"])
    assert [(i.kind, i.title, i.at) for i in items] == [
        ("card", "Card created", items[0].at),
        ("mailing", "Unsubscribed", _at(365)),
        ("mailing", "Mailing opened", _at(360)),
        ("mailing", "Mailing link clicked", _at(2)),
        ("mailing", "Mailing link clicked", _at(2)),
        ("mailing", "Mailing opened", _at(1)),
        ("mailing", "Mailing sent", T0),
    ]
    about = {"campaign_id": mailing.december, "campaign": "Декабрь", "recipient_id": lyutik.id,
             "address": "hello@lyutik.ru"}  # fmt: skip
    assert items[-1].id == f"mailing-sent-{lyutik.id}" and items[-1].data == about
    assert items[1].data == about | {"method": "one_click"}
    assert items[2].data == about | {"machine": False}
    assert items[3].data == about | {"machine": True, "reason": "link_pair_burst", "link": 2, "url": LINK_2}
    assert items[4].data == about | {"machine": True, "reason": "link_pair_burst", "link": 1, "url": LINK_1}
    assert items[5].data == about | {"machine": True, "reason": "apple_mpp"}
    hit_ids = [int(i.id.removeprefix("mailing-hit-")) for i in items[1:6]]
    assert hit_ids == sorted(hit_ids, reverse=True)

    vasilek = await client_timeline(session, mailing.cards["Василёк"])
    assert [(i.title, i.data.get("kind")) for i in vasilek[1:]] == [
        ("Mailing bounced", "hard"),
        ("Mailing bounced", "soft"),
        ("Mailing sent", None),
    ]
    assert vasilek[1].data == {
        "campaign_id": mailing.december, "campaign": "Декабрь", "recipient_id": mailing.recipients["v@vasilek.ru"].id,
        "address": "v@vasilek.ru", "kind": "hard", "status": "5.1.1", "diagnostic": "550 5.1.1 no such user",
    }  # fmt: skip


async def test_a_clients_mailings_mix_campaigns_newest_first_before_a_moment(session: AsyncSession) -> None:
    mailing = await _mailing(session)
    romashka = mailing.cards["Ромашка"]

    everything = await mailings(session, romashka, None, 100)
    assert [(i.title, i.data["campaign"], i.at) for i in everything] == [
        ("Mailing bounced", "Январь", _at(180)),
        ("Mailing link clicked", "Январь", _at(125)),
        ("Mailing opened", "Январь", _at(120)),
        ("Mailing link clicked", "Декабрь", _at(80)),
        ("Mailing link clicked", "Декабрь", _at(75)),
        ("Mailing opened", "Декабрь", _at(70)),
        ("Mailing opened", "Декабрь", _at(61)),
        ("Mailing sent", "Январь", _at(60)),
        ("Mailing link clicked", "Декабрь", _at(12)),
        ("Mailing opened", "Декабрь", _at(10)),
        ("Mailing opened", "Декабрь", _at(1)),
        ("Mailing sent", "Декабрь", T0),
    ]
    page = await mailings(session, romashka, _at(75), 3)
    assert [(i.title, i.at, i.data.get("machine")) for i in page] == [
        ("Mailing opened", _at(70), False),
        ("Mailing opened", _at(61), True),
        ("Mailing sent", _at(60), None),
    ]
    assert await mailings(session, mailing.cards["Чужой"], None, 100) == []
