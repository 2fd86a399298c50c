"""/api/campaigns, /api/segments and /api/suppressions: what marketers do with mailings."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from typing import Any

from aiohttp import web

from connectors.smtp.errors import SmtpError
from crm_core.campaigns.book import CampaignIn, Campaigns, SegmentIn, Segments
from crm_core.campaigns.models import Campaign, Segment, Suppression
from crm_core.campaigns.segments import choices, sample
from crm_core.campaigns.send_queue import SendQueue
from crm_core.campaigns.stats import (
    campaign_stats,
    people_engaged,
    recipient_events,
    recipient_rows,
    recipients_csv,
)
from crm_core.campaigns.suppressions import SuppressionList
from crm_core.campaigns.templates import CampaignTemplate, TemplateProblem, locate
from crm_core.models import Role
from hub.campaign_sender import CampaignSender, CampaignSmtpMissing
from hub.web.campaign_schemas import (
    CampaignListOut,
    CampaignOut,
    CampaignPatch,
    DraftPreviewIn,
    PreviewIn,
    PreviewOut,
    RecipientEventsOut,
    RecipientListOut,
    RecipientsQuery,
    ReviewIn,
    ReviewOut,
    ScheduleIn,
    SegmentChoicesOut,
    SegmentCountIn,
    SegmentCountOut,
    SegmentListOut,
    SegmentOut,
    SegmentSampleIn,
    SegmentSampleOut,
    StatsOut,
    StatsQuery,
    SuppressionIn,
    SuppressionListOut,
    SuppressionOut,
    SuppressionQuery,
    TestSendIn,
    TestSendOut,
)
from hub.web.endpoints import Api, ApiError, current_user, json_response, session_of
from hub.web.state import CONTEXT

api = Api()
MARKETING = {Role.admin, Role.marketer}
CAMPAIGNS = web.AppKey("campaigns", CampaignSender)  # absent when no SMTP server is configured for campaigns
ONE = r"/api/campaigns/{id:\d+}"
SEGMENT = r"/api/segments/{id:\d+}"
CSV_PAGE = 1000
TEMPLATE_FIELDS = ("subject", "html", "text")


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def _shown(campaigns: Campaigns, campaign: Campaign, engaged: tuple[int, int] | None = None) -> dict[str, Any]:
    """The campaign as the API shows it; ``engaged`` (people who opened, clicked) when a list
    counted them for all its campaigns at once."""
    if engaged is None:
        engaged = (await people_engaged(campaigns.session, [campaign.id])).get(campaign.id, (0, 0))
    return {
        **{name: getattr(campaign, name) for name in CampaignIn.model_fields},
        "id": campaign.id,
        "status": campaign.status.value,
        "scheduled_at": campaign.scheduled_at,
        "started_at": campaign.started_at,
        "finished_at": campaign.finished_at,
        "created_at": campaign.created_at,
        "recipients": await campaigns.recipient_counts(campaign.id),
        "opened": engaged[0],
        "clicked": engaged[1],
    }


def _sources(fields: Mapping[str, Any] | Campaign) -> dict[str, str]:
    """The templates' texts, which a problem's line is read from."""
    if isinstance(fields, Campaign):
        return {name: getattr(fields, name) or "" for name in TEMPLATE_FIELDS}
    return {name: fields.get(name) or "" for name in TEMPLATE_FIELDS}


@contextlib.contextmanager
def _template_errors(sources: Mapping[str, str]) -> Iterator[None]:
    """A template problem as a 422 whose details say where an editor shows it: the field, the
    line and the variable as written (``client.nmae``)."""
    try:
        yield
    except TemplateProblem as exc:
        raise ApiError(422, "invalid", str(exc), [locate(exc, sources)]) from None


def _sender(request: web.Request) -> CampaignSender:
    sender = request.app.get(CAMPAIGNS)
    if sender is None:
        raise ApiError(503, "no_smtp", "no SMTP server for campaigns: set [campaigns.smtp] or a [mailbox.smtp]")
    return sender


# -- campaigns -------------------------------------------------------------------------------


@api.route("GET", "/api/campaigns", summary="Campaigns, newest first", roles=MARKETING, tag="campaigns",
           response=CampaignListOut)  # fmt: skip
async def list_campaigns(request: web.Request) -> web.Response:
    campaigns = Campaigns(session_of(request))
    listed = await campaigns.all()
    engaged = await people_engaged(campaigns.session, [c.id for c in listed])
    return json_response({"items": [await _shown(campaigns, c, engaged.get(c.id, (0, 0))) for c in listed]})


@api.route("POST", "/api/campaigns", summary="A new draft (templates checked)", roles=MARKETING, tag="campaigns",
           body=CampaignIn, response=CampaignOut, response_status=201, errors=(404, 422))  # fmt: skip
async def create_campaign(request: web.Request, body: CampaignIn) -> web.Response:
    campaigns = Campaigns(session_of(request))
    with _template_errors(_sources(body.model_dump())):
        campaign = await campaigns.create(body, current_user(request).id)
    return json_response(await _shown(campaigns, campaign), status=201)


@api.route("GET", ONE, summary="One campaign with its recipients by state", roles=MARKETING, tag="campaigns",
           response=CampaignOut, errors=(404,))  # fmt: skip
async def read_campaign(request: web.Request) -> web.Response:
    campaigns = Campaigns(session_of(request))
    return json_response(await _shown(campaigns, await campaigns.get(_id(request))))


@api.route("PATCH", ONE, summary="Change a draft or a scheduled campaign", roles=MARKETING, tag="campaigns",
           body=CampaignPatch, response=CampaignOut, errors=(404, 409, 422))  # fmt: skip
async def change_campaign(request: web.Request, body: CampaignPatch) -> web.Response:
    campaigns = Campaigns(session_of(request))
    changes = body.model_dump(exclude_unset=True)
    current = await campaigns.get(_id(request))
    with _template_errors(_sources({**_sources(current), **changes})):
        campaign = await campaigns.update(current.id, changes)
    return json_response(await _shown(campaigns, campaign))


@api.route("DELETE", ONE, summary="Delete a draft", roles=MARKETING, tag="campaigns", response_status=204,
           errors=(404, 409))  # fmt: skip
async def delete_campaign(request: web.Request) -> web.Response:
    await Campaigns(session_of(request)).delete(_id(request))
    return web.Response(status=204)


@api.route("POST", ONE + "/preview", summary="The copy one card's address would get", roles=MARKETING,
           tag="campaigns", body=PreviewIn, response=PreviewOut, errors=(404, 422))  # fmt: skip
async def preview_campaign(request: web.Request, body: PreviewIn) -> web.Response:
    campaigns = Campaigns(session_of(request))
    campaign = await campaigns.get(_id(request))
    with _template_errors(_sources(campaign)):
        rendered = await campaigns.preview(campaign.id, body.client_id, body.address)
    return json_response(asdict(rendered))


@api.route("POST", "/api/campaigns/preview", summary="The copy one card's address would get of templates not yet "
           "saved (the editor's live preview)", roles=MARKETING, tag="campaigns", body=DraftPreviewIn,
           response=PreviewOut, errors=(404, 422))  # fmt: skip
async def preview_draft(request: web.Request, body: DraftPreviewIn) -> web.Response:
    with _template_errors(_sources(body.model_dump())):
        template = CampaignTemplate.compile(body.subject, body.html, body.text)
        rendered = await Campaigns(session_of(request)).preview_unsaved(body.name, template, body.client_id,
                                                                        body.address)  # fmt: skip
    return json_response(asdict(rendered))


@api.route("POST", ONE + "/test", summary="Send one untracked copy to an address", roles=MARKETING,
           tag="campaigns", body=TestSendIn, response=TestSendOut, errors=(404, 422, 502, 503),
           own_transactions=True)  # fmt: skip
async def test_send(request: web.Request, body: TestSendIn) -> web.Response:
    try:
        message_id = await _sender(request).send_test(_id(request), body.client_id, body.address)
    except SmtpError as exc:
        raise ApiError(502, "smtp_error", str(exc)) from None
    except CampaignSmtpMissing as exc:
        raise ApiError(503, "no_smtp", str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    return json_response({"message_id": message_id})


@api.route("POST", ONE + "/schedule", summary="Start sending at a given time", roles=MARKETING, tag="campaigns",
           body=ScheduleIn, response=CampaignOut, errors=(404, 409, 422))  # fmt: skip
async def schedule_campaign(request: web.Request, body: ScheduleIn) -> web.Response:
    campaigns = Campaigns(session_of(request))
    return json_response(await _shown(campaigns, await campaigns.schedule(_id(request), body.at)))


@api.route("POST", ONE + "/start", summary="Fix the recipients and start sending now", roles=MARKETING,
           tag="campaigns", response=CampaignOut, errors=(404, 409, 422, 503), own_transactions=True)  # fmt: skip
async def start_campaign(request: web.Request) -> web.Response:
    sender = _sender(request)
    async with request.app[CONTEXT].transaction() as session:
        campaigns = Campaigns(session)
        with _template_errors(_sources(await campaigns.get(_id(request)))):
            started = await campaigns.start(_id(request))
        shown = await _shown(campaigns, started)
    sender.wake()  # committed: the sender finds the recipients now, not at its next look
    return json_response(shown)


@api.route("POST", ONE + "/pause", summary="Stop sending for now (a few messages in flight still go)",
           roles=MARKETING, tag="campaigns", response=CampaignOut, errors=(404, 409))  # fmt: skip
async def pause_campaign(request: web.Request) -> web.Response:
    campaigns = Campaigns(session_of(request))
    return json_response(await _shown(campaigns, await campaigns.pause(_id(request))))


@api.route("POST", ONE + "/resume", summary="Go on sending", roles=MARKETING, tag="campaigns",
           response=CampaignOut, errors=(404, 409, 503), own_transactions=True)  # fmt: skip
async def resume_campaign(request: web.Request) -> web.Response:
    sender = _sender(request)
    async with request.app[CONTEXT].transaction() as session:
        campaigns = Campaigns(session)
        shown = await _shown(campaigns, await campaigns.resume(_id(request)))
    sender.wake()
    return json_response(shown)


@api.route("POST", ONE + "/cancel", summary="Send nothing more", roles=MARKETING, tag="campaigns",
           response=CampaignOut, errors=(404, 409))  # fmt: skip
async def cancel_campaign(request: web.Request) -> web.Response:
    campaigns = Campaigns(session_of(request))
    return json_response(await _shown(campaigns, await campaigns.cancel(_id(request))))


@api.route("POST", ONE + "/review", summary="Recipients in flight at a crash: send again or count as sent",
           roles=MARKETING, tag="campaigns", body=ReviewIn, response=ReviewOut, errors=(404,),
           own_transactions=True)  # fmt: skip
async def review_recipients(request: web.Request, body: ReviewIn) -> web.Response:
    async with request.app[CONTEXT].transaction() as session:
        changed = await SendQueue(session).resolve_review(
            _id(request), body.recipient_ids, send_again=body.action == "send_again"
        )
    if (sender := request.app.get(CAMPAIGNS)) is not None:
        sender.wake()
    return json_response({"changed": changed})


@api.route("GET", ONE + "/stats", summary="Sent, bounced, opens and clicks (people and machines apart), links, "
           "over time", roles=MARKETING, tag="campaigns", query=StatsQuery, response=StatsOut,
           errors=(404,))  # fmt: skip
async def read_stats(request: web.Request, query: StatsQuery) -> web.Response:
    session = session_of(request)
    await Campaigns(session).get(_id(request))
    return json_response((await campaign_stats(session, _id(request), query.bucket)).as_dict())


@api.route("GET", ONE + "/recipients", summary="Each recipient's state, opens and clicks", roles=MARKETING,
           tag="campaigns", query=RecipientsQuery, response=RecipientListOut, errors=(404,))  # fmt: skip
async def list_recipients(request: web.Request, query: RecipientsQuery) -> web.Response:
    session = session_of(request)
    await Campaigns(session).get(_id(request))
    rows = await recipient_rows(session, _id(request), query.status, query.after, query.limit)
    next_after = rows[-1].id if len(rows) == query.limit else None
    return json_response({"items": [row.as_dict() for row in rows], "next_after": next_after})


@api.route("GET", ONE + r"/recipients/{recipient:\d+}/events", summary="One recipient's opens, clicks, "
           "unsubscribe and bounces, machines' with the rule that caught them", roles=MARKETING, tag="campaigns",
           response=RecipientEventsOut, errors=(404,))  # fmt: skip
async def read_recipient_events(request: web.Request) -> web.Response:
    session = session_of(request)
    await Campaigns(session).get(_id(request))
    row, hits, bounces = await recipient_events(session, _id(request), int(request.match_info["recipient"]))
    return json_response({"recipient": row.as_dict(), "hits": [asdict(h) for h in hits],
                          "bounces": [asdict(b) for b in bounces]})  # fmt: skip


@api.route("GET", ONE + "/recipients.csv", summary="Every recipient's figures as CSV", roles=MARKETING,
           tag="campaigns", response_media_type="text/csv", errors=(404,), own_transactions=True)  # fmt: skip
async def export_recipients(request: web.Request) -> web.StreamResponse:
    """Streamed a page of 1,000 at a time: a million-recipient campaign is never held in memory."""
    async with request.app[CONTEXT].reading() as session:
        campaign = await Campaigns(session).get(_id(request))
        response = web.StreamResponse(
            headers={"Content-Disposition": f'attachment; filename="campaign-{campaign.id}-recipients.csv"'}
        )
        response.content_type, response.charset = "text/csv", "utf-8"
        await response.prepare(request)
        after = 0
        await response.write("".join(recipients_csv([])).encode())
        while page := await recipient_rows(session, campaign.id, None, after, CSV_PAGE):
            await response.write("".join(recipients_csv(page, header=False)).encode())
            after = page[-1].id
    await response.write_eof()
    return response


# -- segments --------------------------------------------------------------------------------


def _segment(segment: Segment) -> dict[str, Any]:
    return {"id": segment.id, "name": segment.name, "rules": segment.rules, "created_at": segment.created_at,
            "updated_at": segment.updated_at}  # fmt: skip


@api.route("GET", "/api/segments", summary="Saved segments", roles=MARKETING, tag="segments",
           response=SegmentListOut)  # fmt: skip
async def list_segments(request: web.Request) -> web.Response:
    return json_response({"items": [_segment(s) for s in await Segments(session_of(request)).all()]})


@api.route("POST", "/api/segments", summary="Save a segment", roles=MARKETING, tag="segments", body=SegmentIn,
           response=SegmentOut, response_status=201, errors=(409, 422))  # fmt: skip
async def create_segment(request: web.Request, body: SegmentIn) -> web.Response:
    return json_response(_segment(await Segments(session_of(request)).create(body)), status=201)


@api.route("POST", "/api/segments/count", summary="How many a segment's rules choose now", roles=MARKETING,
           tag="segments", body=SegmentCountIn, response=SegmentCountOut)  # fmt: skip
async def count_segment(request: web.Request, body: SegmentCountIn) -> web.Response:
    counted = await Segments(session_of(request)).count(body.rules)
    return json_response({"clients": counted.clients, "addresses": counted.addresses, "suppressed": counted.suppressed})


@api.route("POST", "/api/segments/sample", summary="The first addresses a segment's rules choose, with names",
           roles=MARKETING, tag="segments", body=SegmentSampleIn, response=SegmentSampleOut)  # fmt: skip
async def sample_segment(request: web.Request, body: SegmentSampleIn) -> web.Response:
    return json_response({"items": [asdict(s) for s in await sample(session_of(request), body.rules, body.limit)]})


@api.route("GET", "/api/segments/choices", summary="What the segment builder offers: owners, tags, custom "
           "fields, earlier campaigns", roles=MARKETING, tag="segments", response=SegmentChoicesOut)  # fmt: skip
async def segment_choices(request: web.Request) -> web.Response:
    return json_response(await choices(session_of(request)))


@api.route("GET", SEGMENT, summary="One segment", roles=MARKETING, tag="segments", response=SegmentOut,
           errors=(404,))  # fmt: skip
async def read_segment(request: web.Request) -> web.Response:
    return json_response(_segment(await Segments(session_of(request)).get(_id(request))))


@api.route("PUT", SEGMENT, summary="Replace a segment's name and rules", roles=MARKETING, tag="segments",
           body=SegmentIn, response=SegmentOut, errors=(404, 409, 422))  # fmt: skip
async def replace_segment(request: web.Request, body: SegmentIn) -> web.Response:
    return json_response(_segment(await Segments(session_of(request)).update(_id(request), body)))


@api.route("DELETE", SEGMENT, summary="Delete a segment (campaigns keep their recipients)", roles=MARKETING,
           tag="segments", response_status=204, errors=(404,))  # fmt: skip
async def delete_segment(request: web.Request) -> web.Response:
    await Segments(session_of(request)).delete(_id(request))
    return web.Response(status=204)


# -- suppressions ----------------------------------------------------------------------------


def _suppression(entry: Suppression) -> dict[str, Any]:
    return {"id": entry.id, "address": entry.address_key, "reason": entry.reason.value,
            "campaign_id": entry.campaign_id, "detail": entry.detail, "created_at": entry.created_at}  # fmt: skip


@api.route("GET", "/api/suppressions", summary="Addresses no campaign writes to (unsubscribed, bounced, "
           "complained, added by hand)", roles=MARKETING, tag="segments", query=SuppressionQuery,
           response=SuppressionListOut)  # fmt: skip
async def list_suppressions(request: web.Request, query: SuppressionQuery) -> web.Response:
    page = await SuppressionList(session_of(request)).page(query.q, query.page, query.per_page)
    return json_response({"items": [_suppression(s) for s in page.items], "total": page.total, "page": page.page,
                          "per_page": page.per_page})  # fmt: skip


@api.route("POST", "/api/suppressions", summary="Suppress an address by hand", roles=MARKETING, tag="segments",
           body=SuppressionIn, response=SuppressionOut, response_status=201, errors=(409, 422))  # fmt: skip
async def add_suppression(request: web.Request, body: SuppressionIn) -> web.Response:
    return json_response(_suppression(await SuppressionList(session_of(request)).add(body.address, body.detail)),
                         status=201)  # fmt: skip


@api.route("DELETE", r"/api/suppressions/{id:\d+}", summary="Let mail go to an address again", roles=MARKETING,
           tag="segments", response_status=204, errors=(404,))  # fmt: skip
async def remove_suppression(request: web.Request) -> web.Response:
    await SuppressionList(session_of(request)).remove(_id(request))
    return web.Response(status=204)
