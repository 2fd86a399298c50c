"""An HTTP client for 1C's standard OData interface: addressing, auth, errors and retries.

What is peculiar to 1C (see ``shared/onec/ODATA-NOTES.md``): Cyrillic entity sets and logins,
keys written ``(guid'...')``, errors as ``odata.error`` with a Russian message, no next-page
links, and a web server in front that answers its own timeouts with 502-504 and HTML.  Only
requests that are safe to repeat (GET, PATCH with the same values) are retried; a POST whose
answer was lost raises ``OnecUnavailable`` and the caller looks before trying again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from connectors.backoff import Backoff
from connectors.onec.errors import OdataError, OnecLoginRejected, OnecNotPublished, OnecUnavailable
from connectors.onec.settings import OnecConnection

log = logging.getLogger("hub.onec")
_QUERY_SAFE = "$,'()/:"  # kept readable in a query; spaces become %20, never "+"
_GATEWAY_FAILURES = frozenset({502, 503, 504})


class _Retry(Exception):
    """A failure worth another attempt of an idempotent request; ``then`` is raised when none is left."""

    def __init__(self, then: Exception) -> None:
        super().__init__(str(then))
        self.then = then


def guid(key: str) -> str:
    return f"guid'{key}'"


def string(value: str) -> str:
    """An OData string literal: single quotes, a quote inside doubled."""
    return "'" + value.replace("'", "''") + "'"


def any_of(name: str, keys: list[str]) -> str:
    """OData v3 has no ``in``: an ``or`` chain of equalities."""
    return " or ".join(f"{name} eq {guid(k)}" for k in keys)


class OdataClient:
    def __init__(
        self,
        connection: OnecConnection,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.connection = connection
        self._root = connection.service_url
        # UTF-8: 1C's web server reads Cyrillic logins so (the old default, latin-1, cannot encode them)
        self._auth = aiohttp.encode_basic_auth(connection.user, connection.password, encoding="utf-8")
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=connection.timeout)
        self._session: aiohttp.ClientSession | None = None
        self._gate = asyncio.Semaphore(connection.concurrency)
        self._sleep = sleep

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- reading -------------------------------------------------------------------------

    async def metadata(self) -> str:
        """The EDMX document: which sets are published and what properties they have."""
        text = await self._call("GET", "$metadata", {}, None, raw=True)
        assert isinstance(text, str)
        return text

    async def entries(
        self,
        entity_set: str,
        *,
        select: list[str] | None = None,
        filter: str | None = None,
        orderby: str | None = None,
        top: int | None = None,
        skip: int | None = None,
    ) -> list[dict[str, Any]]:
        params: dict[str, str] = {}
        if filter:
            params["$filter"] = filter
        if select:
            params["$select"] = ",".join(select)
        if orderby:
            params["$orderby"] = orderby
        if top is not None:
            params["$top"] = str(top)
        if skip:
            params["$skip"] = str(skip)
        body = await self._call("GET", _segment(entity_set), params, None, entity_set=entity_set)
        return list(body.get("value", []))

    async def count(self, entity_set: str, filter: str | None = None) -> int:
        params = {"$filter": filter} if filter else {}
        text = await self._call("GET", _segment(entity_set) + "/$count", params, None, entity_set=entity_set, raw=True)
        try:
            return int(str(text).strip().lstrip("\ufeff"))
        except ValueError:
            raise OdataError(f"1C answered {entity_set}/$count with {str(text)[:80]!r}", status=200) from None

    async def get(self, entity_set: str, key: str, select: list[str] | None = None) -> dict[str, Any] | None:
        """One item, or None when there is no item with that key."""
        params = {"$select": ",".join(select)} if select else {}
        try:
            body = await self._call("GET", _entry(entity_set, key), params, None)
        except OdataError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(body)

    # -- writing -------------------------------------------------------------------------

    async def post(self, entity_set: str, values: dict[str, Any]) -> dict[str, Any]:
        """Create an item (201).  Not repeated on a lost answer: 1C may have committed it."""
        return dict(await self._call("POST", _segment(entity_set), {}, values, entity_set=entity_set, retry=False))

    async def patch(self, entity_set: str, key: str, values: dict[str, Any]) -> dict[str, Any]:
        """Change these properties; a tabular part given here replaces the whole part."""
        return dict(await self._call("PATCH", _entry(entity_set, key), {}, values))

    # -- the request, its errors and its retries -------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        body: dict[str, Any] | None,
        *,
        entity_set: str | None = None,
        raw: bool = False,
        retry: bool = True,
    ) -> Any:
        if not raw:  # $metadata is XML and $count plain text whatever is asked
            params = {**params, "$format": "json"}
        query = "&".join(f"{k}={quote(v, safe=_QUERY_SAFE)}" for k, v in params.items())
        url = URL(self._root + path + ("?" + query if query else ""), encoded=True)
        backoff = Backoff(0.5, 8.0)
        attempts = 1 + (self.connection.retries if retry else 0)
        for attempt in range(1, attempts + 1):
            try:
                return await self._once(method, url, body, entity_set, raw)
            except _Retry as exc:
                if attempt == attempts:
                    raise exc.then from None
                delay = backoff.next_delay()
                log.warning(
                    "1C request failed; retrying",
                    extra={"fields": {"connection": self.connection.name, "method": method, "error": str(exc),
                                      "attempt": attempt, "delay": round(delay, 2)}},
                )  # fmt: skip
                await self._sleep(delay)
        raise AssertionError("unreachable")

    async def _once(self, method: str, url: URL, body: dict[str, Any] | None, entity_set: str | None, raw: bool) -> Any:
        session = self._session_now()
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json;charset=utf-8"
        async with self._gate:
            try:
                async with session.request(method, url, data=data, headers=headers) as response:
                    payload = await response.read()
                    status = response.status
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
                raise _Retry(self._unavailable(_connection_failure(exc))) from None
        if status in (200, 201):
            text = payload.decode("utf-8-sig", errors="replace")
            if raw:
                return text
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise OdataError(f"1C answered {status} with a body that is not JSON", status=status) from None
        return self._failure(status, payload, entity_set)

    def _failure(self, status: int, payload: bytes, entity_set: str | None) -> Any:
        if status == 401:
            raise OnecLoginRejected(
                f"1C ({self.connection.name}) refused the login {self.connection.user!r}: check the user, the "
                "password, and that the user has the right to use the standard OData interface"
            )
        code, message = _odata_error(payload)
        if status in _GATEWAY_FAILURES:
            raise _Retry(self._unavailable(message or f"the web server in front of 1C answered {status}"))
        if status == 404 and entity_set is not None:
            raise OnecNotPublished(entity_set)
        refused = OdataError(message or f"1C answered {status}", status=status, code=code)
        if status == 500 and code == "-1":  # "internal error": often passing, sometimes this item's data
            raise _Retry(refused)
        raise refused

    def _unavailable(self, why: str) -> OnecUnavailable:
        return OnecUnavailable(f"1C ({self.connection.name}, {self.connection.url}): {why}")

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"Authorization": self._auth}, timeout=self._timeout)
        return self._session


def _segment(entity_set: str) -> str:
    return quote(entity_set, safe="")


def _entry(entity_set: str, key: str) -> str:
    return f"{_segment(entity_set)}({quote(guid(key), safe=_QUERY_SAFE)})"


def _odata_error(payload: bytes) -> tuple[str, str]:
    """1C's code and message from an ``odata.error`` body; ("", "") for HTML or nothing."""
    try:
        error = json.loads(payload.decode("utf-8-sig"))["odata.error"]
        message = error.get("message")
        text = message.get("value", "") if isinstance(message, dict) else str(message or "")
        return str(error.get("code", "")), text
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", ""


def _connection_failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    detail = f": {exc}" if str(exc) else ""
    return f"connection failed ({type(exc).__name__}{detail})"
