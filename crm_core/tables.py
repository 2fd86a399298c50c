"""Every table the hub has, in one metadata: what Alembic and the schema test compare against.

Capabilities keep their tables beside their code (``crm_core/mail/models.py``); importing
this module imports them all.
"""

from __future__ import annotations

from crm_core import client_notes, inbound_hooks, leases, models, outbox, subscriptions, sync_requests
from crm_core.campaigns import models as campaign_models
from crm_core.mail import models as mail_models
from crm_core.onec import models as onec_models
from crm_core.telephony import live_notes

metadata = models.Base.metadata

__all__ = [
    "campaign_models",
    "client_notes",
    "inbound_hooks",
    "leases",
    "live_notes",
    "mail_models",
    "metadata",
    "models",
    "onec_models",
    "outbox",
    "subscriptions",
    "sync_requests",
]
