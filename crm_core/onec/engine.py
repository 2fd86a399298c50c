"""One sync of one 1C connection: find what changed on either side, decide, write, remember.

1C keeps no change feed, so its changes are found by reading the cheap
``Ref_Key, DataVersion`` list and comparing it with the versions last synced; only the
changed items are read whole.  The hub's changes are the cards whose version moved past
the one last synced.  Every step is safe to repeat: a run cut anywhere (1C gone, a 500,
the process killed) leaves links that the next run completes, without a duplicate on
either side:

- a card is created in 1C only after a ``creating`` link is committed; a run finding such a
  link looks for the item in 1C (by requisites and the marker in its comment) before
  creating it again;
- a write to 1C is committed in the hub only after 1C answered; if the hub dies in between,
  the next run finds both sides holding the same values and writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from pydantic import ValidationError
from sqlalchemy import Table, and_, delete, exists, insert, inspect, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.audit import Actor
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook, MatchRules
from crm_core.errors import DomainError
from crm_core.models import Client, utcnow
from crm_core.onec import journal
from crm_core.onec.cards import card_changes, new_card
from crm_core.onec.journal import LogLine, synced_event
from crm_core.onec.matching import Card, MatchIndex
from crm_core.onec.merge import Rule, merge
from crm_core.onec.models import ConflictStatus, LinkState, OnecConflict, OnecLink, OnecProposal, ProposalStatus
from crm_core.onec.port import CounterpartyPort, PeerError, PeerUnavailable, VersionMoved
from crm_core.onec.records import Counterparty, Remote, of_client
from crm_core.outbox import Event, publish

log = logging.getLogger("hub.onec")
PROGRESS_EVERY = 1.0  # seconds between progress writes to the database
FULL_READ_SHARE = 0.2  # above this share of items changed, page through everything instead of by key
ProgressFn = Callable[[str, int, int], None]


class SyncPort(CounterpartyPort, Protocol):
    async def prepare(self) -> None:
        """Check the publication and read reference data (kinds, folders) before a run."""
        ...


@dataclass(frozen=True, slots=True)
class SyncOptions:
    connection: str
    region: str = "RU"
    rules: Mapping[str, Rule] = field(default_factory=dict)
    create_in_onec: bool = True
    create_in_hub: bool = True
    batch: int = 200  # items per transaction: short enough not to hold SQLite's write lock for long


@dataclass(frozen=True, slots=True)
class RunReport:
    run_id: int
    ok: bool
    counts: dict[str, int]
    error: str | None


@dataclass(slots=True)
class _OnecWrite:
    """A merge's changes for 1C, and what the link becomes once 1C took them."""

    link_id: int
    client_id: int
    ref_key: str
    expected_version: str
    changes: dict[str, Any]
    base: dict[str, Any]
    hub_version: int


