"""The admin's pages: in a real browser (headless Chromium) an admin makes an operator and
changes their role, tests each connection against real peers and sees each verdict in place,
subscribes a webhook, and finds all of it in the audit log; over plain HTTP, every other role is
refused each page and a visitor is sent to log in."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page

from crm_core import audit
from crm_core.audit import SYSTEM
from crm_core.models import Role
from tests.browser import chromium, logged_in, screenshot
from tests.conftest import PASSWORD, bearer
from tests.dovecot import Dovecot, MailUser
from tests.fake_onec import FakeOnec
from tests.onec_world import PASSWORD as ONEC_PASSWORD
from tests.smtp_server import SmtpTestServer
from tests.test_connections_api import wired_hub

PAGES = ("/admin/users", "/admin/connections", "/admin/audit")
VERDICT_WITHIN = 15_000  # ms: a check's own timeout is 10 s


async def _verdict(page: Page, scope: str) -> str:
    """Presses the item's test button and returns the verdict it shows in place."""
    await page.click(f"{scope} button.test")
    done = f"{scope} .verdict.ok, {scope} .verdict.error"
    await page.wait_for_selector(done, timeout=VERDICT_WITHIN)
    return f"{await page.get_attribute(done, 'class')}: {await page.text_content(done)}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the pages' logic is the API's, tested on both
