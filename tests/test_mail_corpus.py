"""Sixty-odd hostile or broken messages (``tests/mail_corpus.py``): each is read right or refused with a reason."""

from __future__ import annotations

import pytest

from connectors.mail.html import for_display
from connectors.mail.mime import UnreadableMessage, parse
from tests.mail_corpus import DATES, Specimen, corpus

LIMIT = 10 * 1024 * 1024


@pytest.mark.parametrize("specimen", corpus(), ids=lambda s: s.name)
def test_specimen_is_read_as_its_sender_meant_or_refused(specimen: Specimen) -> None:
    try:
        mail = parse(specimen.raw, max_attachment_bytes=LIMIT)
    except UnreadableMessage as exc:
        assert specimen.quarantine_ok, f"refused: {exc}"
        assert str(exc)
        return
    if specimen.subject is not None:
        assert mail.subject == specimen.subject
    if specimen.sender is not None:
        assert mail.sender is not None and mail.sender.lowered == specimen.sender
    if specimen.recipients is not None:
        assert len({a.lowered for a in mail.to + mail.cc}) == specimen.recipients
    if specimen.text_contains is not None:
        assert specimen.text_contains in mail.text
    listed = [a for a in mail.attachments if not a.inline]
    if specimen.attachments is not None:
        assert len(listed) == specimen.attachments, [a.filename for a in listed]
    if specimen.attachment_names:
        assert tuple(a.filename for a in listed) == specimen.attachment_names
    assert sum(a.inline for a in mail.attachments) == specimen.inline_images
    if specimen.html_must_not_contain:
        assert mail.html is not None
        shown = for_display(mail.html, remote_images=False, inline_url=lambda cid: f"/inline/{cid}").lower()
        for bad in specimen.html_must_not_contain:
            assert bad.lower() not in shown, bad
    if specimen.message_id is not None:
        assert mail.message_id == specimen.message_id
    if specimen.in_reply_to is not None:
        assert mail.in_reply_to == specimen.in_reply_to
    if specimen.name in DATES:
        assert mail.sent_at == DATES[specimen.name]
    assert "\x00" not in mail.text and "\x00" not in mail.subject
