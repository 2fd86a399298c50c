"""/api/messages: correspondence logged from the mailboxes, its attachments, and the triage list.

HTML is shown sanitised, with remote images only when asked for (they are mostly trackers)
and inline ``cid:`` images served from the hub's own store.  Files go out as downloads with
``nosniff`` and a sandboxing CSP, so a hostile attachment cannot run in the hub's origin.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any
from urllib.parse import quote

from aiohttp import web

from connectors.mail.html import for_display
from connectors.smtp import SmtpError
from crm_core.client_data import client_to_dict
from crm_core.errors import InvalidInput
from crm_core.mail.correspondence import Correspondence, MessageQuery, message_to_dict
from crm_core.mail.events import Address, Attachment
from crm_core.mail.models import MailAttachment, MailMessage, MailQuarantine
from crm_core.models import Role
from hub.mail_send import Draft, MailboxNotReady
from hub.web.endpoints import ALL_ROLES, Api, ApiError, actor_of, json_response, page_response, session_of
from hub.web.mail_schemas import (
    ClientFromSenderIn,
    ClientFromSenderOut,
    LinkIn,
    MailboxListOut,
    MessageIn,
    MessageOut,
    MessagePageOut,
    MessageSearch,
    MessageView,
    PageIn,
    QuarantinePageOut,
    SentOut,
)
from hub.web.state import BLOBS, CONTEXT, MAIL

api = Api()
TRIAGE = {Role.admin, Role.operator}
MESSAGE = r"/api/messages/{id:\d+}"
_DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=3600",
}


def _mail(request: web.Request) -> Correspondence:
    return Correspondence(session_of(request), request.app[CONTEXT].rules)


def _shown(message: MailMessage, remote_images: bool = False) -> dict[str, Any]:
    html = None
    if message.html_body:
        html = for_display(
            message.html_body,
            remote_images=remote_images,
            inline_url=lambda cid: f"/api/messages/{message.id}/inline/{quote(cid, safe='@.-_')}",
        )
    return message_to_dict(message, html=html)


@api.route(
    "GET",
    "/api/messages",
    summary="Correspondence: by client, mailbox, thread, period; the triage list (unmatched)",
    roles=ALL_ROLES,
    tag="mail",
    query=MessageSearch,
    response=MessagePageOut,
)
async def search_messages(request: web.Request, query: MessageSearch) -> web.Response:
    page = await _mail(request).search(MessageQuery(**query.model_dump()))
    return page_response(page, _shown)


@api.route(
    "GET", MESSAGE, summary="One message, its HTML sanitised", roles=ALL_ROLES, tag="mail", query=MessageView,
    response=MessageOut, errors=(404,),
)  # fmt: skip
async def read_message(request: web.Request, query: MessageView) -> web.Response:
    message = await _mail(request).get(int(request.match_info["id"]))
    return json_response(_shown(message, query.remote_images))


@api.route(
    "GET",
    r"/api/attachments/{id:\d+}",
    summary="Download an attachment",
    roles=ALL_ROLES,
    tag="mail",
    response_media_type="application/octet-stream",
    errors=(404,),
)
async def download_attachment(request: web.Request) -> web.StreamResponse:
    attachment = await _mail(request).attachment(int(request.match_info["id"]))
    return await _file(request, attachment, disposition="attachment")


@api.route(
    "GET",
    r"/api/messages/{id:\d+}/inline/{cid}",
    summary="An image the message's HTML shows inline (cid:)",
    roles=ALL_ROLES,
    tag="mail",
    response_media_type="image/*",
    errors=(404,),
)
async def inline_image(request: web.Request) -> web.StreamResponse:
    part = await _mail(request).inline_part(int(request.match_info["id"]), request.match_info["cid"])
    if not part.content_type.startswith("image/"):
        raise ApiError(404, "not_found", "only images are shown inline")
    return await _file(request, part, disposition="inline")


@api.route(
    "GET",
    MESSAGE + "/raw",
    summary="The message exactly as it arrived (.eml)",
    roles=TRIAGE,
    tag="mail",
    response_media_type="message/rfc822",
    errors=(404,),
)
async def raw_message(request: web.Request) -> web.StreamResponse:
    message = await _mail(request).get(int(request.match_info["id"]))
    return await _blob(request, message.raw_sha256, "message/rfc822", f"message-{message.id}.eml", "attachment")


@api.route(
    "POST",
    MESSAGE + "/links",
    summary="File a message under a card by hand (triage)",
    roles=TRIAGE,
    tag="mail",
    body=LinkIn,
    response=MessageOut,
    errors=(404, 422),
)
async def link_message(request: web.Request, body: LinkIn) -> web.Response:
    message = await _mail(request).link(
        int(request.match_info["id"]), body.client_id, body.contact_id, actor_of(request)
    )
    return json_response(_shown(message))


@api.route(
    "POST",
    MESSAGE + "/client",
    summary="Create a card from the sender and file the message under it (triage)",
    roles=TRIAGE,
    tag="mail",
    body=ClientFromSenderIn,
    response=ClientFromSenderOut,
    response_status=201,
    errors=(404, 409, 422),
)
async def client_from_sender(request: web.Request, body: ClientFromSenderIn) -> web.Response:
    mail = _mail(request)
    message_id = int(request.match_info["id"])
    client = await mail.client_from_sender(message_id, body.name, actor_of(request))
    message = await mail.get(message_id)
    return json_response({"client": client_to_dict(client), "message": _shown(message)}, status=201)


@api.route(
    "POST",
    "/api/messages",
    summary="Send an e-mail from the card (new, or a reply), logged like received mail",
    roles=TRIAGE,
    tag="mail",
    body=MessageIn,
    response=SentOut,
    response_status=201,
    errors=(404, 422, 502, 503),
    own_transactions=True,
)
async def send_message(request: web.Request, body: MessageIn) -> web.Response:
    mail = request.app.get(MAIL)
    if mail is None:
        raise ApiError(503, "no_mailbox", "no mailbox is configured")
    draft = Draft(
        mailbox=body.mailbox,
        to=tuple(Address(a.address, a.name) for a in body.to),
        cc=tuple(Address(a.address, a.name) for a in body.cc),
        client_id=body.client_id,
        contact_id=body.contact_id,
        subject=body.subject,
        text=body.text,
        html=body.html,
        reply_to=body.reply_to,
        template=body.template,
        attachments=_attachments(body),
    )
    try:
        sent = await mail.sender.send(draft, actor_of(request))
    except MailboxNotReady as exc:
        raise ApiError(503, "no_mailbox", str(exc)) from None
    except SmtpError as exc:
        raise ApiError(502, "smtp_error", f"the mail server did not take the message: {exc}") from None
    async with request.app[CONTEXT].reading() as session:
        shown = _shown(await Correspondence(session).get(sent.id))
    return json_response({"message": shown, "refused": sent.refused, "saved_to_sent": sent.saved_to_sent}, status=201)


@api.route(
    "GET",
    "/api/mailboxes",
    summary="Each mailbox's folders: connected, following by IDLE, last error, refused login",
    roles={Role.admin},
    tag="mail",
    response=MailboxListOut,
)
async def mailboxes(request: web.Request) -> web.Response:
    mail = request.app.get(MAIL)
    statuses = mail.statuses() if mail is not None else []
    return json_response(
        {
            "items": [
                {
                    "name": s.name,
                    "healthy": s.healthy,
                    "login_rejected": s.login_rejected,
                    "last_error": s.last_error,
                    "folders": [
                        {
                            "folder": f.folder,
                            "connected": f.connected,
                            "idle": f.idle,
                            "last_uid": f.last_uid,
                            "fetched": f.fetched,
                            "last_error": f.last_error,
                            "login_rejected": f.login_rejected,
                            "last_checked_at": f.last_checked_at.isoformat() if f.last_checked_at else None,
                        }
                        for f in s.folders.values()
                    ],
                }
                for s in statuses
            ]
        }
    )


@api.route(
    "GET",
    "/api/mail/quarantine",
    summary="Messages nobody could read, kept with their bytes and the reason",
    roles={Role.admin},
    tag="mail",
    query=PageIn,
    response=QuarantinePageOut,
)
async def quarantine(request: web.Request, query: PageIn) -> web.Response:
    page = await _mail(request).quarantine(query.page, query.per_page)
    return page_response(page, _quarantined)


@api.route(
    "GET",
    r"/api/mail/quarantine/{id:\d+}/raw",
    summary="A quarantined message's bytes",
    roles={Role.admin},
    tag="mail",
    response_media_type="message/rfc822",
    errors=(404,),
)
async def quarantined_raw(request: web.Request) -> web.StreamResponse:
    entry = await _mail(request).quarantined(int(request.match_info["id"]))
    return await _blob(request, entry.raw_sha256, "message/rfc822", f"quarantine-{entry.id}.eml", "attachment")


def _attachments(body: MessageIn) -> tuple[Attachment, ...]:
    files = []
    for item in body.attachments:
        try:
            data = base64.b64decode(item.data_base64, validate=True)
        except binascii.Error:
            raise InvalidInput(f"{item.filename!r}: data_base64 is not base64", field="attachments") from None
        files.append(Attachment(item.filename, item.content_type, data, len(data)))
    return tuple(files)


def _quarantined(entry: MailQuarantine) -> dict[str, Any]:
    return {
        "id": entry.id,
        "mailbox": entry.mailbox,
        "folder": entry.folder,
        "uidvalidity": entry.uidvalidity,
        "uid": entry.uid,
        "raw_size": entry.raw_size,
        "error": entry.error,
        "created_at": entry.created_at.isoformat(),
        "raw_url": f"/api/mail/quarantine/{entry.id}/raw",
    }


async def _file(request: web.Request, attachment: MailAttachment, disposition: str) -> web.StreamResponse:
    if attachment.sha256 is None:
        raise ApiError(404, "not_stored", f"{attachment.filename!r} was over the size limit and was not kept")
    return await _blob(request, attachment.sha256, attachment.content_type, attachment.filename, disposition)


async def _blob(request: web.Request, digest: str, content_type: str, filename: str, disposition: str) -> web.Response:
    blobs = request.app[BLOBS]
    if not await asyncio.to_thread(blobs.has, digest):
        raise ApiError(404, "not_found", "the stored file is missing from the data directory")
    data = await asyncio.to_thread(blobs.get, digest)
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'")
    headers = {
        **_DOWNLOAD_HEADERS,
        "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}",
    }
    return web.Response(body=data, content_type=content_type, headers=headers)
