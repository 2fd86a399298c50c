"""The pieces of a tracked mailing that need no server: templates, tracking tokens, machine hits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.campaigns.machines import Hit, MachineRules, Networks, classify
from crm_core.campaigns.templates import CampaignTemplate, TemplateProblem, _Blank
from crm_core.campaigns.tokens import Purpose, make_token, read_token

KEY = b"k" * 32
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def _vars(**client: object) -> dict[str, object]:
    return {
        "client": {"id": 5, "name": "Ромашка & Ко", "custom": _Blank({"region": "Тула"}), **client},
        "contact": {"first_name": "", "last_name": ""},
        "recipient": {"address": "info@romashka.ru"},
        "campaign": {"name": "Декабрь"},
        "unsubscribe_url": "https://hub.example.com/u/TOKEN",
    }


# -- templates -------------------------------------------------------------------------------


def test_links_are_numbered_and_replaced_by_redirects_and_the_pixel_goes_before_body_end() -> None:
    html = (
        '<html><body><p>{{ contact.first_name or "Коллеги" }}, для {{ client.name }}:</p>'
        '<a href="https://shop.example.com/sale?c={{ client.id }}&amp;u=1">скидки</a>'
        '<a href="mailto:sales@example.com">письмо</a><a href="#top">наверх</a>'
        "<a href='http://example.com/b'>b</a></body></html>"
    )
    template = CampaignTemplate.compile("{{ client.name }}: скидки", html, "")
    assert template.links == ("https://shop.example.com/sale?c={{ client.id }}&u=1", "http://example.com/b")
    assert template.link_url(1, _vars()) == "https://shop.example.com/sale?c=5&u=1"

    tracked = template.render(_vars(), ["https://hub/t/c/A", "https://hub/t/c/B"], "https://hub/t/o/P")
    assert tracked.subject == "Ромашка & Ко: скидки"
    assert "Коллеги, для Ромашка &amp; Ко" in tracked.html  # HTML escaped, the subject not
    assert 'href="https://hub/t/c/A"' in tracked.html and "href='https://hub/t/c/B'" in tracked.html
    assert 'href="mailto:sales@example.com"' in tracked.html and 'href="#top"' in tracked.html
    assert tracked.html.index('src="https://hub/t/o/P"') < tracked.html.index("</body>")

    plain = template.render(_vars())
    assert 'href="https://shop.example.com/sale?c=5&amp;u=1"' in plain.html and "t/o/" not in plain.html


def test_a_missing_custom_field_is_empty_so_a_fallback_applies() -> None:
    template = CampaignTemplate.compile(
        '{{ client.custom.region or "Москва" }}/{{ client.custom.size or "?" }}', "", ""
    )
    assert template.render(_vars()).subject == "Тула/?"


@pytest.mark.parametrize(
    ("subject", "html", "text", "expected"),
    [
        ("Hi", "<p>\n{{ client.nmae }}</p>", "", "html, line 2: 'dict object' has no attribute 'nmae'"),
        ("Hi", "<p>\n\n{% if %}</p>", "", "html, line 3: "),
        ("{{ clent.name }}", "", "", "subject, line 1: 'clent' is undefined"),
        ("Hi", "", "a\nb\n{{ client.name | int(base=1/0) }}", "text, line 3: "),
        ("Hi", '<a href="https://x.example/{{ client.}}">x</a>', "", "link 1, line 1: "),
    ],
)
def test_a_template_error_names_the_field_the_line_and_the_variable(
    subject: str, html: str, text: str, expected: str
) -> None:
    with pytest.raises(TemplateProblem) as caught:
        CampaignTemplate.compile(subject, html, text).render(_vars())
    assert str(caught.value).startswith(expected), str(caught.value)


def test_the_sandbox_refuses_to_reach_python_internals() -> None:
    with pytest.raises(TemplateProblem):
        CampaignTemplate.compile("{{ client.__class__.__mro__[1].__subclasses__() }}", "", "").render(_vars())


# -- tokens ----------------------------------------------------------------------------------


@given(st.integers(0, 2**62), st.integers(0, 10_000))
def test_a_token_reads_back_only_for_its_own_purpose(recipient: int, link: int) -> None:
    click = make_token(KEY, Purpose.click, recipient, link)
    assert read_token(KEY, Purpose.click, click) == (recipient, link)
    assert read_token(KEY, Purpose.open, click) is None
    assert read_token(KEY, Purpose.unsubscribe, click) is None
    assert read_token(b"other" * 8, Purpose.click, click) is None
    opened = make_token(KEY, Purpose.open, recipient)
    assert read_token(KEY, Purpose.open, opened) == (recipient, None)


def test_tokens_are_short() -> None:
    assert len(make_token(KEY, Purpose.click, 5_000_000, 12)) <= 20
    assert len(make_token(KEY, Purpose.unsubscribe, 5_000_000)) <= 20


@given(st.text(max_size=60))
def test_any_forged_token_is_refused(token: str) -> None:
    for purpose in Purpose:
        assert read_token(KEY, purpose, token) is None


def test_every_altered_character_is_refused() -> None:
    token = make_token(KEY, Purpose.click, 123456, 3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for at in range(len(token)):
        for char in alphabet:
            if char != token[at]:
                altered = token[:at] + char + token[at + 1 :]
                assert read_token(KEY, Purpose.click, altered) is None, altered


# -- machines --------------------------------------------------------------------------------

RULES = MachineRules(apple=Networks(["17.0.0.0/8", "2a02:26f7::/32"]), scanners=Networks(["203.0.113.0/24"]))


def _hit(kind: str = "click", agent: str | None = CHROME, **extra: object) -> Hit:
    values: dict[str, object] = {"method": "GET", "ip": "198.51.100.7", "seconds_since_sent": 3600.0}
    values.update(extra)
    return Hit(kind=kind, user_agent=agent, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hit", "human", "reason"),
    [
        (_hit("open", "Mozilla/5.0"), False, "apple_mpp"),
        (_hit("open", CHROME, ip="17.58.1.1"), False, "apple_mpp"),
        (
            _hit("open", "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"),
            True,
            "gmail_proxy",
        ),  # fmt: skip
        (_hit("open", "python-requests/2.31"), False, "automation_ua"),
        (_hit("open", "Microsoft Office/16.0 (Microsoft Outlook 16.0.5)"), True, "human"),
        (_hit("open", CHROME, seconds_since_sent=0.8), False, "too_fast"),
        (_hit("open", CHROME), True, "human"),
        (_hit("click", CHROME, method="HEAD"), False, "head_request"),
        (_hit("click", None), False, "no_user_agent"),
        (_hit("click", "Mozilla/5.0"), False, "bare_ua"),
        (_hit("click", "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.1)"), False, "obsolete_ua"),
        (_hit("click", CHROME, ip="203.0.113.9"), False, "scanner_ip"),
        (_hit("click", CHROME, seconds_since_sent=1.5), False, "too_fast"),
        (_hit("click", CHROME, links_in_pair=2), False, "link_pair_burst"),
        (_hit("click", CHROME, links_in_burst=3), False, "link_burst"),
        (
            _hit("click", CHROME, seconds_since_sent=60.0, has_accept_language=False),
            False,
            "browser_without_accept_language",
        ),  # fmt: skip
        (_hit("click", CHROME, ip="17.58.1.1"), True, "human"),  # iCloud Private Relay: a Safari user
        (_hit("click", CHROME, ip="::ffff:198.51.100.7"), True, "human"),
    ],
)
def test_machine_hits_are_told_from_people(hit: Hit, human: bool, reason: str) -> None:
    verdict = classify(hit, RULES)
    assert (verdict.human, verdict.reason) == (human, reason)