class SyncEngine:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        port: SyncPort,
        options: SyncOptions,
        *,
        progress: ProgressFn | None = None,
    ) -> None:
        self.sessions = sessions
        self.port = port
        self.options = options
        self.name = options.connection
        self.actor = Actor(user_id=None, username=f"1c:{options.connection}")
        self.counts: Counter[str] = Counter()
        self._progress = progress
        self._run_id = 0
        self._index: MatchIndex | None = None
        self._progress_written = -PROGRESS_EVERY

    # -- runs ------------------------------------------------------------------------------

    async def run(self, trigger: str = "api", started: Callable[[int], None] | None = None) -> RunReport:
        """A whole sync; SyncBusy when one is running.  1C's failures end the run as failed.
        ``started`` is told the run's id as soon as the run is recorded."""
        return await self._within_run(trigger, self._sync, started)

    async def sync_clients(self, client_ids: Sequence[int], trigger: str = "request") -> RunReport:
        """These cards now, out of schedule: linked ones both ways, unlinked ones created in 1C."""
        return await self._within_run(trigger, lambda: self._sync_clients(client_ids), None)

    async def _within_run(
        self, trigger: str, work: Callable[[], Any], started: Callable[[int], None] | None
    ) -> RunReport:
        async with self.sessions() as session, session.begin():
            run = await journal.start_run(session, self.name, trigger)
        self._run_id, self.counts = run.id, Counter()
        if started is not None:
            started(run.id)
        error: str | None = None
        try:
            await work()
        except PeerError as exc:
            error = str(exc)
            log.error("1C sync failed", extra={"fields": {"connection": self.name, "run": run.id, "error": error}})
        except BaseException as exc:
            error = f"stopped: {type(exc).__name__}: {exc}".rstrip(": ")
            await asyncio.shield(self._finish(error))
            raise
        await self._finish(error)
        return RunReport(run.id, error is None, dict(self.counts), error)

    async def _finish(self, error: str | None) -> None:
        async with self.sessions() as session, session.begin():
            await journal.finish_run(session, self._run_id, self.counts, error)

    async def _phase(self, phase: str, done: int, total: int) -> None:
        """Progress for the CLI at once; for the API (and as the run's heartbeat) at most once a second."""
        if self._progress is not None:
            self._progress(phase, done, total)
        now = time.monotonic()
        if now - self._progress_written < PROGRESS_EVERY:
            return
        self._progress_written = now
        async with self.sessions() as session, session.begin():
            await journal.progress(session, self._run_id, phase, done, total)

    # -- the whole sync -------------------------------------------------------------------------

    async def _sync(self) -> None:
        await self._phase("checking 1C", 0, 0)
        await self.port.prepare()
        await self._finish_creations()
        read = 0

        def counted(n: int) -> None:
            nonlocal read
            read += n
            if self._progress is not None:
                self._progress("reading versions", read, 0)

        # The list from 1C and the hub's own state are read at once: each waits on a different peer.
        versions, known, self._index = await asyncio.gather(
            self.port.versions(counted), self._known_versions(), self._match_index()
        )
        changed = [ref for ref, v in versions.items() if known.get(ref, (None, False))[0] != v.data_version]
        missing = [ref for ref, (_, linked) in known.items() if linked and ref not in versions]
        await self._phase("applying 1C changes", 0, len(changed))
        if len(changed) > self.options.batch and len(changed) > FULL_READ_SHARE * len(versions):
            wanted, done = set(changed), 0
            async for page in self.port.pages():
                mine = [remote for remote in page if remote.ref_key in wanted]
                for start in range(0, len(mine), self.options.batch):
                    await self._settle(mine[start : start + self.options.batch])
                done += len(mine)
                await self._phase("applying 1C changes", done, len(changed))
        else:
            for start in range(0, len(changed), self.options.batch):
                await self._settle(await self.port.fetch(changed[start : start + self.options.batch]))
                await self._phase("applying 1C changes", min(start + self.options.batch, len(changed)), len(changed))
        if missing:
            await self._check_gone(missing)
        await self._push_hub_changes()

    async def _sync_clients(self, client_ids: Sequence[int]) -> None:
        await self.port.prepare()
        await self._finish_creations()
        async with self.sessions() as session:
            links = (
                await session.execute(
                    select(OnecLink.client_id, OnecLink.ref_key, OnecLink.state).where(
                        OnecLink.connection == self.name, OnecLink.client_id.in_(client_ids)
                    )
                )
            ).all()
        linked = [ref for _, ref, state in links if state is LinkState.linked and ref]
        if linked:
            self._index = MatchIndex([])
            await self._settle(await self.port.fetch(linked))
        unlinked = sorted(set(client_ids) - {client_id for client_id, _, _ in links})
        if unlinked and self.options.create_in_onec:
            await self._create_in_onec(unlinked)

    async def _known_versions(self) -> dict[str, tuple[str | None, bool]]:
        """Each known item's last synced ``DataVersion``, and whether it is linked (plain rows: 100k of them)."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(OnecLink.ref_key, OnecLink.onec_version, OnecLink.state == LinkState.linked).where(
                    OnecLink.connection == self.name, OnecLink.ref_key.is_not(None)
                )
            )
            return {ref: (version, bool(linked)) for ref, version, linked in rows if ref is not None}

    async def _match_index(self) -> MatchIndex:
        """Live cards not linked to this connection, nor waiting on a proposal."""
        async with self.sessions() as session:
            linked = exists().where(OnecLink.connection == self.name, OnecLink.client_id == Client.id)
            waiting = exists().where(
                OnecProposal.connection == self.name,
                OnecProposal.client_id == Client.id,
                OnecProposal.status == ProposalStatus.open,
            )
            rows = await session.execute(
                select(Client.id, Client.name, Client.inn, Client.kpp).where(
                    Client.deleted_at.is_(None), ~linked, ~waiting
                )
            )
            cards = [Card(client_id, name, inn, kpp) for client_id, name, inn, kpp in rows]
            refused = await session.execute(
                select(OnecProposal.ref_key, OnecProposal.client_id).where(
                    OnecProposal.connection == self.name, OnecProposal.status == ProposalStatus.rejected
                )
            )
            return MatchIndex(cards, {(ref, client_id) for ref, client_id in refused})

    # -- 1C's items into the hub -------------------------------------------------------------

    async def _settle(self, remotes: list[Remote], *, again: bool = True) -> None:
        """Merge these 1C items with their cards (or match or create cards), then write to 1C."""
        if not remotes:
            return
        writes: list[_OnecWrite] = []
        async with self.sessions() as session, session.begin():
            batch = _Batch(session, self, remotes)
            await batch.load()
            for remote in remotes:
                try:
                    write = await batch.settle(remote)
                except (ValidationError, DomainError) as exc:
                    await batch.refuse(remote, _reason(exc))
                    continue
                if write is not None:
                    writes.append(write)
            await batch.create_cards()
            await batch.book.write_batched()
            await batch.close()
        await self._write_all(writes, again=again)

    async def _write_all(self, writes: list[_OnecWrite], *, again: bool) -> None:
        results = await asyncio.gather(*(self._write(w, again=again) for w in writes), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _write(self, write: _OnecWrite, *, again: bool) -> None:
        try:
            remote = await self.port.update(write.ref_key, write.expected_version, write.changes)
        except VersionMoved:
            if again:  # changed in 1C since read: read it again and merge once more
                await self._settle(await self.port.fetch([write.ref_key]), again=False)
            else:
                await self._log(LogLine("skipped", "", write.client_id, write.ref_key, sorted(write.changes),
                                        "changed in 1C while being written; the next sync retries"))  # fmt: skip
            return
        except PeerUnavailable:
            raise
        except PeerError as exc:
            self.counts["failed"] += 1
            await self._log(LogLine("failed", "1c", write.client_id, write.ref_key, sorted(write.changes), str(exc)))
            return
        fields = sorted(write.changes)
        async with self.sessions() as session, session.begin():
            link = await session.get(OnecLink, write.link_id)
            if link is not None:
                link.onec_version, link.base = remote.data_version, write.base
                link.hub_version, link.synced_at = write.hub_version, utcnow()
            await journal.write_log(
                session, self._run_id, [LogLine("updated", "1c", write.client_id, write.ref_key, fields)]
            )
            await publish(session, synced_event(self.name, write.client_id, write.ref_key, "updated", "1c", fields))
        self.counts["updated_1c"] += 1

    async def _log(self, line: LogLine) -> None:
        async with self.sessions() as session, session.begin():
            await journal.write_log(session, self._run_id, [line])

    async def _check_gone(self, refs: list[str]) -> None:
        """Linked items missing from the list: gone only if 1C cannot find them by key either."""
        present: set[str] = set()
        for start in range(0, len(refs), self.options.batch):
            present |= {r.ref_key for r in await self.port.fetch(refs[start : start + self.options.batch])}
        gone = [ref for ref in refs if ref not in present]
        if not gone:
            return
        async with self.sessions() as session, session.begin():
            links = (
                await session.scalars(
                    select(OnecLink).where(OnecLink.connection == self.name, OnecLink.ref_key.in_(gone))
                )
            ).all()
            for link in links:
                link.state = LinkState.gone
                link.detail = "the item no longer exists in 1C (destroyed there); the card is kept"
            await journal.write_log(
                session,
                self._run_id,
                [LogLine("gone", "", link.client_id, link.ref_key, [], link.detail or "") for link in links],
            )
        self.counts["gone"] += len(gone)

    # -- the hub's cards into 1C ----------------------------------------------------------------

    async def _push_hub_changes(self) -> None:
        async with self.sessions() as session:
            changed = list(
                await session.scalars(
                    select(OnecLink.ref_key)
                    .join(Client, Client.id == OnecLink.client_id)
                    .where(
                        OnecLink.connection == self.name,
                        OnecLink.state == LinkState.linked,
                        or_(OnecLink.hub_version.is_(None), Client.version != OnecLink.hub_version),
                    )
                    .order_by(OnecLink.id)
                )
            )
            fresh = list(await session.scalars(self._unlinked_cards()))
        await self._phase("sending hub changes", 0, len(changed))
        for start in range(0, len(changed), self.options.batch):
            chunk = [ref for ref in changed[start : start + self.options.batch] if ref]
            self._index = MatchIndex([])
            await self._settle(await self.port.fetch(chunk))
            await self._phase("sending hub changes", min(start + self.options.batch, len(changed)), len(changed))
        if not self.options.create_in_onec:
            return
        await self._phase("creating in 1C", 0, len(fresh))
        for start in range(0, len(fresh), self.options.batch):
            await self._create_in_onec(fresh[start : start + self.options.batch])
            await self._phase("creating in 1C", min(start + self.options.batch, len(fresh)), len(fresh))

    def _unlinked_cards(self) -> Any:
        """Live cards with no link (or a refused creation whose card changed since) and no open proposal."""
        retry = and_(
            OnecLink.state == LinkState.refused, OnecLink.ref_key.is_(None), OnecLink.hub_version != Client.version
        )
        no_link = ~exists().where(OnecLink.connection == self.name, OnecLink.client_id == Client.id, ~retry)
        waiting = exists().where(
            OnecProposal.connection == self.name,
            OnecProposal.client_id == Client.id,
            OnecProposal.status == ProposalStatus.open,
        )
        return select(Client.id).where(Client.deleted_at.is_(None), no_link, ~waiting).order_by(Client.id)

    async def _create_in_onec(self, client_ids: Sequence[int]) -> None:
        """Write-ahead ``creating`` links, then POST, then the links with 1C's references."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                delete(OnecLink).where(
                    OnecLink.connection == self.name,
                    OnecLink.client_id.in_(client_ids),
                    OnecLink.state == LinkState.refused,
                )
            )
            clients = (
                await session.scalars(select(Client).where(Client.id.in_(client_ids), Client.deleted_at.is_(None)))
            ).all()
            pending: list[tuple[OnecLink, Counterparty]] = []
            for client in clients:
                link = OnecLink(connection=self.name, client_id=client.id, state=LinkState.creating,
                                hub_version=client.version, base={}, synced_at=utcnow())  # fmt: skip
                session.add(link)
                pending.append((link, of_client(client, self.options.region)))
            await session.flush()
            jobs = [(link.id, link.client_id or 0, link.hub_version or 0, record) for link, record in pending]
        results = await asyncio.gather(
            *(self.port.create(record, marker(client_id)) for _, client_id, _, record in jobs),
            return_exceptions=True,
        )
        unavailable: BaseException | None = None
        async with self.sessions() as session, session.begin():
            lines: list[LogLine] = []
            events: list[Event] = []
            ids = [link_id for link_id, _, _, _ in jobs]
            links = {link.id: link for link in await session.scalars(select(OnecLink).where(OnecLink.id.in_(ids)))}
            for (link_id, client_id, version, record), result in zip(jobs, results, strict=True):
                made = links[link_id]
                if isinstance(result, Remote):
                    made.ref_key, made.state, made.onec_version = result.ref_key, LinkState.linked, result.data_version
                    made.base, made.hub_version = record.values(), version
                    lines.append(LogLine("created", "1c", client_id, result.ref_key))
                    events.append(synced_event(self.name, client_id, result.ref_key, "created", "1c", []))
                    self.counts["created_1c"] += 1
                elif isinstance(result, PeerUnavailable):
                    unavailable = unavailable or result  # the link stays "creating": the next run looks first
                elif isinstance(result, PeerError) and result.transient:
                    made.detail = f"1C failed to create it: {result}; the next sync looks for it and tries again"
                    lines.append(LogLine("failed", "1c", client_id, None, [], made.detail))
                    self.counts["failed"] += 1
                elif isinstance(result, PeerError):
                    made.state, made.detail = LinkState.refused, str(result)
                    lines.append(LogLine("failed", "1c", client_id, None, [], f"1C refused the new item: {result}"))
                    self.counts["failed"] += 1
                elif isinstance(result, BaseException):
                    unavailable = unavailable or result
            await journal.write_log(session, self._run_id, lines)
            await publish(session, *events)
        if unavailable is not None:
            raise unavailable

    async def _finish_creations(self) -> None:
        """Creations whose answer was lost: link the item 1C made, or forget the attempt and create again."""
        async with self.sessions() as session:
            creating = (
                await session.execute(
                    select(OnecLink.id, Client)
                    .join(Client, Client.id == OnecLink.client_id)
                    .where(OnecLink.connection == self.name, OnecLink.state == LinkState.creating)
                )
            ).all()
            records = [(link_id, client.id, of_client(client, self.options.region)) for link_id, client in creating]
        for link_id, client_id, record in records:
            found = await self.port.find(record, marker(client_id))
            async with self.sessions() as session, session.begin():
                link = await session.get(OnecLink, link_id)
                if link is None:
                    continue
                if found:  # linked with no agreed values: this run's merge settles both sides
                    link.ref_key, link.state = found[0].ref_key, LinkState.linked
                    link.onec_version, link.base = None, {}
                    why = "created by an earlier, interrupted sync"
                    line = LogLine("linked", "", client_id, link.ref_key, [], why)
                    await journal.write_log(session, self._run_id, [line])
                else:
                    await session.delete(link)


