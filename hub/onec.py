"""The hub's 1C connections: scheduled and on-demand syncs, queued one-card syncs, cached documents.

Each ``[[onec]]`` gets a scheduler task that syncs every ``interval_minutes`` (backing off
while 1C is unreachable) and a watcher for one-card sync requests (from the API or an incoming
webhook).  A card's 1C documents are cached for a short time: a ringing phone reads only the
cache, and a miss starts a refresh in the background rather than making the pop wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from tqdm import tqdm

from connectors.backoff import Backoff
from connectors.onec.client import OdataClient
from connectors.onec.counterparties import OnecCounterparties
from connectors.onec.documents import Document, DocumentReader
from connectors.onec.field_maps import field_map
from connectors.onec.settings import OnecConnection
from crm_core.models import utcnow
from crm_core.onec.engine import ProgressFn, RunReport, SyncEngine, SyncOptions
from crm_core.onec.journal import SyncBusy
from crm_core.onec.models import LinkState, OnecLink, OnecRun
from crm_core.onec.port import PeerError
from crm_core.sync_requests import SyncRequest
from crm_core.timeline_items import TimelineItem
from hub.config import OnecSettings
from hub.context import HubContext

log = logging.getLogger("hub.onec")
REQUEST_POLL_SECONDS = 2.0
REQUESTS_PER_RUN = 50


def connection_of(settings: OnecSettings) -> OnecConnection:
    return OnecConnection(
        name=settings.name,
        url=settings.url,
        user=settings.user,
        password=settings.password.get_secret_value(),
        timeout=settings.timeout_seconds,
        retries=settings.retries,
        concurrency=settings.concurrency,
        page_size=settings.page_size,
    )


def options_of(settings: OnecSettings, region: str) -> SyncOptions:
    return SyncOptions(
        connection=settings.name,
        region=region,
        rules=dict(settings.rules),
        create_in_onec=settings.create_in_onec,
        create_in_hub=settings.create_in_hub,
    )


@dataclass
class _Cached:
    expires: float
    documents: list[Document]


class OnecSync:
    def __init__(self, context: HubContext) -> None:
        self.context = context
        self.settings = {s.name: s for s in context.settings.onec}
        self._tasks: list[asyncio.Task[None]] = []
        self._runs: set[asyncio.Task[Any]] = set()
        self._cache: dict[tuple[str, int], _Cached] = {}
        self._refreshing: dict[tuple[str, int], asyncio.Task[list[Document]]] = {}
        self._readers: dict[str, DocumentReader] = {}

    # -- running syncs ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def engine(self, name: str, progress: ProgressFn | None = None) -> AsyncIterator[SyncEngine]:
        settings = self.settings[name]
        client = OdataClient(connection_of(settings))
        port = OnecCounterparties(
            client,
            field_map(settings.kind, settings.field_map),
            region=self.context.settings.default_region,
            folder=settings.folder,
        )
        try:
            yield SyncEngine(
                self.context.sessions,
                port,
                options_of(settings, self.context.settings.default_region),
                progress=progress,
            )
        finally:
            await client.close()

    async def run(self, name: str, trigger: str, progress: ProgressFn | None = None) -> RunReport:
        async with self.engine(name, progress) as engine:
            report = await engine.run(trigger)
        self._forget_documents(name)
        return report

    async def start_run(self, name: str, trigger: str) -> int:
        """Start a sync in the background and return its run's id; SyncBusy if one is running."""
        started: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def work() -> None:
            async with self.engine(name) as engine:
                await engine.run(trigger, started=started.set_result)

        task = asyncio.create_task(work(), name=f"onec:{name}:{trigger}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        task.add_done_callback(lambda t: _pass_failure(t, started))
        return await started

    async def start(self) -> None:
        for name, settings in self.settings.items():
            if settings.interval_minutes > 0:
                self._tasks.append(asyncio.create_task(self._schedule(name), name=f"onec:{name}:schedule"))
        if self.settings:
            self._tasks.append(asyncio.create_task(self._watch_requests(), name="onec:requests"))

    async def stop(self) -> None:
        """Stop the scheduled syncs and the requests' watcher (another node may run them now)."""
        tasks = [*self._tasks, *self._runs]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def close(self) -> None:
        await self.stop()
        refreshing = list(self._refreshing.values())
        for task in refreshing:
            task.cancel()
        await asyncio.gather(*refreshing, return_exceptions=True)
        for reader in self._readers.values():
            await reader.client.close()

    async def _schedule(self, name: str) -> None:
        interval = self.settings[name].interval_minutes * 60
        backoff = Backoff(30.0, interval)
        while True:
            await asyncio.sleep(await self._due_in(name, interval))
            try:
                report = await self.run(name, "schedule")
            except SyncBusy:
                continue
            except Exception:
                log.exception("1C sync crashed", extra={"fields": {"connection": name}})
                await asyncio.sleep(backoff.next_delay())
                continue
            if report.ok:
                backoff.reset()
            else:
                await asyncio.sleep(backoff.next_delay())

    async def _due_in(self, name: str, interval: float) -> float:
        """Seconds until the next scheduled run: ``interval`` after the last run started."""
        async with self.context.reading() as session:
            last = await session.scalar(
                select(OnecRun.started_at).where(OnecRun.connection == name).order_by(OnecRun.id.desc()).limit(1)
            )
        if last is None:
            return 0.0
        return max(0.0, (last + timedelta(seconds=interval) - utcnow()).total_seconds())

    async def _watch_requests(self) -> None:
        while True:
            await asyncio.sleep(REQUEST_POLL_SECONDS)
            try:
                await self.take_requests()
            except Exception:
                log.exception("1C sync requests not taken")

    async def take_requests(self) -> int:
        """Sync the cards asked for (one-card requests) on every connection; mark them done or failed."""
        async with self.context.reading() as session:
            pending = (
                await session.scalars(
                    select(SyncRequest).where(SyncRequest.status == "pending").order_by(SyncRequest.id)
                    .limit(REQUESTS_PER_RUN)
                )
            ).all()  # fmt: skip
            wanted = {r.id: r.client_id for r in pending}
        if not wanted:
            return 0
        errors: list[str] = []
        for name in self.settings:
            try:
                async with self.engine(name) as engine:
                    report = await engine.sync_clients(sorted(set(wanted.values())))
            except SyncBusy:
                return 0  # a full run is going on: it takes these cards too; the requests wait for the next tick
            if not report.ok:
                errors.append(f"{name}: {report.error}")
        async with self.context.transaction() as session:
            for request in (await session.scalars(select(SyncRequest).where(SyncRequest.id.in_(wanted)))).all():
                request.attempts += 1
                request.status = "failed" if errors else "done"
                request.done_at = utcnow()
                request.detail = "; ".join(errors) or None
        return len(wanted)

    # -- documents for the card and the screen-pop --------------------------------------------

    def cached_documents(self, client_id: int) -> dict[str, list[dict[str, Any]]]:
        """What the cache holds now (never waits); a stale or missing entry is refreshed meanwhile."""
        shown: dict[str, list[dict[str, Any]]] = {}
        for name in self.settings:
            entry = self._cache.get((name, client_id))
            if entry is None or entry.expires < time.monotonic():
                self._refresh(name, client_id)
            if entry is not None:
                shown[name] = [document_to_dict(d) for d in entry.documents]
        return shown

    async def documents(self, client_id: int, timeout: float = 5.0) -> dict[str, list[dict[str, Any]]]:
        """Fresh documents, waiting at most ``timeout`` for 1C; on a timeout or error the cache's."""
        shown: dict[str, list[dict[str, Any]]] = {}
        for name in self.settings:
            entry = self._cache.get((name, client_id))
            if entry is None or entry.expires < time.monotonic():
                with contextlib.suppress(TimeoutError, PeerError):
                    await asyncio.wait_for(asyncio.shield(self._refresh(name, client_id)), timeout)
                entry = self._cache.get((name, client_id))
            if entry is not None:
                shown[name] = [document_to_dict(d) for d in entry.documents]
        return shown

    def _refresh(self, name: str, client_id: int) -> asyncio.Task[list[Document]]:
        key = (name, client_id)
        task = self._refreshing.get(key)
        if task is None:
            task = asyncio.create_task(self._read_documents(name, client_id), name=f"onec:{name}:documents")
            self._refreshing[key] = task
            task.add_done_callback(lambda t: self._refreshing.pop(key, None))
            task.add_done_callback(_log_failure)
        return task

    async def _read_documents(self, name: str, client_id: int) -> list[Document]:
        settings = self.settings[name]
        async with self.context.reading() as session:
            ref = await session.scalar(
                select(OnecLink.ref_key).where(
                    OnecLink.connection == name, OnecLink.client_id == client_id, OnecLink.state == LinkState.linked
                )
            )
        documents: list[Document] = []
        if ref:
            reader = self._readers.get(name)
            if reader is None:
                reader = self._readers[name] = DocumentReader(OdataClient(connection_of(settings)), settings.documents)
            documents = await reader.recent(ref, utcnow() - timedelta(days=settings.documents_days))
        self._cache[name, client_id] = _Cached(time.monotonic() + settings.documents_cache_seconds, documents)
        return documents

    def _forget_documents(self, name: str) -> None:
        for key in [k for k in self._cache if k[0] == name]:
            del self._cache[key]


_TITLES = {"Document_СчетНаОплатуПокупателю": "Invoice", "Document_РеализацияТоваровУслуг": "Shipment"}


def document_items(documents: dict[str, list[dict[str, Any]]]) -> list[TimelineItem]:
    """1C documents as timeline items ("Invoice 123, 15 000.00")."""
    items = []
    for connection, listed in documents.items():
        for doc in listed:
            if not doc["date"]:
                continue
            title = _TITLES.get(doc["type"], doc["type"].removeprefix("Document_"))
            amount = f": {doc['amount']:.2f}" if doc["amount"] is not None else ""
            items.append(
                TimelineItem(
                    at=datetime.fromisoformat(doc["date"]),
                    kind="onec",
                    id=f"onec-{doc['ref_key']}",
                    title=f"{title} {doc['number']}{amount}",
                    data={**doc, "connection": connection},
                )
            )
    return items


async def run_with_progress(sync: OnecSync, name: str, client_ids: list[int] | None = None) -> RunReport:
    """A sync in this process with a progress bar per phase on stderr (``hub sync 1c``)."""
    bars: dict[str, tqdm[Any]] = {}

    def progress(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            for old in bars.values():
                old.close()
            bar = bars[phase] = tqdm(desc=f"{name}: {phase}", unit=" items", file=sys.stderr, dynamic_ncols=True)
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        if client_ids:
            async with sync.engine(name, progress) as engine:
                return await engine.sync_clients(client_ids, "cli")
        return await sync.run(name, "cli", progress)
    finally:
        for bar in bars.values():
            bar.close()


def document_to_dict(document: Document) -> dict[str, Any]:
    return {
        "type": document.entity_set,
        "ref_key": document.ref_key,
        "number": document.number,
        "date": document.date.isoformat() if document.date else None,
        "amount": document.amount,
        "posted": document.posted,
    }


def _pass_failure(task: asyncio.Task[Any], started: asyncio.Future[int]) -> None:
    """A failure before the run was recorded goes to the caller; one after it, nobody awaits: logged."""
    if task.cancelled():
        if not started.done():
            started.cancel()
    elif (error := task.exception()) is not None:
        if not started.done():
            started.set_exception(error)
        else:
            log.error("1C sync crashed", exc_info=error, extra={"fields": {"task": task.get_name()}})


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None and not isinstance(error, PeerError):
        log.error("1C documents not read", exc_info=error)
