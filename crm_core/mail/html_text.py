"""The plain-text version of an HTML body: what a text-only reader sees of it.

Used where only HTML was written: a message sent from the card, a campaign's text part.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")  # HTML collapses these, not the no-break space


def html_to_text(html: str) -> str:
    """The plain-text part of an HTML-only message: tags dropped, blocks and ``<br>`` as line
    breaks, entities unescaped, link targets kept in brackets (a text reader can still follow them)."""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    return parser.text()


class _TextOfHtml(HTMLParser):
    """Collects text; block elements become line breaks, paragraphs blank lines."""

    _SKIP = frozenset({"script", "style", "head", "title"})
    _LINE = frozenset({"div", "tr", "hr", "pre", "dd", "dt"})
    _PARAGRAPH = frozenset({"p", "table", "blockquote", "ul", "ol", "dl", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities arrive unescaped in handle_data
        self._out: list[str] = []
        self._skip = 0
        self._pre = 0
        self._links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "br":
            self._out.append("\n")
        elif tag == "li":
            self._break(1)
            self._out.append("- ")
        elif tag in ("td", "th"):
            self._out.append(" ")
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self._out)))
        self._block(tag)
        if tag == "pre":
            self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self._SKIP and tag != "a":
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            shown = "".join(self._out[start:]).strip()
            if href and href.startswith(("http://", "https://")) and href != shown:
                self._out.append(f" ({href})")
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        self._block(tag)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._out.append(data if self._pre else _HTML_SPACE.sub(" ", data))

    def _block(self, tag: str) -> None:
        if tag in self._PARAGRAPH:
            self._break(2)
        elif tag in self._LINE:
            self._break(1)

    def _break(self, count: int) -> None:
        """End the line (``count`` 2: the paragraph) unless the text already ends so."""
        tail = "".join(self._out[-4:]).rstrip(" ")
        have = len(tail) - len(tail.rstrip("\n"))
        if have < count:
            self._out.append("\n" * (count - have))

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self._out).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
