"""Users log in with argon2-hashed passwords; tokens and sessions are stored only as digests."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.errors import AuthenticationFailed, Conflict, InvalidInput
from crm_core.models import ApiToken, Role, User, WebSession, utcnow
from crm_core.users import NewUser, UserDirectory, hash_password

PASSWORD = "correct horse battery"


async def _operator(
    session: AsyncSession, username: str = "ivanova", password: str | None = None, **kwargs: object
) -> User:
    """A committed operator; with no password unless the test logs in (argon2 is slow on purpose)."""
    spec = NewUser(username=username, role=Role.operator, password=password, **kwargs)  # type: ignore[arg-type]
    user = await UserDirectory(session).create(spec)
    await session.commit()
    return user


def test_password_is_hashed_with_argon2id() -> None:
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$")
    assert PASSWORD not in hashed


def test_password_shorter_than_eight_characters_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput) as refused:
        hash_password("1234567")
    assert refused.value.field == "password"


async def test_new_user_is_stored_with_an_argon2_hash_not_the_password(session: AsyncSession) -> None:
    user = await _operator(session, password=PASSWORD, full_name="Иванова Мария", extension="101")
    stored = await session.scalar(text("SELECT password_hash FROM users WHERE id = :id").bindparams(id=user.id))
    assert stored.startswith("$argon2")
    assert PASSWORD not in stored
    assert (user.username, user.role, user.extension, user.full_name, user.locale, user.is_active) == (
        "ivanova",
        Role.operator,
        "101",
        "Иванова Мария",
        "ru",
        True,
    )


async def test_right_password_logs_the_user_in(session: AsyncSession) -> None:
    user = await _operator(session, password=PASSWORD)
    assert (await UserDirectory(session).authenticate("ivanova", PASSWORD)).id == user.id


async def test_wrong_password_or_unknown_user_fails_alike(session: AsyncSession) -> None:
    await _operator(session, password=PASSWORD)
    users = UserDirectory(session)
    attempts = [("ivanova", "wrong password!"), ("ivanova", PASSWORD.upper()), ("nobody", PASSWORD), ("", "")]
    outcomes = []
    for username, password in attempts:
        try:
            await users.authenticate(username, password)
        except AuthenticationFailed as failure:
            outcomes.append(str(failure))
        else:
            outcomes.append("logged in")
    assert outcomes == ["wrong user name or password"] * len(attempts)


async def test_deactivated_user_cannot_log_in_even_with_the_right_password(session: AsyncSession) -> None:
    users = UserDirectory(session)
    user = await _operator(session, password=PASSWORD)
    await users.update(user, is_active=False)
    await session.commit()
    with pytest.raises(AuthenticationFailed):
        await users.authenticate("ivanova", PASSWORD)


async def test_user_without_a_password_cannot_log_in(session: AsyncSession) -> None:
    users = UserDirectory(session)
    await users.create(NewUser(username="pbx-bot", role=Role.operator))
    await session.commit()
    with pytest.raises(AuthenticationFailed):
        await users.authenticate("pbx-bot", "")


async def test_new_user_with_a_short_password_is_refused(session: AsyncSession) -> None:
    with pytest.raises(InvalidInput):
        await UserDirectory(session).create(NewUser(username="petrov", role=Role.operator, password="short"))


async def test_second_user_with_the_same_name_is_a_conflict(session: AsyncSession) -> None:
    await _operator(session)
    with pytest.raises(Conflict, match="ivanova"):
        await UserDirectory(session).create(NewUser(username="ivanova", role=Role.admin, password=PASSWORD))


async def test_extension_belongs_to_one_user_only(session: AsyncSession) -> None:
    users = UserDirectory(session)
    ivanova = await _operator(session, extension="101")
    petrov = await _operator(session, "petrov", extension="102")
    with pytest.raises(Conflict, match="extension 101 already belongs to ivanova"):
        await users.create(NewUser(username="sidorov", role=Role.operator, extension="101"))
    with pytest.raises(Conflict, match="extension 101 already belongs to ivanova"):
        await users.update(petrov, extension="101")
    await users.update(ivanova, extension="101")  # keeping one's own extension is fine
    await users.update(petrov, extension="")  # giving it up frees it
    await users.update(ivanova, extension="102")
    await session.commit()
    assert (ivanova.extension, petrov.extension) == ("102", None)


async def test_users_without_an_extension_do_not_clash(session: AsyncSession) -> None:
    await _operator(session, "a-user", extension="")
    await _operator(session, "b-user")
    assert [(u.username, u.extension) for u in await UserDirectory(session).list()] == [
        ("a-user", None),
        ("b-user", None),
    ]


async def test_api_token_identifies_its_user_and_only_its_digest_is_stored(session: AsyncSession) -> None:
    users = UserDirectory(session)
    user = await _operator(session)
    token = await users.create_token(user, name="1C exchange")
    await session.commit()

    assert token.startswith("hub_")
    assert (await users.user_for_token(token)).id == user.id  # type: ignore[union-attr]
    rows = (await session.execute(text("SELECT * FROM api_tokens"))).all()
    assert len(rows) == 1
    assert all(token not in str(value) for value in rows[0])
    stored = await session.scalar(select(ApiToken))
    assert stored is not None
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert stored.name == "1C exchange"
    assert stored.last_used_at is not None


async def test_unknown_token_finds_nobody(session: AsyncSession) -> None:
    users = UserDirectory(session)
    user = await _operator(session)
    token = await users.create_token(user)
    assert await users.user_for_token(token + "x") is None
    assert await users.user_for_token("") is None


async def test_revoked_token_no_longer_works(session: AsyncSession) -> None:
    users = UserDirectory(session)
    user = await _operator(session)
    token = await users.create_token(user)
    other = await users.create_token(user)
    await users.revoke_token(token)
    await session.commit()
    assert await users.user_for_token(token) is None
    assert (await users.user_for_token(other)).id == user.id  # type: ignore[union-attr]


async def test_token_of_a_deactivated_user_no_longer_works(session: AsyncSession) -> None:
    users = UserDirectory(session)
    user = await _operator(session)
    token = await users.create_token(user)
    await users.update(user, is_active=False)
    await session.commit()
    assert await users.user_for_token(token) is None


async def test_browser_session_lasts_until_it_is_ended(session: AsyncSession) -> None:
    users = UserDirectory(session)
    user = await _operator(session)
    cookie = await users.start_session(user, ip="10.0.0.5", lifetime=timedelta(hours=8))
    await session.commit()

    assert (await users.user_for_session(cookie)).id == user.id  # type: ignore[union-attr]
    stored = await session.scalar(select(WebSession))
    assert stored is not None
    assert stored.token_hash == hashlib.sha256(cookie.encode()).hexdigest()
    assert stored.ip == "10.0.0.5"
    assert stored.expires_at - stored.created_at == timedelta(hours=8)

    await users.end_session(cookie)
    await session.commit()
    assert await users.user_for_session(cookie) is None


async def test_expired_session_finds_nobody(session: AsyncSession) -> None:
    users = UserDirectory(session)
    user = await _operator(session)
    cookie = await users.start_session(user, ip=None, lifetime=timedelta(hours=8))
    await session.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    await session.commit()
    assert await users.user_for_session(cookie) is None


async def test_changing_the_password_ends_every_session_of_that_user_only(session: AsyncSession) -> None:
    users = UserDirectory(session)
    ivanova = await _operator(session, password=PASSWORD)
    petrov = await _operator(session, "petrov")
    laptop = await users.start_session(ivanova, ip=None, lifetime=timedelta(hours=8))
    phone = await users.start_session(ivanova, ip=None, lifetime=timedelta(hours=8))
    theirs = await users.start_session(petrov, ip=None, lifetime=timedelta(hours=8))
    await session.commit()

    await users.update(ivanova, password="a brand new secret")
    await session.commit()

    assert await users.user_for_session(laptop) is None
    assert await users.user_for_session(phone) is None
    assert (await users.user_for_session(theirs)).id == petrov.id  # type: ignore[union-attr]
    assert (await users.authenticate("ivanova", "a brand new secret")).id == ivanova.id
    with pytest.raises(AuthenticationFailed):
        await users.authenticate("ivanova", PASSWORD)
