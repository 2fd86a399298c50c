"""A campaign's subject and bodies as Jinja2 templates, rendered in a sandbox per recipient.

Variables: ``client`` (the card: ``client.name``, ``client.inn``, ``client.tags``, custom fields
as ``client.custom.<name>``), ``contact`` (``contact.first_name``... empty when the address is
the company's own), ``recipient.address``, ``campaign.name`` and ``unsubscribe_url``.  A custom
field a card lacks is empty, so ``{{ client.custom.region or "Москва" }}`` is the fallback; a
misspelt variable (``{{ client.nmae }}``) is an error, named with its field and line, found
when the campaign is saved (syntax) or checked against every recipient before it is sent.

Every ``http(s)`` link of the HTML is numbered when the template is compiled; each recipient's
copy points at a click redirect carrying that number, and the redirect goes to the URL stored
for the number (itself a template: ``?utm_content={{ client.id }}`` works), never elsewhere.
"""

from __future__ import annotations

import html as html_entities
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from crm_core.errors import InvalidInput
from crm_core.mail.html_text import html_to_text
from crm_core.models import Client, Contact

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_HTML_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_TRACKED = re.compile(r"^\s*https?://", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
# What Jinja2's messages name: "'dict object' has no attribute 'nmae'", "'clent' is undefined".
_MISSING_NAME = re.compile(r"has no attribute '([^']+)'|^'([^']+)' is undefined")


class TemplateProblem(InvalidInput):
    """A template that cannot be rendered: which field, which line, what is wrong."""

    def __init__(self, field: str, line: int | None, message: str) -> None:
        where = f"{field}, line {line}" if line else field
        super().__init__(f"{where}: {message}", field=field)
        self.line = line
        self.problem = message

    def for_recipient(self, address: str) -> TemplateProblem:
        return TemplateProblem(self.field or "", self.line, f"{self.problem} (for {address})")


class _Blank(dict[str, Any]):
    """Custom fields: one a card lacks reads as empty, so templates can give a fallback."""

    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class CampaignTemplate:
    subject: Template
    html: Template | None
    text: Template | None
    links: tuple[str, ...]  # the HTML's link URLs (templates themselves), numbered from 1
    link_templates: tuple[Template, ...]

    @classmethod
    def compile(cls, subject: str, html: str, text: str) -> CampaignTemplate:
        links: list[str] = []

        def numbered(match: re.Match[str]) -> str:
            url = match.group(3)
            if not _TRACKED.match(url):
                return match.group(0)
            links.append(html_entities.unescape(url.strip()))  # the source says &amp; for &
            return f"{match.group(1)}{match.group(2)}{{{{ _links[{len(links)}] }}}}{match.group(2)}"

        source = _HREF.sub(numbered, html)
        return cls(
            subject=_compile(_ENV, "subject", subject),
            html=_compile(_HTML_ENV, "html", source) if html.strip() else None,
            text=_compile(_ENV, "text", text) if text.strip() else _text_of(html, links),
            links=tuple(links),
            link_templates=tuple(_compile(_ENV, f"link {n}", url) for n, url in enumerate(links, 1)),
        )

    def render(
        self,
        variables: Mapping[str, Any],
        link_urls: Sequence[str] | None = None,
        pixel_url: str | None = None,
    ) -> Rendered:
        """One recipient's copy; ``link_urls`` (the click redirects, by number) replace the
        links, else each link is the recipient's rendering of its own URL."""
        urls = list(link_urls) if link_urls is not None else [self.link_url(n, variables) for n in self._numbers]
        html = ""
        if self.html is not None:
            html = _render("html", self.html, {**variables, "_links": [None, *urls]})
            if pixel_url:
                html = _with_pixel(html, pixel_url)
        text = _render("text", self.text, {**variables, "_links": [None, *urls]}) if self.text is not None else ""
        return Rendered(_render("subject", self.subject, variables).strip(), html, text)

    def link_url(self, number: int, variables: Mapping[str, Any]) -> str:
        """Where link ``number`` takes this recipient."""
        return _render(f"link {number}", self.link_templates[number - 1], variables).strip()

    @property
    def _numbers(self) -> range:
        return range(1, len(self.links) + 1)


def locate(problem: TemplateProblem, sources: Mapping[str, str]) -> dict[str, Any]:
    """Where an editor shows the problem: the field (a link's URL is the HTML's), the line, and
    the variable as written there (``client.nmae``, not Jinja2's bare ``nmae``), so a marketer
    sees which of the text's words to fix."""
    field = problem.field or ""
    shown = "html" if field.startswith("link") else field
    found = _MISSING_NAME.search(problem.problem)
    variable = (found.group(1) or found.group(2)) if found else None
    lines = sources.get(shown, "").splitlines()
    if variable and problem.line and not field.startswith("link") and 0 < problem.line <= len(lines):
        written = re.search(rf"[\w.]*\b{re.escape(variable)}\b", lines[problem.line - 1])
        variable = written.group(0) if written else variable
    line = None if field.startswith("link") else problem.line  # a line of the URL, not of the HTML
    return {"field": shown, "line": line, "variable": variable, "message": str(problem)}


def render_url(source: str, variables: Mapping[str, Any]) -> str:
    """A stored link's URL for one recipient (a link's URL is a template too)."""
    return _render("link", _compile(_ENV, "link", source), variables).strip()


@dataclass(frozen=True, slots=True)
class Card:
    """The card's fields a template may use: read from the ORM card, or straight from rows when
    a mailing renders thousands of copies (building ORM objects was a tenth of a message's cost)."""

    id: int
    name: str
    full_name: str
    kind: str
    inn: str
    kpp: str
    website: str
    status: str
    tags: tuple[str, ...]
    custom: Mapping[str, Any]

    @classmethod
    def of(cls, client: Client) -> Card:
        return cls(client.id, client.name, client.full_name, client.kind.value, client.inn or "", client.kpp or "",
                   client.website or "", client.status.value, tuple(t.tag for t in client.tags),
                   client.custom_fields or {})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Person:
    """The contact person a copy goes to; empty when the address is the company's own."""

    first_name: str = ""
    middle_name: str = ""
    last_name: str = ""
    position: str = ""

    @classmethod
    def of(cls, contact: Contact | None) -> Person:
        if contact is None:
            return cls()
        return cls(contact.first_name, contact.middle_name, contact.last_name, contact.position)


def card_variables(
    card: Card, person: Person, address: str, campaign_name: str, unsubscribe_url: str
) -> dict[str, Any]:
    """What a template may use, for one recipient."""
    return {
        "client": {
            "id": card.id,
            "name": card.name,
            "full_name": card.full_name or card.name,
            "kind": card.kind,
            "inn": card.inn,
            "kpp": card.kpp,
            "website": card.website,
            "status": card.status,
            "tags": list(card.tags),
            "custom": _Blank(card.custom),
        },
        "contact": {
            "first_name": person.first_name,
            "middle_name": person.middle_name,
            "last_name": person.last_name,
            "position": person.position,
        },
        "recipient": {"address": address},
        "campaign": {"name": campaign_name},
        "unsubscribe_url": unsubscribe_url,
    }


def _text_of(html: str, links: Sequence[str]) -> Template | None:
    """The text part made once from the HTML template (not per recipient from each copy: that
    took half the time of a message), its links pointing at the same redirects as the HTML's.
    None (each copy's text is then made from its HTML) when the result is no valid template."""
    if not html.strip():
        return None
    text = html_to_text(html)
    for number, url in enumerate(links, 1):
        text = text.replace(f"({url})", f"({{{{ _links[{number}] }}}})")
    try:
        return _compile(_ENV, "text", text)
    except TemplateProblem:
        return None


def _compile(env: SandboxedEnvironment, field: str, source: str) -> Template:
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(field, exc.lineno, exc.message or "syntax error") from None


def _render(field: str, template: Template, variables: Mapping[str, Any]) -> str:
    try:
        return template.render(**variables)
    except UndefinedError as exc:
        raise TemplateProblem(field, _template_line(exc), exc.message or "undefined variable") from None
    except TemplateError as exc:
        raise TemplateProblem(field, _template_line(exc), str(exc)) from None
    except (TypeError, ValueError, ArithmeticError) as exc:  # a filter given the wrong thing
        raise TemplateProblem(field, _template_line(exc), str(exc)) from None


def _template_line(exc: BaseException) -> int | None:
    """The template's line the error came from: Jinja2 rewrites tracebacks so its frames
    carry the template's line numbers, under the file name ``<template>``."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _with_pixel(html: str, pixel_url: str) -> str:
    pixel = f'<img src="{pixel_url}" width="1" height="1" alt="" style="display:block;border:0">'
    parts = _BODY_END.split(html, maxsplit=1)
    return f"{parts[0]}{pixel}</body>{parts[1]}" if len(parts) == 2 else html + pixel
