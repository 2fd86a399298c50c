"""Shapes of a card's notes on the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from crm_core.client_notes import MAX_NOTE_CHARS
from hub.web.schemas import _In, _Out


class NoteIn(_In):
    text: str = Field(min_length=1, max_length=MAX_NOTE_CHARS)


class NoteOut(_Out):
    id: int
    client_id: int
    text: str
    author: str
    created_at: datetime
