"""The deploy samples work as written: nginx with deploy/nginx/hub.conf in front of a running hub
(TLS, the operators' WebSocket, a tracking pixel, the API), and the compose file wires two
nodes to one PostgreSQL behind that nginx."""

from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from crm_core.campaigns.models import TrackingHit
from crm_core.campaigns.tokens import Purpose
from crm_core.models import Role
from hub.context import HubContext
from hub.web.app import make_app
from hub.web.tracking import HITS
from tests.conftest import bearer
from tests.hub_process import free_port
from tests.test_tracking_web import _recipient, _token

DEPLOY = Path(__file__).parent.parent / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _nginx_config(tmp: Path, hub_port: int, http_port: int, https_port: int) -> Path:
    """The sample as it is, but for the addresses: the hub's test server, free ports, a
    self-signed certificate, and a prefix of its own."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(tmp / "hub.key"), "-out", str(tmp / "hub.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    site = (DEPLOY / "nginx" / "hub.conf").read_text()
    site = re.sub(r"server hub\d:8080[^;]*;", f"server 127.0.0.1:{hub_port};", site)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = site.replace("/etc/nginx/certs/", f"{tmp}/")
    assert site.count("127.0.0.1:") >= 3, "the sample's upstream or listen lines changed: update this test"
    (tmp / "logs").mkdir()
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"daemon off;\npid {tmp}/nginx.pid;\nerror_log {tmp}/logs/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n client_body_temp_path {tmp}/body;\n proxy_temp_path {tmp}/proxy;\n"
        f" fastcgi_temp_path {tmp}/fcgi;\n uwsgi_temp_path {tmp}/uwsgi;\n scgi_temp_path {tmp}/scgi;\n"
        f"{site}\n}}\n"
    )
    return conf


@pytest.fixture
async def behind_nginx(hub_context: HubContext, tmp_path: Path) -> AsyncIterator[tuple[str, TestServer]]:
    server = TestServer(make_app(hub_context), host="127.0.0.1")
    await server.start_server()
    https_port = free_port()
    conf = _nginx_config(tmp_path, server.port or 0, free_port(), https_port)
    checked = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    nginx = await asyncio.create_subprocess_exec(NGINX, "-p", str(tmp_path), "-c", str(conf))
    try:
        url = f"https://127.0.0.1:{https_port}"
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", https_port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield url, server
    finally:
        nginx.terminate()
        await nginx.wait()
        await server.close()


async def test_nginx_sample_serves_the_api_the_websocket_and_the_pixel_over_tls(
    behind_nginx: tuple[str, TestServer], hub_context: HubContext, tokens: dict[Role, str]
) -> None:
    url, server = behind_nginx
    recipient_id, _ = await _recipient(hub_context)
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE  # the test's self-signed certificate
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure)) as http:
        async with http.get(url + "/healthz") as response:
            assert response.status == 200 and (await response.json())["status"] == "ok"
        async with http.ws_connect(url + "/ws", headers=bearer(tokens[Role.operator])) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "hello"  # the Upgrade went through
        async with http.get(f"{url}/t/o/{_token(hub_context, Purpose.open, recipient_id)}") as response:
            assert response.status == 200 and response.content_type == "image/gif"
    await server.app[HITS].flush()
    async with hub_context.reading() as session:
        assert await session.scalar(select(func.count()).select_from(TrackingHit)) == 1


def test_compose_file_wires_two_nodes_to_one_database_behind_nginx() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "migrate", "hub1", "hub2", "nginx"} <= set(services)
    for node in ("hub1", "hub2"):
        environment = services[node]["environment"]
        assert (
            environment["HUB_DATABASE_URL"].startswith("postgresql+asyncpg://")
            and "@postgres:5432/" in (environment["HUB_DATABASE_URL"])
        )
        assert "HUB_SECRET_KEY" in environment and "HUB_TRUSTED_PROXIES" in environment
        assert services[node]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "hubdata:/var/lib/hub" in services[node]["volumes"]  # one data_dir for both nodes
    assert services["migrate"]["command"] == ["hub", "db", "upgrade"]
    assert "./nginx/hub.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]
    upstream = re.findall(r"server (hub\d):8080", (DEPLOY / "nginx" / "hub.conf").read_text())
    assert upstream == ["hub1", "hub2"]  # the nginx sample names the compose file's nodes
