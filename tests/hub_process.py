"""A real `hub run` as a child process, for the tests that kill it with `kill -9`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

HUB = [sys.executable, "-m", "hub"]
WAIT = 30.0  # the longest any one step may take


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, data_dir: Path, database_url: str, port: int, sections: str) -> Path:
    """A settings file for one test's hub: its own data dir, database and port, then ``sections``."""
    path.write_text(f'data_dir = "{data_dir}"\ndatabase_url = "{database_url}"\nhttp_port = {port}\n{sections}')
    return path


class Hub:
    """`hub run --config FILE` as a child process, started again after each kill."""

    def __init__(self, config: Path, port: int, logs: Path) -> None:
        self.config = config
        self.url = f"http://127.0.0.1:{port}"
        self.logs = logs
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def cli(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            *HUB, *args, "--config", str(self.config), env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), WAIT)
        assert proc.returncode == 0, f"hub {' '.join(args)}: {err.decode()}"
        return out.decode()

    async def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.starts += 1
        with open(self.logs / f"hub-{self.starts}.log", "wb") as log:
            self.proc = subprocess.Popen(
                HUB + ["run", "--config", str(self.config)], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"hub exited with {self.proc.returncode}:\n{self.log()}"
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"no /healthz within {WAIT} s:\n{self.log()}")

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "the hub died before it was killed"
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL

    def stop(self) -> None:
        """Whatever state it is in: TERM, then KILL if it does not go."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return "".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(self.logs.glob("*.log"))
        )
