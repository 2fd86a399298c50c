"""A benchmark's helper process (a peer, a receiver), spoken to over a pipe.

The helper runs in its own process so that it does not take the measured process's CPU.
Commands are tuples; a reply of ``("error", text)`` is raised here.  The helper's first
message says it is ready (with its port, say): ``start()`` returns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


class ChildProcess:
    def __init__(self, target: Callable[[Connection], None], name: str) -> None:
        """``target`` runs in the child with its end of the pipe (a module-level function: spawned)."""
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=target, args=(child,), name=name, daemon=True)
        self._name = name

    async def start(self) -> Any:
        self._process.start()
        return await self.receive(60)

    def send(self, *command: object) -> None:
        self._conn.send(command)

    async def receive(self, timeout: float) -> Any:
        def wait() -> Any:
            if not self._conn.poll(timeout):
                raise TimeoutError(f"{self._name} said nothing within {timeout:g} s")
            return self._conn.recv()

        reply = await asyncio.to_thread(wait)
        if isinstance(reply, tuple) and reply and reply[0] == "error":
            raise RuntimeError(f"{self._name}: {reply[1]}")
        return reply

    async def ask(self, *command: object, timeout: float = 60) -> Any:
        self.send(*command)
        return await self.receive(timeout)

    async def stop(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(Exception):
                await self.ask("stop", timeout=10)
            await asyncio.to_thread(self._process.join, 5)
        if self._process.is_alive():
            self._process.terminate()
            await asyncio.to_thread(self._process.join, 5)
