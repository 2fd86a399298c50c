"""Logging in: bearer tokens for integrations, session cookies for pages, limits on guessing."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from crm_core.models import Role
from hub.web.auth import SESSION_COOKIE
from tests.conftest import PASSWORD, bearer


async def test_unknown_or_missing_token_is_401(http: TestClient, tokens: dict) -> None:
    assert (await http.get("/api/clients")).status == 401
    resp = await http.get("/api/clients", headers=bearer("hub_forged"))
    assert resp.status == 401
    assert (await resp.json())["error"] == "bad_token"


async def test_login_sets_a_session_cookie_that_works_until_logout(http: TestClient, tokens: dict) -> None:
    resp = await http.post("/api/auth/login", json={"username": "operator", "password": PASSWORD})
    assert resp.status == 200
    assert (await resp.json())["role"] == "operator"
    cookie = resp.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    me = await http.get("/api/me")
    assert me.status == 200 and (await me.json())["username"] == "operator"
    assert (await http.get("/api/users")).status == 403  # an operator is not an admin
    assert (await http.post("/api/auth/logout")).status == 204
    http.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie.value})
    assert (await http.get("/api/me")).status == 401


async def test_forged_session_cookie_is_ignored(http: TestClient, tokens: dict) -> None:
    http.session.cookie_jar.update_cookies({SESSION_COOKIE: "abc.def"})
    assert (await http.get("/api/me")).status == 401


async def test_cookie_session_refuses_cross_site_writes(http: TestClient, tokens: dict) -> None:
    await http.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
    resp = await http.post("/api/clients", json={"name": "X"}, headers={"Origin": "https://evil.example"})
    assert resp.status == 403
    same = await http.post("/api/clients", json={"name": "X"}, headers={"Origin": f"http://{http.host}:{http.port}"})
    assert same.status == 201


async def test_wrong_password_is_401_and_repeated_failures_are_limited(http: TestClient, tokens: dict) -> None:
    for _ in range(5):
        resp = await http.post("/api/auth/login", json={"username": "admin", "password": "wrong password"})
        assert resp.status == 401
    resp = await http.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 0
    audit = await (
        await http.get("/api/audit", params={"action": "login_failed"}, headers=bearer(tokens[Role.admin]))
    ).json()
    assert audit["total"] == 5


async def test_login_page_then_home_page(http: TestClient, tokens: dict) -> None:
    resp = await http.get("/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login?next=/"
    resp = await http.post("/login", data={"username": "operator", "password": "nope", "next": "/"})
    assert resp.status == 401 and "Неверное имя пользователя или пароль" in await resp.text()
    resp = await http.post(
        "/login", data={"username": "operator", "password": PASSWORD, "next": "//evil.example/"}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/"  # never an open redirect
    for target in ("/\t/evil.example/", "/\n/evil.example", "https://evil.example/", "/\\evil.example"):
        resp = await http.post(
            "/login", data={"username": "operator", "password": PASSWORD, "next": target}, allow_redirects=False
        )
        assert resp.status == 303 and resp.headers["Location"] == "/", target  # a browser drops \t: //evil
    home = await http.get("/")
    assert home.status == 200 and "оператор" in await home.text()


async def test_admin_manages_users_and_passwords_are_never_shown(http: TestClient, tokens: dict) -> None:
    admin = bearer(tokens[Role.admin])
    resp = await http.post(
        "/api/users",
        json={"username": "olga", "role": "operator", "password": "s3cret-pass", "extension": "102"},
        headers=admin,
    )
    assert resp.status == 201
    user = await resp.json()
    assert "password" not in user and "password_hash" not in user
    clash = await http.post(
        "/api/users", json={"username": "oleg", "role": "operator", "extension": "102"}, headers=admin
    )
    assert clash.status == 409
    resp = await http.patch(f"/api/users/{user['id']}", json={"role": "marketer"}, headers=admin)
    assert (await resp.json())["role"] == "marketer"
    login = await http.post("/api/auth/login", json={"username": "olga", "password": "s3cret-pass"})
    assert login.status == 200
    resp = await http.delete(f"/api/users/{user['id']}", headers=admin)
    assert (await resp.json())["is_active"] is False
    assert (await http.get("/api/me")).status == 401  # deactivation ends the sessions


async def test_an_admin_cannot_lock_themselves_out(http: TestClient, tokens: dict) -> None:
    admin = bearer(tokens[Role.admin])
    me = (await (await http.get("/api/me", headers=admin)).json())["id"]
    for change in ({"role": "operator"}, {"is_active": False}):
        resp = await http.patch(f"/api/users/{me}", json=change, headers=admin)
        assert resp.status == 422 and (await resp.json())["details"][0]["field"] == "role", change
    assert (await http.delete(f"/api/users/{me}", headers=admin)).status == 422
    assert (await http.patch(f"/api/users/{me}", json={"full_name": "Главный"}, headers=admin)).status == 200
    other = (await (await http.get("/api/users", headers=admin)).json())["items"]
    operator = next(u["id"] for u in other if u["role"] == "operator")
    assert (await http.patch(f"/api/users/{operator}", json={"is_active": False}, headers=admin)).status == 200