def marker(client_id: int) -> str:
    """Written into the comment of an item the hub creates, so a lost answer can be recovered."""
    return f"[hub:{client_id}]"


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}".lstrip(": ").removeprefix("Value error, ")
            for err in exc.errors()
        )
    return str(exc)


class _Batch:
    """One transaction's worth of 1C items: their links, cards and conflicts, loaded together."""

    def __init__(self, session: AsyncSession, engine: SyncEngine, remotes: list[Remote]) -> None:
        self.session = session
        self.engine = engine
        self.name = engine.name
        self.options = engine.options
        self.remotes = remotes
        self.book = ClientBook(session, MatchRules(region=engine.options.region))
        self.links: dict[str, OnecLink] = {}
        self.clients: dict[int, Client] = {}
        self.conflicts: dict[int, list[OnecConflict]] = {}
        self.proposed: set[str] = set()
        self.new_cards: list[tuple[OnecLink | None, Remote, ClientIn]] = []
        self.lines: list[LogLine] = []
        self.events: list[Event] = []

    async def load(self) -> None:
        refs = [r.ref_key for r in self.remotes]
        query = select(OnecLink).where(OnecLink.connection == self.name, OnecLink.ref_key.in_(refs))
        self.links = {link.ref_key or "": link for link in await self.session.scalars(query)}
        ids = {link.client_id for link in self.links.values() if link.client_id is not None}
        ids |= self._matched_cards()
        if ids:
            clients = await self.session.scalars(select(Client).where(Client.id.in_(ids)))
            self.clients = {client.id: client for client in clients}
        self.conflicts = await journal.conflicts_of(self.session, [link.id for link in self.links.values()])
        self.proposed = set(
            await self.session.scalars(
                select(OnecProposal.ref_key).where(
                    OnecProposal.connection == self.name,
                    OnecProposal.ref_key.in_(refs),
                    OnecProposal.status == ProposalStatus.open,
                )
            )
        )

    def _matched_cards(self) -> set[int]:
        """The cards the first sync will link these items to: read with the batch, not one by one."""
        index = self.engine._index
        assert index is not None
        ids: set[int] = set()
        for remote in self.remotes:
            link = self.links.get(remote.ref_key)
            if link is None or link.state not in (LinkState.linked, LinkState.gone):
                match = index.match(remote.ref_key, remote.record)
                if match.verdict == "link":
                    ids.add(match.client_ids[0])
        return ids

    async def create_cards(self) -> None:
        """The batch's new cards in one flush; a card the hub's rules refuse is kept aside."""
        if not self.new_cards:
            return
        cards = [card for _, _, card in self.new_cards]
        made = await self.book.create_many(cards, self.engine.actor, source="1c")
        new_links: list[dict[str, Any]] = []
        for (link, remote, _), result in zip(self.new_cards, made, strict=True):
            if isinstance(result, DomainError):
                await self.refuse(remote, str(result))
                continue
            if link is None:  # the common case, written below in one statement
                new_links.append({"connection": self.name, "ref_key": remote.ref_key, "client_id": result.id,
                                  "state": LinkState.linked, "onec_version": remote.data_version,
                                  "hub_version": result.version, "base": remote.record.values(), "detail": None,
                                  "synced_at": utcnow()})  # fmt: skip
            else:
                self._link(link, remote, result.id, LinkState.linked, remote.record.values(), result.version)
            self.lines.append(LogLine("created", "hub", result.id, remote.ref_key))
            self.events.append(synced_event(self.name, result.id, remote.ref_key, "created", "hub", []))
            self.count("created_hub")
        if new_links:
            await self.session.execute(insert(cast(Table, OnecLink.__table__)), new_links)

    async def close(self) -> None:
        await journal.write_log(self.session, self.engine._run_id, self.lines)
        await publish(self.session, *self.events)

    def count(self, what: str) -> None:
        self.engine.counts[what] += 1

    async def settle(self, remote: Remote) -> _OnecWrite | None:
        """One item.  The hub's refusal (``ValidationError``, ``DomainError``) comes before the card
        is touched, so the batch goes on without it; the cards' writes are flushed with the batch."""
        link = self.links.get(remote.ref_key)
        if link is not None and link.state in (LinkState.linked, LinkState.gone) and link.client_id in self.clients:
            link.state = LinkState.linked  # a "gone" item that is back (restored from a backup, say)
            return await self._merge(link, self.clients[link.client_id], remote, link.base or None)
        return await self._arrive(link, remote)

    async def refuse(self, remote: Remote, reason: str) -> None:
        """The hub's rules refuse what 1C says: kept aside until the item changes, and logged."""
        link = self.links.get(remote.ref_key)
        if link is not None and inspect(link).persistent:
            await self.session.refresh(link)  # as stored: what this item's settling set on it is dropped
        if link is not None and link.state is LinkState.linked:
            self.lines.append(LogLine("failed", "hub", link.client_id, remote.ref_key, [], reason))
            self.count("failed")
            return
        if link is None:
            link = OnecLink(connection=self.name, ref_key=remote.ref_key, base={})
            self.session.add(link)
            self.links[remote.ref_key] = link
        link.client_id, link.state, link.onec_version = None, LinkState.refused, remote.data_version
        link.detail, link.synced_at = reason, utcnow()
        self.lines.append(LogLine("failed", "hub", None, remote.ref_key, [], f"{remote.record.name}: {reason}"))
        self.count("failed")

    async def _arrive(self, link: OnecLink | None, remote: Remote) -> _OnecWrite | None:
        """A 1C item with no card yet: match it, propose it, or make its card."""
        record = remote.record
        if remote.ref_key in self.proposed:
            self.count("skipped")
            return None
        if record.deleted:
            self._link(link, remote, None, LinkState.ignored, {}, None)
            self.lines.append(LogLine("skipped", "", None, remote.ref_key, [], "marked for deletion in 1C"))
            self.count("skipped")
            return None
        assert self.engine._index is not None
        match = self.engine._index.match(remote.ref_key, record)
        if match.verdict == "propose":
            await journal.propose(self.session, self.name, remote.ref_key, list(match.client_ids), match.reason,
                                  record.name, record.inn)  # fmt: skip
            self.lines.append(LogLine("proposed", "", match.client_ids[0], remote.ref_key, [], match.reason))
            self.count("proposed")
            return None
        if match.verdict == "link":
            client = self.clients.get(match.client_ids[0]) or await self.book.get(match.client_ids[0])
            self.engine._index.take(client.id)
            linked = self._link(link, remote, client.id, LinkState.linked, {}, None)
            write = await self._merge(linked, client, remote, None)
            self.lines.append(LogLine("linked", "", client.id, remote.ref_key, [], match.reason))
            self.events.append(synced_event(self.name, client.id, remote.ref_key, "linked", "", []))
            self.count("linked")
            return write
        if not self.options.create_in_hub:
            self.count("skipped")
            return None
        self.new_cards.append((link, remote, new_card(record)))  # created with the batch's others
        return None

    def _link(
        self, link: OnecLink | None, remote: Remote, client_id: int | None, state: LinkState,
        base: dict[str, Any], hub_version: int | None,
    ) -> OnecLink:  # fmt: skip
        if link is None:
            link = OnecLink(connection=self.name, ref_key=remote.ref_key)
            self.session.add(link)
            self.links[remote.ref_key] = link
        link.client_id, link.state, link.base, link.hub_version = client_id, state, base, hub_version
        link.onec_version, link.detail, link.synced_at = remote.data_version, None, utcnow()
        return link

    async def _merge(
        self, link: OnecLink, client: Client, remote: Remote, base: dict[str, Any] | None
    ) -> _OnecWrite | None:
        known = self.conflicts.get(link.id, [])
        held = frozenset(c.field for c in known if c.status is ConflictStatus.open)
        resolved = {c.field: c.chosen_value for c in known if c.status is ConflictStatus.resolved}
        result = merge(of_client(client, self.options.region), remote.record, base, self.options.rules,
                       held=held, resolved=resolved)  # fmt: skip
        if result.to_hub:
            await self._write_card(client, dict(result.to_hub))
            self.lines.append(LogLine("updated", "hub", client.id, remote.ref_key, sorted(result.to_hub)))
            self.events.append(
                synced_event(self.name, client.id, remote.ref_key, "updated", "hub", sorted(result.to_hub))
            )
            self.count("updated_hub")
        if result.conflicts:
            if link.id is None:
                await self.session.flush()
            new = await journal.record_conflicts(self.session, self.name, link.id, client.id, remote.ref_key,
                                                 result.conflicts, known)  # fmt: skip
            if new:
                self.lines.append(LogLine("conflict", "", client.id, remote.ref_key,
                                          [c.field for c in result.conflicts], "changed on both sides"))  # fmt: skip
                self.engine.counts["conflicts"] += new
        for conflict in known:
            if conflict.status is ConflictStatus.resolved:
                conflict.status = ConflictStatus.applied
        if result.to_onec:
            if link.id is None:
                await self.session.flush()
            return _OnecWrite(link.id, client.id, remote.ref_key, remote.data_version, dict(result.to_onec),
                              result.base, client.version)  # fmt: skip
        link.onec_version, link.base, link.hub_version = remote.data_version, result.base, client.version
        link.synced_at = utcnow()
        if not result.to_hub and not result.conflicts:
            self.count("unchanged")
        return None

    async def _write_card(self, client: Client, to_hub: dict[str, Any]) -> None:
        deleted = to_hub.pop("deleted", None)
        changes = card_changes(client, to_hub, self.options.region)
        actor = self.engine.actor
        if changes:
            await self.book.update(
                client.id, changes, actor, expected_version=client.version, include_deleted=True, batched=True
            )
        if deleted is True:
            await self.book.delete(client.id, actor)
        elif deleted is False:
            await self.book.restore(client.id, actor)
