"""Making a message's HTML safe to show inside the hub's pages.

nh3 (the Rust ``ammonia`` sanitiser) keeps a fixed allow-list of tags and attributes: no
scripts, no event handlers, no forms, frames or objects, no ``javascript:`` or ``data:``
links.  Remote images are kept in the stored HTML but shown only when the user asks,
because in mail they are mostly trackers; ``cid:`` images point at the hub's own copy of
the inline part.  The same function serves both moments: storing (everything remote kept)
and showing (remote images dropped unless allowed, ``cid:`` rewritten).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

import nh3

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup", "dd", "del", "div",
    "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "ol", "p",
    "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "tt", "u", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"style", "title", "align", "dir", "lang"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "width", "bgcolor"},
    "td": {"colspan", "rowspan", "width", "valign", "bgcolor"},
    "th": {"colspan", "rowspan", "width", "valign", "bgcolor"},
    "col": {"span", "width"},
    "ol": {"start", "type"},
}
# Inline CSS that lays text out; nothing that loads a URL (background, background-image, content).
_STYLES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
    "text-align", "text-decoration", "text-indent", "line-height", "letter-spacing", "white-space",
    "vertical-align", "width", "max-width", "min-width", "height", "margin", "margin-top", "margin-right",
    "margin-bottom", "margin-left", "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left", "border-color", "border-style",
    "border-width", "border-collapse", "border-spacing", "border-radius", "display",
}  # fmt: skip
_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
_ACTIVE_CSS = re.compile(r"expression|url\s*\(|javascript:|behavior|-moz-binding|@import|\\", re.IGNORECASE)


def sanitise(html: str) -> str:
    """The HTML as stored: safe, with remote images and ``cid:`` references left as they are."""
    return _clean(html, _keep, relative="deny")  # a relative link in mail would point into the hub


def for_display(stored: str, *, remote_images: bool, inline_url: Callable[[str], str | None]) -> str:
    """Stored HTML as a page shows it: remote images dropped unless allowed, ``cid:`` images
    pointed at ``inline_url(content_id)`` (dropped when it returns None)."""

    def adjust(tag: str, attribute: str, value: str) -> str | None:
        if tag != "img" or attribute != "src":
            return value if not value.lower().startswith("cid:") else None  # cid: only makes sense for images
        if value.lower().startswith("cid:"):
            return inline_url(value[4:].strip("<>"))
        if _REMOTE.match(value):
            return value if remote_images else None
        return value

    return _clean(stored, adjust, relative="pass_through")  # only the inline URLs made here are relative


def has_remote_images(html: str) -> bool:
    found = False

    def spot(tag: str, attribute: str, value: str) -> str:
        nonlocal found
        found = found or (tag == "img" and attribute == "src" and bool(_REMOTE.match(value)))
        return value

    _clean(html, spot, relative="deny")
    return found


def _keep(_tag: str, attribute: str, value: str) -> str | None:
    if attribute == "style" and _ACTIVE_CSS.search(value):
        return None  # CSS that runs code or loads from elsewhere: the whole style goes
    return value


def _clean(
    html: str,
    attribute_filter: Callable[[str, str, str], str | None],
    *,
    relative: Literal["pass_through", "deny"],
) -> str:
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "head"},
        attributes=_ATTRIBUTES,
        attribute_filter=attribute_filter,
        url_schemes=_SCHEMES,
        filter_style_properties=_STYLES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        url_relative=relative,
    )
