"""The `hub` command as an admin uses it: a real process, a real port, real files."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import _create_pg_database, _drop_pg_database

HUB = [sys.executable, "-m", "hub"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({"HUB_DATA_DIR": str(data_dir), **extra})
    return env


def _hub(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(HUB + args, env=env, capture_output=True, text=True, timeout=60, input=stdin)


@pytest.fixture
def running_hub(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], subprocess.Popen[str]]]:
    port = _free_port()
    env = _env(tmp_path / "var", HUB_HTTP_PORT=str(port))
    proc = subprocess.Popen(HUB + ["run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield f"http://127.0.0.1:{port}", env, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


async def _wait_healthy(url: str, proc: subprocess.Popen[str], seconds: float = 90) -> float:
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        while time.monotonic() - started < seconds:
            assert proc.poll() is None, f"hub exited: {proc.stderr.read() if proc.stderr else ''}"
            with contextlib.suppress(aiohttp.ClientConnectionError):  # not listening yet
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return time.monotonic() - started
            await asyncio.sleep(0.2)
    raise AssertionError("no /healthz within 90 s")


async def test_run_then_token_then_client_found_by_both_number_forms(running_hub) -> None:
    url, env, proc = running_hub
    await _wait_healthy(url, proc)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == f"The hub is running at {url}/"
    assert "Log in as 'admin' with password" in proc.stdout.readline()

    made = _hub(["token", "create", "--user", "admin"], env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert made.stdout == token + "\n" and token.startswith("hub_")

    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(
            url + "/api/clients", json={"name": "Ромашка", "phones": [{"number": "8 (495) 123-45-67"}]}
        ) as r:
            assert r.status == 201
            client_id = (await r.json())["id"]
        for number in ("+74951234567", "4951234567"):
            async with http.get(url + "/api/clients", params={"phone": number}) as r:
                assert [c["id"] for c in (await r.json())["items"]] == [client_id]
        async with http.get(url + "/readyz") as r:
            assert r.status == 200 and (await r.json())["checks"] == {"database": "ok", "schema": "ok"}
        async with http.get(url + "/metrics") as r:
            assert 'hub_http_requests_total{method="POST",route="/api/clients",status="201"} 1.0' in await r.text()

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_initial_admin_password_is_kept_private(running_hub) -> None:
    url, env, proc = running_hub
    asyncio.run(_wait_healthy(url, proc))
    path = Path(env["HUB_DATA_DIR"]) / "initial-admin-password"
    assert path.stat().st_mode & 0o777 == 0o600


def test_user_create_and_csv_import_from_the_shell(tmp_path: Path) -> None:
    env = _env(tmp_path / "var")
    made = _hub(["user", "create", "olga", "--role", "operator", "--extension", "102"], env)
    assert made.returncode == 0, made.stderr
    assert "created user olga (operator), extension 102" in made.stdout and "password: " in made.stdout
    clash = _hub(["user", "create", "oleg", "--role", "operator", "--extension", "102"], env)
    assert clash.returncode == 1 and "extension 102 already belongs to olga" in clash.stderr
    assert "olga\toperator\t102" in _hub(["user", "list"], env).stdout

    csv = tmp_path / "clients.csv"
    csv.write_bytes("Наименование;ИНН\nРомашка;7707083893\nБрак;7707083894\n".encode("cp1251"))
    dry = _hub(["import", "clients", str(csv), "--dry-run"], env)
    assert dry.returncode == 1
    assert f"{csv}:3: " in dry.stderr and "INN check digit does not match" in dry.stderr
    good = _hub(["import", "clients", str(csv), "--good-rows"], env)
    assert '"imported": 1' in good.stdout


def test_postgresql_is_never_migrated_behind_the_admins_back(tmp_path: Path) -> None:
    name, url = asyncio.run(_create_pg_database())
    try:
        env = _env(tmp_path / "var", HUB_DATABASE_URL=url)
        refused = _hub(["token", "create", "--user", "admin"], env)
        assert refused.returncode == 2 and "run `hub db upgrade` first" in refused.stderr
        upgraded = _hub(["db", "upgrade"], env)
        assert upgraded.returncode == 0 and "database at revision" in upgraded.stdout
        assert _hub(["user", "create", "root", "--role", "admin", "--password", "long enough"], env).returncode == 0
        assert _hub(["token", "create", "--user", "root"], env).stdout.startswith("hub_")
    finally:
        asyncio.run(_drop_pg_database(name))


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["db", "upgrade"],
        ["user", "create"],
        ["token", "create"],
        ["import", "clients"],
        ["config", "check"],
    ],
)
def test_help_explains_each_command(command: list[str]) -> None:
    out = subprocess.run(HUB + command + ["--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "usage: hub" in out.stdout


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_is_taken_before_or_after_the_command(tmp_path: Path, where: str) -> None:
    database = tmp_path / "elsewhere.db"
    config = tmp_path / "hub.toml"
    config.write_text(f'database_url = "sqlite:///{database}"\n')
    command = ["db", "upgrade"]
    args = ["--config", str(config), *command] if where == "before" else [*command, "--config", str(config)]
    done = _hub(args, _env(tmp_path / "var"))
    assert done.returncode == 0, done.stderr
    assert database.exists() and not (tmp_path / "var" / "hub.db").exists()
