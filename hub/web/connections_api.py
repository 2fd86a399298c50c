"""/api/connections: what the hub is wired to (PBXes, mailboxes, SMTP, 1C, webhooks), and a test of each."""

from __future__ import annotations

from hub.web.endpoints import Api

api = Api()
