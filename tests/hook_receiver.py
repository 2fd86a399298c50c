"""A webhook target that answers 204 to anything at /hook: what the connection checks call."""

from __future__ import annotations

from aiohttp import web


class HookReceiver:
    def __init__(self, runner: web.AppRunner) -> None:
        self.runner = runner
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"

    @classmethod
    async def start(cls) -> HookReceiver:
        app = web.Application()

        async def hook(_: web.Request) -> web.Response:
            return web.Response(status=204)

        app.router.add_route("*", "/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return cls(runner)

    async def close(self) -> None:
        await self.runner.cleanup()
