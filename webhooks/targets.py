"""Where a webhook may be sent: never, through the hub, to its own network (no SSRF).

A target's host is resolved and every address it resolves to must be public, unless the
configuration allows private ones (a receiver on the LAN).  The check runs when the
subscription is saved and again before each delivery, since DNS can change in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver


class TargetRefused(Exception):
    """The URL is not one the hub will send to; the message says why."""


async def check_target(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("the URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise TargetRefused("credentials in the URL are not accepted; sign with the subscription's secret")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused(f"{parts.hostname} does not resolve: {exc}") from None
    for info in infos:
        _public(parts.hostname, str(info[4][0]))


def _public(host: str, address_text: str) -> None:
    address = ipaddress.ip_address(address_text)
    if not address.is_global or address.is_multicast:
        raise TargetRefused(
            f"{host} is {address}, a private, loopback or reserved address; "
            "allow private targets in the configuration ([webhooks] allow_private) to use it"
        )


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver, refusing private answers at connect time: a name that resolved to a
    public address when the subscription was saved cannot be re-pointed at the hub's network."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            try:
                _public(host, answer["host"])
            except TargetRefused as exc:
                raise OSError(str(exc)) from None
        return answers

    async def close(self) -> None:
        await self._inner.close()