async def test_an_admin_makes_an_operator_tests_each_connection_and_reads_it_all_in_the_audit_log(
    database_url: str,
    tmp_path: Path,
    dovecot: Dovecot,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    fake: FakeOnec,
) -> None:
    async with (
        wired_hub(database_url, tmp_path / "data", dovecot, dovecot_user, smtp_server, fake) as hub,
        chromium() as browser,
    ):
        page = await logged_in(browser, str(hub.http.make_url("")), "admin", PASSWORD)
        page.on("dialog", lambda dialog: dialog.accept())
        async with hub.context.transaction() as session:  # older entries: the log runs to a second page
            for number in range(60):
                audit.record(session, SYSTEM, "read", "client", number)

        # Users: a too-short password is refused beside its field; then the operator is made.
        assert page.url.endswith("/admin/users")
        await page.wait_for_selector('#users tr[data-username="admin"]')
        await page.fill("#u-username", "ivan")
        await page.fill("#u-full_name", "Иван Петров")
        await page.select_option("#u-role", "operator")
        await page.fill("#u-extension", "105")
        await page.fill("#u-password", "short")
        await page.click("#user-save")
        await page.wait_for_selector('.field-error[data-for="password"]:not(:empty)')
        assert "не короче 8 знаков" in (await page.text_content('.field-error[data-for="password"]') or "")
        await screenshot(page, "admin-users-invalid")
        await page.fill("#u-password", "long enough secret")
        await page.click("#user-save")
        await page.wait_for_selector('#users tr[data-username="ivan"]')
        assert await page.text_content('#users tr[data-username="ivan"] .role') == "оператор"
        assert await page.text_content('#users tr[data-username="ivan"] .extension') == "105"
        assert await page.text_content('.field-error[data-for="password"]') == ""

        await page.click('#users tr[data-username="ivan"] button.edit')
        assert await page.input_value("#u-extension") == "105"
        await page.select_option("#u-role", "marketer")
        await page.click("#user-save")
        await page.wait_for_selector('#users tr[data-username="ivan"] .role:text-is("маркетолог")')
        await screenshot(page, "admin-users")

        # Connections: each item's verdict, in place.
        await page.goto("/admin/connections")
        await page.wait_for_selector("#group-pbx .item")
        pbx = await _verdict(page, '.item[data-kind="pbx"][data-name="office"]')
        assert pbx.startswith("verdict ok") and "logged in as hub" in pbx, pbx
        wrong = await _verdict(page, '.item[data-kind="pbx"][data-name="branch"]')
        assert wrong.startswith("verdict error") and "Сервер отклонил имя пользователя или пароль" in wrong, wrong
        for kind, name in (("mailbox", "sales"), ("mailbox_smtp", "sales"), ("onec", "acc")):
            verdict = await _verdict(page, f'.item[data-kind="{kind}"][data-name="{name}"]')
            assert verdict.startswith("verdict ok") and "Подключение работает" in verdict, verdict
        relay = await _verdict(page, '.item[data-kind="campaign_smtp"]')
        assert relay.startswith("verdict error") and "отклонил имя пользователя или пароль" in relay, relay
        shown = await page.content()
        # 1C's test password is a plain word ("секрет") the page's own texts contain; the API test covers it.
        assert not any(secret in shown for secret in hub.secrets if secret != ONEC_PASSWORD)

        # A webhook subscription to the receiver, tested; an incoming hook's token, shown once.
        await page.fill("#w-url", hub.hook_url)
        await page.fill("#w-description", "Сайт")
        await page.check('#w-events input[value="call.missed"]')
        await page.click("#webhook-save")
        await page.wait_for_selector("#webhook-secret-value")
        assert (await page.text_content("#webhook-secret-value") or "").startswith("whsec_")
        await page.wait_for_selector("#webhooks-table tbody tr[data-id]")
        assert "call.missed" in (await page.text_content("#webhooks-table tbody tr[data-id]") or "")
        hook = await _verdict(page, "#webhooks-table tbody tr[data-id]")
        assert hook.startswith("verdict ok") and "answers HTTP 204" in hook, hook
        await page.fill("#h-name", "site")
        await page.check('#hook-form input[value="clients"]')
        await page.click("#hook-form button[type=submit]")
        await page.wait_for_selector("#hook-token-value")
        assert (await page.text_content("#hook-token-value") or "").startswith("hook_")
        await page.wait_for_selector('#hooks-table tr[data-name="site"] button.danger')
        await screenshot(page, "admin-connections")
        await page.click('#hooks-table tr[data-name="site"] button.danger')  # revoke (the confirm is accepted)
        await page.wait_for_selector('#hooks-table tr.off[data-name="site"] .badge.bad')
        await page.click("#webhooks-table tbody tr[data-id] button.edit")  # pause the subscription
        await page.uncheck("#w-active")
        await page.click("#webhook-save")
        await page.wait_for_selector("#webhooks-table tbody tr.off[data-id] .badge.bad")

        # The audit log has each of those actions; a filter narrows it to the tests.
        await page.goto("/admin/audit")
        await page.wait_for_selector("#audit tbody tr[data-action]")
        actions = await page.eval_on_selector_all(
            "#audit tbody tr", "rows => rows.map(r => r.dataset.action + ' ' + r.dataset.entity)"
        )
        done = ("create user", "update user", "test connection", "create inbound_hook", "revoke inbound_hook")
        for expected in (*done, "create webhook", "update webhook"):
            assert expected in actions, actions
        await page.select_option("#f-entity", "connection")
        await page.click("#audit-filters button[type=submit]")
        await page.wait_for_function(
            "() => [...document.querySelectorAll('#audit tbody tr')].every(r => r.dataset.entity === 'connection')"
        )
        assert len(await page.query_selector_all("#audit tbody tr")) == 7  # the seven tests above
        assert "entity=connection" in page.url
        await screenshot(page, "admin-audit")
        await page.click("#audit-reset")
        await page.wait_for_selector("#audit-page:has-text('Страница 1 из 2')")
        await page.click("#audit-next")
        await page.wait_for_selector("#audit-page:has-text('Страница 2 из 2')")
        assert await page.is_disabled("#audit-next") and "page=2" in page.url

        # In English, as the admin's own choice.
        await page.click("#switch-language")
        await page.wait_for_selector("h1:text-is('Audit log')")
        await page.wait_for_selector("#audit tbody tr[data-action]")
        await screenshot(page, "admin-audit-en")
        await page.goto("/admin/connections")
        await page.wait_for_selector("#group-pbx .item")
        await screenshot(page, "admin-connections-en")


async def test_other_roles_are_refused_every_admin_page(http: TestClient, tokens: dict[Role, str]) -> None:
    for path in PAGES:
        for role in (Role.operator, Role.marketer, Role.accountant):
            resp = await http.get(path, headers=bearer(tokens[role]))
            assert resp.status == 403, (path, role)
            assert "Нет доступа" in await resp.text()
        resp = await http.get(path, headers=bearer(tokens[Role.admin]))
        assert resp.status == 200, path
        assert 'src="/static/admin.js"' in await resp.text()


async def test_a_visitor_is_sent_to_log_in(http: TestClient) -> None:
    for path in PAGES:
        resp = await http.get(path, allow_redirects=False)
        assert resp.status == 303
        assert resp.headers["Location"] == f"/login?next={path}"
