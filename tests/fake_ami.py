"""A fake Asterisk that speaks AMI over a real socket and replays recorded traces.

Asterisk cannot run here, so the connector is tested against this server: the real wire
format (banner, ``Key: value`` lines, blank-line frames, ActionIDs, EventLists), the real
recorded events (``../shared/ami-traces``, read through ``tests.ami_traces``), and the
failures a production PBX has: a cut connection (events during the outage are lost, the
replay clock keeps running), a half-open connection that stops answering Ping, garbage on
the wire, a server that refuses connections for a while.

Usage::

    async with FakeAmi(speed=20) as fake:
        replay = fake.play("inbound_queue_answered")        # starts on the fake's timeline
        ... connect an AmiConnector to fake.host, fake.port ...
        fake.cut(down_for=0.2)                              # drop it; refuse for 0.2 s
        await replay.wait()
        fake.live_channels()                                # what CoreShowChannels answers now

Several traces can play at once; ``renumber=True`` gives each replay fresh Uniqueids,
Linkedids, channel-name suffixes and bridge ids, so one trace can stand for many concurrent
calls (the benchmark plays 200).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tests.ami_traces import TraceFrame, load_trace

BANNER = "Asterisk Call Manager/11.0.0\r\n"
_FRAME_END = b"\r\n\r\n"
_MAX_ACTION_BYTES = 64 * 1024

# Events of the recorder's own AMI session, not of the PBX: a fresh session gets its own.
_SESSION_EVENTS = {"FullyBooted", "SuccessfulAuth"}
# Events a real Asterisk broadcasts although they carry the originating session's ActionID.
_BROADCAST_REPLIES = {"OriginateResponse"}

# What renumbering replaces: bridge ids (UUIDs), Uniqueid/Linkedid values (epoch.sequence),
# channel-name suffixes ("Local/101@agents-0000000f;1", "PJSIP/101-0000000a") and the Cdr's
# date-times (which move with the Uniqueids' epochs, so the PBX's clock stays coherent).
_IDS = re.compile(
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"
    r"|(?<![\d.])\d{9,10}\.\d+(?![\d.])"
    r"|(?<=-)[0-9a-f]{8}(?=;\d|\r\n|,))"
)
_UNIQUEID_EPOCH = re.compile(r"(?<![\d.])(\d{9,10})\.\d+(?![\d.])")
_CDR_TIME = "%Y-%m-%d %H:%M:%S"
_ACTION_ID = re.compile(r"^ActionID: ([^\r\n]*)", re.MULTILINE)


# -- traces --------------------------------------------------------------------------------


@functools.cache
def _load_trace(name: str) -> tuple[TraceFrame, ...]:
    return tuple(load_trace(name))


def parse_headers(raw: str) -> list[tuple[str, str]]:
    """``Key: value`` lines of one frame, in order (blank lines and non-header lines skipped)."""
    return [(name, value) for name, sep, value in (line.partition(": ") for line in raw.split("\r\n")) if sep]


@functools.cache
def _id_template(raw: str) -> tuple[str, ...]:
    """The frame split around its ids: text, id, text, id, ..., text (computed once per frame)."""
    return tuple(_IDS.split(raw))


def frame(headers: Iterable[tuple[str, str]]) -> bytes:
    """Headers -> one AMI frame on the wire."""
    return "".join(f"{k}: {v}\r\n" for k, v in headers).encode() + b"\r\n"


# -- what the fake saw and knows -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedAction:
    """One action a client sent: its headers in order (repeated ones kept) and when."""

    session: int
    at: float  # loop time
    headers: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        return self.get("Action")

    def get(self, key: str, default: str = "") -> str:
        values = self.get_all(key)
        return values[0] if values else default

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == key.lower()]


@dataclass(slots=True)
class FakeChannel:
    """A live channel as the fake's model holds it (built from replayed events)."""

    channel: str
    uniqueid: str
    linkedid: str
    state: str
    caller: str
    caller_name: str
    connected: str
    connected_name: str
    context: str
    exten: str
    application: str = ""
    application_data: str = ""
    bridge_id: str = ""
    created_at: float = 0.0  # loop time
    speed: float = 1.0  # of the replay that created it: durations are in trace seconds

    def duration_seconds(self, now: float) -> int:
        return int((now - self.created_at) * self.speed)


