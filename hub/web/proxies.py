"""The client's address behind a reverse proxy: taken from ``X-Forwarded-For`` only when the
request comes from a proxy named in ``trusted_proxies`` (anyone else could write that header).

It matters to the tracking endpoints (Apple's and scanners' networks tell machines' opens from
people's) and to the login limiter (attempts are counted per address).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def forwarded_middleware(trusted: Sequence[Network]) -> Middleware:
    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        chain = ",".join(request.headers.getall("X-Forwarded-For", ()))  # a proxy may add a line of its own
        if chain and request.remote and is_trusted(request.remote):
            client = request.remote
            for hop in reversed([h.strip() for h in chain.split(",") if h.strip()]):
                client = hop  # the nearest address no trusted proxy vouches for is the client's
                if not is_trusted(hop):
                    break
            request = request.clone(remote=client)
        return await handler(request)

    return forwarded
