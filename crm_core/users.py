"""Users, their passwords (argon2), API tokens and browser sessions.

Secrets are never stored: passwords as argon2 hashes, tokens and session cookies
as SHA-256 digests of random values, so a copy of the database opens nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from crm_core.models import ApiToken, Role, User, WebSession, utcnow

TOKEN_PREFIX = "hub_"
_hasher = PasswordHasher()
# Verified against when the user name is unknown, so timing does not reveal which names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 8
# "Leave the extension as it is", as opposed to None, which clears it.
_UNCHANGED: Any = object()


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters", field="password")
    return _hasher.hash(password)


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    role: Role
    password: str | None = None
    extension: str | None = None
    full_name: str = ""
    locale: str = "ru"


class UserDirectory:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(User)) or 0)

    async def get(self, user_id: int) -> User:
        user = await self.session.get(User, user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    async def by_username(self, username: str) -> User:
        user = await self.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound(f"user {username!r} not found")
        return user

    async def list(self) -> list[User]:
        return list((await self.session.scalars(select(User).order_by(User.username))).all())

    async def create(self, spec: NewUser) -> User:
        if not spec.username or len(spec.username) > 64:
            raise InvalidInput("a user name is 1 to 64 characters", field="username")
        if await self.session.scalar(select(User.id).where(User.username == spec.username)):
            raise Conflict(f"user {spec.username!r} already exists")
        await self._check_extension(spec.extension, None)
        user = User(
            username=spec.username,
            role=spec.role,
            password_hash=hash_password(spec.password) if spec.password else None,
            extension=spec.extension or None,
            full_name=spec.full_name,
            locale=spec.locale,
            is_active=True,
            created_at=utcnow(),
        )
        self.session.add(user)
        await self.session.flush()
        return user

    async def update(
        self,
        user: User,
        *,
        role: Role | None = None,
        password: str | None = None,
        extension: str | None = _UNCHANGED,
        full_name: str | None = None,
        locale: str | None = None,
        is_active: bool | None = None,
    ) -> User:
        if role is not None:
            user.role = role
        if password is not None:
            user.password_hash = hash_password(password)
            await self.end_all_sessions(user)
        if extension is not _UNCHANGED:
            await self._check_extension(extension, user.id)
            user.extension = extension or None
        if full_name is not None:
            user.full_name = full_name
        if locale is not None:
            user.locale = locale
        if is_active is not None:
            user.is_active = is_active
            if not is_active:
                await self.end_all_sessions(user)
        await self.session.flush()
        return user

    async def _check_extension(self, extension: str | None, user_id: int | None) -> None:
        if not extension:
            return
        holder = await self.session.scalar(select(User).where(User.extension == extension))
        if holder is not None and holder.id != user_id:
            raise Conflict(f"extension {extension} already belongs to {holder.username}")

    # -- passwords ---------------------------------------------------------------

    async def authenticate(self, username: str, password: str) -> User:
        user = await self.session.scalar(select(User).where(User.username == username))
        stored = user.password_hash if user and user.is_active and user.password_hash else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            raise AuthenticationFailed("wrong user name or password") from None
        if user is None or stored is _DUMMY_HASH:
            raise AuthenticationFailed("wrong user name or password")
        if _hasher.check_needs_rehash(stored):
            user.password_hash = _hasher.hash(password)
        return user

    # -- API tokens --------------------------------------------------------------

    async def create_token(self, user: User, name: str = "") -> str:
        """Return the token once; only its digest is kept."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.session.add(ApiToken(user_id=user.id, token_hash=digest(token), name=name, created_at=utcnow()))
        await self.session.flush()
        return token

    async def user_for_token(self, token: str) -> User | None:
        row = (
            await self.session.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == digest(token), ApiToken.revoked_at.is_(None))
            )
        ).first()
        if row is None or not row.User.is_active:
            return None
        row.ApiToken.last_used_at = utcnow()
        return row.User

    async def revoke_token(self, token: str) -> None:
        found = await self.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
        if found is not None:
            found.revoked_at = utcnow()

    # -- browser sessions --------------------------------------------------------

    async def start_session(self, user: User, ip: str | None, lifetime: timedelta) -> str:
        token = secrets.token_urlsafe(32)
        now = utcnow()
        self.session.add(
            WebSession(token_hash=digest(token), user_id=user.id, created_at=now, expires_at=now + lifetime, ip=ip)
        )
        await self.session.flush()
        return token

    async def user_for_session(self, token: str) -> User | None:
        row = (
            await self.session.execute(
                select(User)
                .join(WebSession, WebSession.user_id == User.id)
                .where(WebSession.token_hash == digest(token), WebSession.expires_at > utcnow())
            )
        ).scalar()
        return row if row is not None and row.is_active else None

    async def end_session(self, token: str) -> None:
        await self.session.execute(delete(WebSession).where(WebSession.token_hash == digest(token)))

    async def end_all_sessions(self, user: User) -> None:
        await self.session.execute(delete(WebSession).where(WebSession.user_id == user.id))