@dataclass(frozen=True, slots=True)
class PlayedEvent:
    """One replayed event as it went on the wire (after renumbering), and whether anyone got it."""

    at: float  # loop time
    headers: dict[str, str]
    delivered: bool  # False: played while no session was logged in (lost, as on a real PBX)

    @property
    def name(self) -> str:
        return self.headers.get("Event", "")


@dataclass(eq=False)
class Replay:
    """One trace playing on the fake's timeline."""

    name: str
    speed: float
    renumber: bool
    played: list[PlayedEvent] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def sent(self) -> list[PlayedEvent]:
        return [e for e in self.played if e.delivered]

    @property
    def lost(self) -> list[PlayedEvent]:
        return [e for e in self.played if not e.delivered]

    async def wait(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(self.finished.wait(), timeout)


@dataclass(eq=False)
class FakeSession:
    """One client connection: what it may do, and how and when it ended."""

    id: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    accepted_at: float
    authenticated: bool = False
    events_on: bool = True
    pongs_paused: bool = False
    closed_at: float | None = None
    closed_by: str = ""  # "client", "cut", "logoff", "login failed", "server closed"

    @property
    def open(self) -> bool:
        return self.closed_at is None

    def write(self, data: bytes) -> None:
        if self.open and not self.writer.is_closing():
            self.writer.write(data)


class _Renumberer:
    """Fresh ids for one replay, consistent within it and unique across all replays.

    The PBX's own clock readings (a Uniqueid's epoch part, the Cdr's times) are moved by
    ``offset`` seconds, so that concurrent replays all happen "now" on one coherent PBX clock
    while each keeps its recorded durations.
    """

    def __init__(self, fake: FakeAmi, offset: int) -> None:
        self._fake = fake
        self._offset = offset
        self._map: dict[str, str] = {}

    def __call__(self, raw: str) -> str:
        parts = list(_id_template(raw))
        for i in range(1, len(parts), 2):
            old = parts[i]
            new = self._map.get(old)
            if new is None:
                new = self._map[old] = self._fresh(old)
            parts[i] = new
        return "".join(parts)

    def _fresh(self, old: str) -> str:
        if " " in old:
            return (datetime.strptime(old, _CDR_TIME) + timedelta(seconds=self._offset)).strftime(_CDR_TIME)
        if "-" in old:
            return self._fake._new_uuid()
        if "." in old:
            return f"{int(old.partition('.')[0]) + self._offset}.{next(self._fake._ids)}"
        return self._fake._new_suffix()


# -- the server ------------------------------------------------------------------------------


class FakeAmi:
    """An AMI server on 127.0.0.1 (free port) with a replay clock and a live-channel model."""

    def __init__(self, *, username: str = "hub", secret: str = "hubsecret", speed: float = 20.0) -> None:
        self.username = username
        self.secret = secret
        self.speed = speed
        self.host = "127.0.0.1"
        self.port = 0
        self.actions: list[ReceivedAction] = []
        self.sessions: list[FakeSession] = []
        self.refused: list[float] = []  # loop times of connections refused while "down"
        self.replays: list[Replay] = []
        self.channels: dict[str, FakeChannel] = {}  # by Uniqueid
        # Originate: with a trace set, each Originate replays it from the recorded Originate on
        # (its OriginateResponse gets the caller's ActionID); otherwise a synthetic answer.
        self.originate_trace: str | None = None
        self.originate_renumber = True
        self.originate_response = "Success"
        self.originate_delay = 0.05
        self._server: asyncio.Server | None = None
        self._refuse_until = 0.0
        self._ids = itertools.count(1)
        self._suffixes = itertools.count(0x40000000)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeAmi:
        self._server = await asyncio.start_server(self._handle, self.host, 0, limit=_MAX_ACTION_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for session in self.sessions:
            self._drop(session, "server closed")
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def __aenter__(self) -> FakeAmi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- what tests look at --------------------------------------------------------------------

    def actions_named(self, name: str) -> list[ReceivedAction]:
        return [a for a in self.actions if a.name.lower() == name.lower()]

    @property
    def open_sessions(self) -> list[FakeSession]:
        return [s for s in self.sessions if s.open]

    @property
    def logged_in_sessions(self) -> list[FakeSession]:
        return [s for s in self.sessions if s.open and s.authenticated]

    def live_channels(self) -> list[FakeChannel]:
        return list(self.channels.values())

    # -- faults --------------------------------------------------------------------------------

    def cut(self, down_for: float = 0.0) -> None:
        """Drop every connection now (RST, nothing flushed); refuse new ones for ``down_for`` s.

        The replay clock keeps running: events played meanwhile are lost, as with a real
        Asterisk that lost its client.
        """
        for session in self.open_sessions:
            self._drop(session, "cut")
        self._refuse_until = asyncio.get_running_loop().time() + down_for

    def pause_pongs(self) -> None:
        """Sessions open now stop answering Ping (a half-open connection); new ones answer."""
        for session in self.open_sessions:
            session.pongs_paused = True

    def resume_pongs(self) -> None:
        for session in self.sessions:
            session.pongs_paused = False

    def inject(self, raw: bytes) -> int:
        """Write raw bytes (garbage, broken frames) to every logged-in session; returns how many."""
        sessions = self._listeners()
        for session in sessions:
            session.write(raw)
        return len(sessions)

    def emit(self, headers: Iterable[tuple[str, str]]) -> int:
        """Send one synthetic event to every logged-in session; returns how many got it."""
        return self.inject(frame(headers))

    # -- replay --------------------------------------------------------------------------------

    def play(self, name: str, *, speed: float | None = None, renumber: bool = False, delay: float = 0.0) -> Replay:
        """Start replaying a trace's PBX events now (after ``delay`` s); returns its handle.

        The recorded banner, responses, the recorder's own session events (FullyBooted,
        SuccessfulAuth) and replies to the recorder's actions are not replayed; everything else
        is, with the recorded gaps divided by ``speed`` (the first event comes at once).
        """
        return self._start_replay(name, pbx_events(name), speed, renumber, delay, {})

    def _start_replay(
        self,
        name: str,
        frames: list[TraceFrame],
        speed: float | None,
        renumber: bool,
        delay: float,
        action_ids: Mapping[str, str],
    ) -> Replay:
        replay = Replay(name=name, speed=speed or self.speed, renumber=renumber)
        replay.task = self._spawn(self._run_replay(replay, frames, delay, action_ids))
        self.replays.append(replay)
        return replay

    async def _run_replay(
        self, replay: Replay, frames: list[TraceFrame], delay: float, action_ids: Mapping[str, str]
    ) -> None:
        loop = asyncio.get_running_loop()
        renumber = None
        if replay.renumber:
            recorded_epoch = next((int(m[1]) for f in frames if (m := _UNIQUEID_EPOCH.search(f.raw))), None)
            offset = round(time.time() + delay) - recorded_epoch if recorded_epoch else 0
            renumber = _Renumberer(self, offset)
        start = loop.time() + delay
        t0 = frames[0].t if frames else 0.0
        try:
            for recorded in frames:
                wait = start + (recorded.t - t0) / replay.speed - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                raw = renumber(recorded.raw) if renumber else recorded.raw
                if action_ids:
                    raw = _ACTION_ID.sub(lambda m: f"ActionID: {action_ids.get(m.group(1).strip(), m.group(1))}", raw)
                headers = parse_headers(raw)
                self._apply(headers, replay.speed)
                delivered = self.inject(raw.encode()) > 0
                replay.played.append(PlayedEvent(loop.time(), dict(headers), delivered))
        finally:
            replay.finished.set()

    # -- the live-channel model ----------------------------------------------------------------

    def _apply(self, headers: list[tuple[str, str]], speed: float) -> None:
        """Follow channels through the events, as Asterisk's channel snapshots do."""
        h = dict(headers)
        event, uniqueid = h.get("Event", ""), h.get("Uniqueid", "")  # Cdr spells it UniqueID: not a snapshot
        if not uniqueid:
            return
        if event == "Newchannel":
            self.channels[uniqueid] = FakeChannel(
                channel=h.get("Channel", ""),
                uniqueid=uniqueid,
                linkedid=h.get("Linkedid", uniqueid),
                state=h.get("ChannelStateDesc", ""),
                caller=h.get("CallerIDNum", ""),
                caller_name=h.get("CallerIDName", ""),
                connected=h.get("ConnectedLineNum", ""),
                connected_name=h.get("ConnectedLineName", ""),
                context=h.get("Context", ""),
                exten=h.get("Exten", ""),
                created_at=asyncio.get_running_loop().time(),
                speed=speed,
            )
            return
        channel = self.channels.get(uniqueid)
        if channel is None:
            return
        if event == "Hangup":
            del self.channels[uniqueid]
            return
        channel.channel = (
            h.get("Newname") if event == "Rename" and h.get("Newname") else h.get("Channel", channel.channel)
        )
        channel.state = h.get("ChannelStateDesc", channel.state)
        channel.caller = h.get("CallerIDNum", channel.caller)
        channel.caller_name = h.get("CallerIDName", channel.caller_name)
        channel.connected = h.get("ConnectedLineNum", channel.connected)
        channel.connected_name = h.get("ConnectedLineName", channel.connected_name)
        channel.context = h.get("Context", channel.context)
        channel.exten = h.get("Exten", channel.exten)
        channel.linkedid = h.get("Linkedid", channel.linkedid)
        if event == "Newexten":
            channel.application = h.get("Application", channel.application)
            channel.application_data = h.get("AppData", channel.application_data)
        elif event == "BridgeEnter":
            channel.bridge_id = h.get("BridgeUniqueid", "")
        elif event == "BridgeLeave":
            channel.bridge_id = ""

    # -- connections ---------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now < self._refuse_until:
            self.refused.append(now)
            writer.transport.abort()
            return
        session = FakeSession(len(self.sessions) + 1, reader, writer, accepted_at=now)
        self.sessions.append(session)
        session.write(BANNER.encode())
        try:
            with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                while session.open:  # until the client goes away or sends garbage too long to be an action
                    data = await reader.readuntil(_FRAME_END)
                    self._on_action(session, data.decode("utf-8", "replace"))
        finally:
            self._drop(session, "client")

    def _drop(self, session: FakeSession, by: str) -> None:
        if not session.open:
            return
        session.closed_at = asyncio.get_running_loop().time()
        session.closed_by = by
        if by == "cut" or by == "server closed":
            session.writer.transport.abort()
        else:
            session.writer.close()

    def _on_action(self, session: FakeSession, raw: str) -> None:
        headers = parse_headers(raw)
        action = ReceivedAction(session.id, asyncio.get_running_loop().time(), tuple(headers))
        self.actions.append(action)
        action_id = action.get("ActionID")
        name = action.name.lower()
        reply: list[tuple[str, str]] = [("ActionID", action_id)] if action_id else []
        if name == "login":
            self._login(session, action, reply)
        elif name == "logoff":
            session.write(frame([("Response", "Goodbye"), *reply, ("Message", "Thanks for all the fish.")]))
            self._drop(session, "logoff")
        elif not session.authenticated:
            session.write(frame([("Response", "Error"), *reply, ("Message", "Permission denied")]))
        elif name == "ping":
            if not session.pongs_paused:
                pong = [("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")]
                session.write(frame([("Response", "Success"), *reply, *pong]))
        elif name == "coreshowchannels":
            session.write(self._core_show_channels(reply))
        elif name == "queuestatus":
            start = [("Response", "Success"), *reply, ("EventList", "start"), ("Message", "Queue status will follow")]
            done = [("Event", "QueueStatusComplete"), *reply, ("EventList", "Complete"), ("ListItems", "0")]
            session.write(frame(start) + frame(done))
        elif name == "originate":
            self._originate(session, action, reply)
        else:
            session.write(frame([("Response", "Error"), *reply, ("Message", "Invalid/unknown command")]))

    def _login(self, session: FakeSession, action: ReceivedAction, reply: list[tuple[str, str]]) -> None:
        if action.get("Username") == self.username and action.get("Secret") == self.secret:
            session.authenticated = True
            session.events_on = action.get("Events", "on").lower() != "off"
            session.write(frame([("Response", "Success"), *reply, ("Message", "Authentication accepted")]))
            booted = [("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted")]
            if session.events_on:
                session.write(frame(booted))
        else:
            # Asterisk answers and then hangs up on a failed login.
            session.write(frame([("Response", "Error"), *reply, ("Message", "Authentication failed")]))
            self._drop(session, "login failed")

    def _core_show_channels(self, reply: list[tuple[str, str]]) -> bytes:
        now = asyncio.get_running_loop().time()
        out = [frame([("Response", "Success"), *reply, ("EventList", "start"), ("Message", "Channels will follow")])]
        for ch in self.channels.values():
            seconds = ch.duration_seconds(now)
            out.append(
                frame(
                    [
                        ("Event", "CoreShowChannel"),
                        *reply,
                        ("Channel", ch.channel),
                        ("ChannelState", _STATE_CODES.get(ch.state, "0")),
                        ("ChannelStateDesc", ch.state),
                        ("CallerIDNum", ch.caller),
                        ("CallerIDName", ch.caller_name),
                        ("ConnectedLineNum", ch.connected),
                        ("ConnectedLineName", ch.connected_name),
                        ("Language", "en"),
                        ("AccountCode", ""),
                        ("Context", ch.context),
                        ("Exten", ch.exten),
                        ("Priority", "1"),
                        ("Uniqueid", ch.uniqueid),
                        ("Linkedid", ch.linkedid),
                        ("Application", ch.application),
                        ("ApplicationData", ch.application_data),
                        ("Duration", f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"),
                        ("BridgeId", ch.bridge_id),
                    ]
                )
            )
        complete = [("Event", "CoreShowChannelsComplete"), *reply, ("EventList", "Complete")]
        out.append(frame([*complete, ("ListItems", str(len(self.channels)))]))
        return b"".join(out)

    def _originate(self, session: FakeSession, action: ReceivedAction, reply: list[tuple[str, str]]) -> None:
        session.write(frame([("Response", "Success"), *reply, ("Message", "Originate successfully queued")]))
        action_id = action.get("ActionID")
        if self.originate_trace:
            frames, recorded_id = _from_recorded_originate(self.originate_trace)
            self._start_replay(
                self.originate_trace, frames, None, self.originate_renumber, 0.0, {recorded_id: action_id}
            )
            return
        success = self.originate_response == "Success"
        suffix = self._new_suffix()
        channel = f"{action.get('Channel')}-{suffix}" if success else action.get("Channel")
        response = [
            ("Event", "OriginateResponse"),
            ("Privilege", "call,all"),
            *reply,
            ("Response", self.originate_response),
            ("Channel", channel),
            ("Context", action.get("Context")),
            ("Exten", action.get("Exten")),
            ("Reason", "4" if success else "0"),
            ("Uniqueid", self._new_uniqueid() if success else "<unknown>"),
            ("CallerIDNum", action.get("CallerID")),
            ("CallerIDName", "<unknown>"),
        ]
        self._spawn(self._later(self.originate_delay, lambda: self.emit(response)))

    # -- helpers -------------------------------------------------------------------------------

    def _listeners(self) -> list[FakeSession]:
        return [s for s in self.sessions if s.open and s.authenticated and s.events_on]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _later(delay: float, call: Callable[[], object]) -> None:
        await asyncio.sleep(delay)
        call()

    def _new_uniqueid(self) -> str:
        return f"{int(time.time())}.{next(self._ids)}"

    def _new_suffix(self) -> str:
        return f"{next(self._suffixes):08x}"

    @staticmethod
    def _new_uuid() -> str:
        return str(uuid.uuid4())


_STATE_CODES = {
    "Down": "0",
    "Rsrvd": "1",
    "OffHook": "2",
    "Dialing": "3",
    "Ring": "4",
    "Ringing": "5",
    "Up": "6",
    "Busy": "7",
}


@functools.cache
def pbx_events(name: str) -> list[TraceFrame]:
    """The frames of a trace the fake replays: the PBX's own events, not the recorder's session."""
    return [f for f in _load_trace(name) if _is_replayed(f, _recorded_action_ids(name))]


@functools.cache
def _recorded_action_ids(name: str) -> frozenset[str]:
    ids = {dict(parse_headers(f.raw)).get("ActionID", "") for f in _load_trace(name) if f.direction == "out"}
    return frozenset(ids - {""})


@functools.cache
def _from_recorded_originate(name: str) -> tuple[list[TraceFrame], str]:
    """The PBX events after the trace's recorded Originate, and that Originate's ActionID."""
    trace = _load_trace(name)
    for f in trace:
        headers = dict(parse_headers(f.raw))
        if f.direction == "out" and headers.get("Action") == "Originate":
            recorded_id = headers.get("ActionID", "")
            others = _recorded_action_ids(name) - {recorded_id}
            frames = [x for x in trace if x.t >= f.t and _is_replayed(x, others)]
            return frames, recorded_id
    raise ValueError(f"trace {name} has no Originate")


def _is_replayed(f: TraceFrame, recorder_ids: frozenset[str]) -> bool:
    if f.direction != "in" or not f.raw.startswith("Event: "):
        return False
    headers = dict(parse_headers(f.raw))
    if headers.get("Event") in _SESSION_EVENTS:
        return False
    return headers.get("ActionID") not in recorder_ids or headers.get("Event") in _BROADCAST_REPLIES


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> None:
    """Wait until ``predicate()`` holds; fail with TimeoutError after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
