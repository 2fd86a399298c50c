"""Each page shows only what the user's role allows, and the server enforces the same: an
operator who types a campaign's or the admin's address gets a refusal from the server, not
just a shorter menu; and every page of the hub is checked against every role."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from crm_core.models import Role
from tests.browser import VIEWPORT, chromium, logged_in, screenshot
from tests.conftest import PASSWORD

# Every page and who may open it; a page missing here fails the test below, so a new page
# cannot be added without saying who may see it.
PAGES: dict[str, frozenset[Role]] = {
    "/operator": frozenset({Role.operator, Role.admin}),
    "/calls/missed": frozenset({Role.operator, Role.admin}),
    "/clients": frozenset(Role),
    "/clients/new": frozenset({Role.operator, Role.accountant, Role.admin}),
    "/campaigns": frozenset({Role.marketer, Role.admin}),
    "/campaigns/new": frozenset({Role.marketer, Role.admin}),
    "/segments": frozenset({Role.marketer, Role.admin}),
    "/suppressions": frozenset({Role.marketer, Role.admin}),
    "/onec": frozenset({Role.accountant, Role.admin}),
    "/onec/runs": frozenset({Role.accountant, Role.admin}),
    "/onec/conflicts": frozenset({Role.accountant, Role.admin}),
    "/onec/card": frozenset({Role.accountant, Role.admin}),
    "/admin/users": frozenset({Role.admin}),
    "/admin/connections": frozenset({Role.admin}),
    "/admin/audit": frozenset({Role.admin}),
}
NOT_PAGES = ("/login", "/logout", "/language", "/healthz", "/readyz", "/metrics", "/ws", "/")


def _page_paths(http: TestClient) -> set[str]:
    """The app's own page routes without parameters: what a user can type into the address bar."""
    paths = set()
    for resource in http.app.router.resources():
        info = resource.get_info()
        path = info.get("path")
        if not path or path.startswith(("/api/", "/hooks/", "/t/", "/u/", "/static")) or path in NOT_PAGES:
            continue
        if any(route.method == "GET" for route in resource):
            paths.add(path)
    return paths


async def _session(http: TestClient, role: Role) -> dict[str, str]:
    resp = await http.post("/api/auth/login", json={"username": role.value, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    http.session.cookie_jar.clear()  # each request says whose it is
    return {"hub_session": resp.cookies["hub_session"].value}


async def test_every_page_refuses_the_roles_it_is_not_for(http: TestClient, tokens: dict[Role, str]) -> None:
    assert _page_paths(http) <= set(PAGES), f"pages with no stated roles: {_page_paths(http) - set(PAGES)}"
    for role in Role:
        cookies = await _session(http, role)
        for path, allowed in PAGES.items():
            resp = await http.get(path, cookies=cookies, allow_redirects=False)
            expected = 200 if role in allowed else 403
            assert resp.status == expected, f"{role.value} {path}: {resp.status}"
            if role not in allowed:
                assert 'id="forbidden"' in await resp.text()
        menu = await (await http.get("/clients", cookies=cookies)).text()
        for path, allowed in PAGES.items():
            if path.count("/") == 1 or path.startswith("/admin/") or path == "/calls/missed":
                assert (f'href="{path}"' in menu) == (role in allowed), f"{role.value}'s menu and {path}"
    for path in PAGES:
        resp = await http.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == f"/login?next={path}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the same pages on PostgreSQL: once is enough
async def test_an_operator_in_the_browser_is_refused_campaigns_and_admin_by_the_server(
    http: TestClient, tokens: dict[Role, str]
) -> None:
    async with chromium() as browser:
        form = await browser.new_page(viewport=VIEWPORT, base_url=str(http.make_url("")), locale="ru-RU")
        await form.goto("/admin/users")  # not logged in: the login form, which comes back here after
        assert "/login?next=/admin/users" in form.url
        await screenshot(form, "login")
        await form.close()
        page = await logged_in(browser, str(http.make_url("")), Role.operator.value, PASSWORD)
        assert page.url.endswith("/operator")  # where an operator's day starts
        menu = await page.text_content("header nav")
        assert menu is not None and "Рассылки" not in menu and "Пользователи" not in menu
        for path in ("/campaigns", "/campaigns/1", "/segments", "/admin/users", "/admin/connections", "/onec"):
            response = await page.goto(path)
            assert response is not None and response.status == 403, path
            assert "оператор" in (await page.text_content("#forbidden") or "")
        await screenshot(page, "operator-refused-admin")
        answer = await page.evaluate("async () => (await fetch('/api/campaigns')).status")
        assert answer == 403
        answer = await page.evaluate("async () => (await fetch('/api/users')).status")
        assert answer == 403
