"""Making campaign messages as bytes (render, compose, sign), in worker processes when the
machine has cores to spare.

Rendering the templates, composing the MIME message and signing it with DKIM are the pure-CPU
part of a message: about a fifth of its cost unsigned, most of it with a 2048-bit key.  Python
runs one thread at a time, so in the sender's own process that work competes with SMTP and the
database; worker processes do it on the other cores (by default only when messages are signed:
see ``default_processes``).  They are given plain data: the campaign's
``CopySpec`` (compiled once per version in each worker) and each recipient's template variables,
and they give back the message's bytes, or why it cannot be made.

A worker whose hub died (``kill -9`` leaves no one to stop it) notices within a second and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from connectors.mail.compose import Outgoing, compose
from connectors.mail.dkim import DkimSigner
from crm_core.campaigns.copies import Copy, CopyMaker, TrackingUrls
from crm_core.campaigns.templates import TemplateProblem
from crm_core.mail.events import Address

log = logging.getLogger("hub.campaigns")
PARENT_CHECK = 1.0  # seconds between a worker's looks at whether its hub is still there


@dataclass(frozen=True, slots=True)
class CopySpec:
    """What making a campaign's copies needs of it: plain data, sent to a worker with each batch."""

    campaign_id: int
    version: datetime  # the campaign's updated_at: a worker compiles each version once
    name: str
    subject: str
    html: str
    text: str
    tracked: bool
    sender: Address
    reply_to: str | None
    envelope_from: str
    mailto: str  # the List-Unsubscribe mailto address; "" for none
    pool: str  # the SMTP pool the copies go out through


@dataclass(frozen=True, slots=True)
class CopyJob:
    """One recipient's copy to make."""

    recipient_id: int
    address: str
    message_id: str | None  # with or without <>; None: compose makes one (a test send)
    variables: dict[str, Any]  # CopyMaker.variables(...): what the templates see


class CopyFactory:
    """Compiles each campaign version once and makes its copies; lives in a worker process, or
    in the sender's process when there are no workers."""

    def __init__(self, urls: TrackingUrls, dkim: DkimSigner | None) -> None:
        self.urls = urls
        self.dkim = dkim
        self._makers: dict[int, tuple[datetime, bool, CopyMaker]] = {}  # by campaign: its version's maker

    def maker(self, spec: CopySpec) -> CopyMaker:
        """Raises ``TemplateProblem`` when a template does not compile."""
        cached = self._makers.get(spec.campaign_id)
        if cached is not None and cached[:2] == (spec.version, spec.tracked):
            return cached[2]
        made = CopyMaker(spec, self.urls, tracked=spec.tracked)
        self._makers[spec.campaign_id] = (spec.version, spec.tracked, made)
        return made

    def build(self, spec: CopySpec, jobs: Sequence[CopyJob]) -> list[bytes | str]:
        """Each job's message, or a string saying why it cannot be made (a template error for
        that card, an address that cannot be a header)."""
        try:
            maker = self.maker(spec)
        except TemplateProblem as exc:
            return [str(exc)] * len(jobs)
        return [self._one(spec, maker, job) for job in jobs]

    def message(self, spec: CopySpec, maker: CopyMaker, job: CopyJob) -> tuple[str, bytes]:
        """``(Message-ID without <>, the signed message)``; raises ``TemplateProblem`` or ``ValueError``."""
        copy = maker.make(job.recipient_id, job.address, job.variables)
        message_id, raw = compose(outgoing(spec, job, copy))
        if self.dkim is not None:
            raw = self.dkim.sign(raw)
        return message_id, raw

    def _one(self, spec: CopySpec, maker: CopyMaker, job: CopyJob) -> bytes | str:
        try:
            return self.message(spec, maker, job)[1]
        except (TemplateProblem, ValueError) as exc:
            return str(exc)


def outgoing(spec: CopySpec, job: CopyJob, copy: Copy) -> Outgoing:
    """The message for one copy, with RFC 8058 one-click unsubscribe headers."""
    unsubscribe = f"<{copy.unsubscribe_url}>"
    if spec.mailto:
        token = copy.unsubscribe_url.rsplit("/", 1)[1]
        unsubscribe = f"<mailto:{spec.mailto}?subject={quote('unsubscribe ' + token)}>, {unsubscribe}"
    headers = [
        ("List-Unsubscribe", unsubscribe),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),  # RFC 8058
        ("X-Hub-Campaign", str(spec.campaign_id)),
        ("Feedback-ID", f"{spec.campaign_id}:campaign:hub"),  # Gmail's complaint-rate reports group by it
    ]
    if spec.reply_to:
        headers.append(("Reply-To", spec.reply_to))
    rendered = copy.rendered
    return Outgoing(
        sender=spec.sender,
        to=(Address(job.address, ""),),
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html or None,
        message_id=job.message_id.strip("<>") if job.message_id else None,
        headers=tuple(headers),
    )


class CopyWorkers:
    """Where copies are made: ``processes`` worker processes, or a thread of this process when 0.

    The pool is started at the first batch (a hub that sends no mailing starts no process) and
    started again if a worker died; the batch that was on it fails and is given back by the caller.
    """

    def __init__(self, factory: CopyFactory, processes: int) -> None:
        self.factory = factory
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    async def build(self, spec: CopySpec, jobs: Sequence[CopyJob]) -> list[bytes | str]:
        if not jobs:
            return []
        if self.processes == 0:
            return await asyncio.to_thread(self.factory.build, spec, jobs)
        pool = self._started()
        share = -(-len(jobs) // self.processes)  # a batch split evenly over the workers
        chunks = [list(jobs[at : at + share]) for at in range(0, len(jobs), share)]
        loop = asyncio.get_running_loop()
        try:
            parts = await asyncio.gather(*(loop.run_in_executor(pool, _build_in_worker, spec, c) for c in chunks))
        except BrokenProcessPool:
            log.error("a copy-making worker process died; starting new ones")
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        return [made for part in parts for made in part]

    def close(self) -> None:
        """Stop the workers (they finish the batch they are on)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _started(self) -> Executor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),  # no fork of a process with threads and sockets
                initializer=_start_worker,
                initargs=(self.factory.urls, self.factory.dkim, os.getpid()),
            )
        return self._pool


def default_processes(signing: bool) -> int:
    """With a DKIM key, one worker per core but the one the sender runs on, at most four: dkimpy
    signs in pure Python, about 13 ms a message on a small machine, so a single process could not
    send a hundred signed messages a second.  Without one, none: rendering and composing take
    about a millisecond, and on a two-core machine handing them to a process was measured slower
    (300 messages/s against 350 in a thread)."""
    return max(0, min(4, (os.cpu_count() or 1) - 1)) if signing else 0


# -- in the worker process ---------------------------------------------------------------------

_factory: CopyFactory | None = None


def _start_worker(urls: TrackingUrls, dkim: DkimSigner | None, parent: int) -> None:
    global _factory
    _factory = CopyFactory(urls, dkim)
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    """A ``kill -9`` of the hub leaves its workers waiting for work forever: leave with it."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK)
    with contextlib.suppress(Exception):
        log.warning("the hub that started this copy-making worker is gone; exiting")
    os._exit(0)


def _build_in_worker(spec: CopySpec, jobs: list[CopyJob]) -> list[bytes | str]:
    assert _factory is not None, "the worker's initializer sets the factory"
    return _factory.build(spec, jobs)
