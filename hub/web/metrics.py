"""Prometheus figures for the HTTP side; each capability adds its own to the same registry."""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

import hub
from crm_core.campaigns.send_queue import Result
from crm_core.figures import WAITING, Figures, read_figures
from crm_core.models import utcnow
from hub.campaign_sender import CampaignSender
from hub.context import HubContext
from hub.hit_log import HitLog
from hub.leases import LeaseKeeper
from hub.mail import Mail
from hub.screen_pop import PopHub
from hub.telephony import Telephony
from hub.web.endpoints import PUBLIC, Api, ApiError
from hub.web.state import CONTEXT

log = logging.getLogger("hub.metrics")


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hub_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "hub_http_request_duration_seconds", "Time to answer", ["route"], registry=self.registry
        )
        self.login_failures = Counter("hub_login_failures", "Failed logins", registry=self.registry)
        info = Gauge("hub_build_info", "Version of the running hub", ["version"], registry=self.registry)
        info.labels(version=hub.__version__).set(1)
        # The labelled children, kept: looking them up is most of the cost on a tracking pixel.
        self._answered: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def answered(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._answered.get((method, route, status))
        if children is None:
            children = self.requests.labels(method, route, str(status)), self.latency.labels(route)
            self._answered[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)


class TelephonyCollector:
    """Read at scrape time from the live telephony service, so nothing is counted twice."""

    def __init__(self, telephony: Telephony, pops: PopHub) -> None:
        self.telephony = telephony
        self.pops = pops

    def collect(self) -> Iterator[Metric]:
        connected = GaugeMetricFamily("hub_ami_connected", "1 while the AMI session is logged in", labels=["pbx"])
        for pbx, up in self.telephony.connected().items():
            connected.add_metric([pbx], 1.0 if up else 0.0)
        yield connected
        yield CounterMetricFamily("hub_ami_events", "AMI events handled", value=self.telephony.events_seen)
        yield CounterMetricFamily("hub_screen_pops", "Screen-pops pushed to operators", value=self.pops.sent)
        yield GaugeMetricFamily(
            "hub_calls_in_progress", "Calls being followed", value=self.telephony.calls_in_progress()
        )
        logged = CounterMetricFamily("hub_calls_logged", "Calls written to the log", labels=["status"])
        for status, count in sorted(self.telephony.calls_logged.items()):
            logged.add_metric([status], count)
        yield logged


class TrackingCollector:
    """Opens and clicks: stored, waiting to be stored, and dropped while the database was away."""

    def __init__(self, hits: HitLog) -> None:
        self.hits = hits

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("hub_tracking_hits_recorded", "Opens and clicks stored", value=self.hits.recorded)
        yield GaugeMetricFamily(
            "hub_tracking_hits_waiting", "Opens and clicks answered, not stored yet", value=self.hits.waiting
        )
        yield CounterMetricFamily(
            "hub_tracking_hits_dropped", "Opens and clicks dropped: too many waiting", value=self.hits.dropped
        )


class DatabaseCollector:
    """What only the database knows (``crm_core.figures``), read before each scrape."""

    def __init__(self, context: HubContext) -> None:
        self.context = context
        self.figures = Figures()
        self.up = False

    async def refresh(self) -> None:
        try:
            async with self.context.reading() as session:
                self.figures = await read_figures(session)
            self.up = True
        except Exception:
            log.exception("the figures of /metrics could not be read from the database")
            self.up = False

    def collect(self) -> Iterator[Metric]:
        figures = self.figures
        yield GaugeMetricFamily("hub_database_up", "1 when the last scrape could read the database",
                                value=1.0 if self.up else 0.0)  # fmt: skip
        waiting = GaugeMetricFamily(
            "hub_campaign_recipients", "Recipients of unfinished campaigns not sent yet", labels=["status"]
        )
        for status in WAITING:
            waiting.add_metric([status.value], figures.recipients.get(status.value, 0))
        yield waiting
        yield GaugeMetricFamily("hub_webhook_deliveries_pending", "Webhook deliveries waiting to be made",
                                value=figures.deliveries_pending)  # fmt: skip
        yield GaugeMetricFamily("hub_outbox_events_waiting", "Events not yet given to their webhook subscriptions",
                                value=figures.events_not_fanned_out)  # fmt: skip
        age = GaugeMetricFamily(
            "hub_onec_sync_age_seconds", "Since the last successful sync of each 1C connection", labels=["connection"]
        )
        now = utcnow()
        for connection in self.context.settings.onec:
            done = figures.last_good_sync.get(connection.name)
            age.add_metric([connection.name], (now - done).total_seconds() if done else math.inf)
        yield age


class NodeCollector:
    """What this node is doing: the jobs it holds, the mail it sends, the folders it reads."""

    def __init__(self, leases: LeaseKeeper | None, campaigns: CampaignSender | None, mail: Mail | None) -> None:
        self.leases = leases
        self.campaigns = campaigns
        self.mail = mail

    def collect(self) -> Iterator[Metric]:
        if self.leases is not None:
            held = GaugeMetricFamily("hub_lease_held", "1 while this node holds the job's lease", labels=["lease"])
            for name in self.leases.jobs:
                held.add_metric([name], 1.0 if self.leases.holds(name) else 0.0)
            yield held
        if self.campaigns is not None:
            sent = CounterMetricFamily("hub_campaign_messages", "SMTP answers to campaign messages", labels=["result"])
            for result in Result:
                sent.add_metric([result.value], self.campaigns.outcomes.get(result.value, 0))
            yield sent
        if self.mail is not None:
            connected = GaugeMetricFamily("hub_imap_folder_connected", "1 while the folder is followed",
                                          labels=["mailbox", "folder"])  # fmt: skip
            lag = GaugeMetricFamily("hub_imap_seconds_since_check", "Since the folder was last looked at for new mail",
                                    labels=["mailbox", "folder"])  # fmt: skip
            now = utcnow()
            for mailbox in self.mail.statuses():
                for folder in mailbox.folders.values():
                    connected.add_metric([mailbox.name, folder.folder], 1.0 if folder.connected else 0.0)
                    checked = folder.last_checked_at
                    seconds = (now - checked).total_seconds() if checked else math.inf
                    lag.add_metric([mailbox.name, folder.folder], seconds)
            yield connected
            yield lag


METRICS = web.AppKey("metrics", HttpMetrics)
DATABASE_FIGURES = web.AppKey("database_figures", DatabaseCollector)


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    metrics = request.app[METRICS]
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.answered(request.method, route, status, time.perf_counter() - started)


api = Api()


@api.route(
    "GET",
    "/metrics",
    summary="Prometheus figures (a bearer token when metrics_token is set)",
    roles=PUBLIC,
    tag="system",
    response_media_type="text/plain",
    errors=(401,),
)
async def serve_metrics(request: web.Request) -> web.Response:
    """Open by default, as exporters are; with ``metrics_token`` set, that token is required."""
    token = request.app[CONTEXT].settings.metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise ApiError(401, "unauthenticated", "metrics need the configured bearer token")
    await request.app[DATABASE_FIGURES].refresh()
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
