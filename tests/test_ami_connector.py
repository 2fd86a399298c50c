"""The AMI connector against a fake Asterisk that replays recorded traces over a real socket.

Each test tells one story of a PBX link: it logs in (or is refused), streams a call's events
in order, survives garbage, notices a dead peer, resynchronises after an outage, places a
click-to-call and never places one twice.  Timings are scaled down (replay speed, a 0.3 s
ping) so the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.ami import (
    AmiConnector,
    AmiLoginRejected,
    AmiNotConnected,
    OriginateResult,
    PbxSettings,
)
from connectors.ami.frames import Banner, Frame, FrameReader, Malformed
from crm_core.telephony.events import ChannelSnapshot, PbxEvent
from tests.fake_ami import FakeAmi, FakeChannel, eventually

PING_INTERVAL = 0.3
PING_TIMEOUT = 0.2
SESSION_EVENTS = {"FullyBooted", "QueueStatusComplete"}  # the fake's own, not the trace's


def settings_for(fake: FakeAmi, **overrides: object) -> PbxSettings:
    values: dict[str, object] = dict(
        name="pbx-test",
        host=fake.host,
        port=fake.port,
        username="hub",
        secret="hubsecret",
        ping_interval=PING_INTERVAL,
        ping_timeout=PING_TIMEOUT,
        backoff_initial=0.05,
        backoff_max=0.2,
        connect_timeout=2.0,
        action_timeout=2.0,
        max_frame_bytes=4096,
    )
    values.update(overrides)
    return PbxSettings(**values)  # type: ignore[arg-type]


@dataclass
class Hub:
    """Stands in for the hub: records what the connector hands over, in one ordered log."""

    log: list[PbxEvent | list[ChannelSnapshot]] = field(default_factory=list)

    async def on_event(self, event: PbxEvent) -> None:
        self.log.append(event)

    async def on_resync(self, pbx: str, channels: list[ChannelSnapshot], at: datetime) -> None:
        assert pbx == "pbx-test" and at.tzinfo is UTC
        self.log.append(channels)

    @property
    def events(self) -> list[PbxEvent]:
        return [e for e in self.log if isinstance(e, PbxEvent)]

    @property
    def trace_events(self) -> list[PbxEvent]:
        return [e for e in self.events if e.name not in SESSION_EVENTS]

    @property
    def resyncs(self) -> list[list[ChannelSnapshot]]:
        return [e for e in self.log if isinstance(e, list)]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    async with FakeAmi(speed=20) as server:
        yield server


@contextlib.asynccontextmanager
async def running(connector: AmiConnector) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(connector.run())
    try:
        yield task
    finally:
        await connector.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make_connector(fake: FakeAmi, **overrides: object) -> AmiConnector:
    hub = Hub()
    return AmiConnector(settings_for(fake, **overrides), hub.on_event, hub.on_resync)


# -- logging in ----------------------------------------------------------------------------


async def test_login_then_resync_before_anything_else(fake: FakeAmi) -> None:
    hub = Hub()
    connector = AmiConnector(settings_for(fake), hub.on_event, hub.on_resync)
    async with running(connector):
        await eventually(lambda: connector.connected and hub.resyncs)
        login = fake.actions[0]
        assert (login.name, login.get("Username"), login.get("Secret"), login.get("Events")) == (
            "Login",
            "hub",
            "hubsecret",
            "on",
        )
        assert [a.name for a in fake.actions[1:3]] == ["CoreShowChannels", "QueueStatus"]
        assert hub.log[0] == []  # nothing live: an empty snapshot, before any event


async def test_rejected_login_is_reported_clearly_and_retried_with_backoff(
    fake: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connectors.ami")
    fake.secret = "the-right-one"
    hub = Hub()
    connector = AmiConnector(settings_for(fake, secret="a-wrong-one"), hub.on_event, hub.on_resync)
    async with running(connector):
        await eventually(lambda: len(fake.actions_named("Login")) >= 5)
        assert not connector.connected
        assert isinstance(connector.last_error, AmiLoginRejected)
        assert "'hub' rejected: Authentication failed" in str(connector.last_error)
        rejected = [r for r in caplog.records if r.getMessage() == "AMI login rejected"]
        assert rejected and rejected[0].levelno == logging.ERROR
        assert rejected[0].fields["pbx"] == "pbx-test"  # type: ignore[attr-defined]
        assert "a-wrong-one" not in caplog.text  # secrets never logged

        # Attempts back off exponentially (0.05 s doubling to the 0.2 s cap, jittered 50-100%).
        times = [a.at for a in fake.actions_named("Login")]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(gap >= 0.025 for gap in gaps)
        assert gaps[3] > gaps[0]

        fake.secret = "a-wrong-one"  # the PBX admin fixes the account: the next retry gets in
        await eventually(lambda: connector.connected)
        assert connector.last_error is None


# -- streaming -----------------------------------------------------------------------------


async def test_trace_events_arrive_in_order_with_every_header(fake: FakeAmi) -> None:
    hub = Hub()
    connector = AmiConnector(settings_for(fake), hub.on_event, hub.on_resync)
    async with running(connector):
        await eventually(lambda: connector.connected and hub.resyncs)
        replay = fake.play("inbound_queue_answered", speed=50)
        await replay.wait()
        await eventually(lambda: len(hub.trace_events) == len(replay.sent))

    assert replay.lost == [] and len(replay.sent) > 100
    received = hub.trace_events
    assert [list(e.fields.items()) for e in received] == [list(p.headers.items()) for p in replay.sent]
    assert {e.pbx for e in received} == {"pbx-test"}
    assert [e.name for e in received] == [p.headers["Event"] for p in replay.sent]
    assert all(e.received_at.tzinfo is UTC for e in received)
    assert [e.received_at for e in received] == sorted(e.received_at for e in received)


async def test_malformed_frames_are_skipped_and_the_connection_stays_up(
    fake: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.ami")
    hub = Hub()
    connector = AmiConnector(settings_for(fake, max_frame_bytes=4096), hub.on_event, hub.on_resync)
    garbage = [
        b"\x00\x01\x02\xff\xfe binary garbage\r\n\r\n",
        b"no colon here\r\nnor here\r\n\r\n",
        b"Event: HalfBroken\r\nThisLineHasNoSeparator\r\nUniqueid: 1.2\r\n\r\n",
        b"Event: Huge\r\nPayload: " + b"x" * 10_000 + b"\r\n\r\n",
        b"Event: BadName\r\n\xff\xfeKey: v\r\n\r\n",
        b"Uniqueid: 1.2\r\nChannel: neither Event nor Response\r\n\r\n",
    ]
    async with running(connector):
        await eventually(lambda: connector.connected and hub.resyncs)
        replay = fake.play("inbound_direct_answered", speed=50)
        await eventually(lambda: len(hub.trace_events) >= 10)
        for raw in garbage:
            assert fake.inject(raw) == 1
        await replay.wait()
        await eventually(lambda: len(hub.trace_events) == len(replay.sent))
        assert connector.connected

    assert [e.fields for e in hub.trace_events] == [p.headers for p in replay.sent]
    assert len(fake.sessions) == 1  # never reconnected
    skipped = [r for r in caplog.records if r.getMessage() == "malformed AMI frame skipped"]
    assert len(skipped) == len(garbage)
    reasons = {r.fields["reason"] for r in skipped}  # type: ignore[attr-defined]
    assert reasons == {
        "binary data (NUL byte)",
        "header line without ': '",
        "frame over 4096 bytes",
        "invalid header name",
        "neither Event nor Response",
    }


# -- supervision ---------------------------------------------------------------------------


async def test_dead_peer_is_detected_within_ping_interval_plus_timeout_and_reconnected(fake: FakeAmi) -> None:
    hub = Hub()
    connector = AmiConnector(settings_for(fake), hub.on_event, hub.on_resync)
    async with running(connector):
        await eventually(lambda: connector.connected and hub.resyncs)
        loop = asyncio.get_running_loop()
        paused_at = loop.time()
        fake.pause_pongs()  # the TCP connection stays up; Asterisk just stopped answering
        first = fake.sessions[0]
        await eventually(lambda: not first.open, timeout=3)
        assert first.closed_by == "client"
        assert first.closed_at is not None
        assert first.closed_at - paused_at <= PING_INTERVAL + PING_TIMEOUT + 0.15

        await eventually(lambda: connector.connected and len(hub.resyncs) == 2, timeout=3)
        assert len(fake.logged_in_sessions) == 1 and connector.connects == 2


async def test_a_peer_streaming_events_is_alive_even_while_its_pong_is_late(fake: FakeAmi) -> None:
    """A burst delays the Pong behind the events before it: the connection must not be dropped
    (that would lose the burst); once the peer is silent as well, it is dead."""
    hub = Hub()
    connector = AmiConnector(settings_for(fake), hub.on_event, hub.on_resync)
    async with running(connector):
        await eventually(lambda: connector.connected and hub.resyncs)
        fake.pause_pongs()
        first = fake.sessions[0]
        loop = asyncio.get_running_loop()
        talking_until = loop.time() + 2 * (PING_INTERVAL + PING_TIMEOUT)
        while loop.time() < talking_until:
            fake.inject(b"Event: PeerStatus\r\nPeer: PJSIP/101\r\nPeerStatus: Reachable\r\n\r\n")
            await asyncio.sleep(0.05)
        assert first.open and connector.connects == 1
        await eventually(lambda: not first.open, timeout=PING_INTERVAL + PING_TIMEOUT + 1)
        assert first.closed_by == "client"


async def test_after_a_cut_the_connector_resyncs_live_channels_before_later_events(fake: FakeAmi) -> None:
    # Speed 5 here: the trace's 4.5 s of talk become 0.9 s, room for the outage and the backoff.
    # Timeline (s): ringing 0-0.6 | answer at 0.6 (lost in the outage) | talk 0.7-1.6 | hang-up 1.6.
    hub = Hub()
    model_at_resync: list[set[tuple[str, ...]]] = []

    async def on_resync(pbx: str, channels: list[ChannelSnapshot], at: datetime) -> None:
        model_at_resync.append({_row(c) for c in fake.live_channels()})
        await hub.on_resync(pbx, channels, at)

    connector = AmiConnector(settings_for(fake), hub.on_event, on_resync)
    async with running(connector):
        await eventually(lambda: connector.connected and hub.resyncs)
        replay = fake.play("inbound_queue_answered", speed=5)
        await eventually(lambda: [e.name for e in hub.events].count("DialState") == 2)  # both phones ringing
        cut_at = asyncio.get_running_loop().time()
        fake.cut(down_for=0.6)
        await eventually(lambda: len(hub.resyncs) == 2, timeout=3)
        await replay.wait()
        await eventually(lambda: len(hub.trace_events) == len(replay.sent))

    # Retried while the PBX was down, with backoff rather than a hot loop.
    assert fake.refused and all(b - a >= 0.02 for a, b in zip([cut_at, *fake.refused], fake.refused, strict=False))
    # The resync reports exactly the fake PBX's live channels: the answered call, both legs up.
    snapshot = hub.resyncs[1]
    assert {_row(c) for c in snapshot} == model_at_resync[1]
    assert len(snapshot) == 4 and {c.state for c in snapshot} == {"Up"}
    assert {c.linkedid for c in snapshot} == {"1795476470.0"}
    assert all(c.duration_seconds >= 2 and c.context for c in snapshot)  # ~1 s of replay at speed 5
    # Events lost in the outage never arrive; the resync sits between before-cut and after-reconnect.
    assert replay.lost and len(hub.trace_events) == len(replay.sent)
    resync_index = hub.log.index(snapshot)
    reconnected_at = fake.sessions[-1].accepted_at
    before = [e for e in hub.log[:resync_index] if isinstance(e, PbxEvent) and e.name not in SESSION_EVENTS]
    after = [e for e in hub.log[resync_index + 1 :] if isinstance(e, PbxEvent) and e.name not in SESSION_EVENTS]
    assert [e.fields for e in before] == [p.headers for p in replay.sent if p.at < cut_at]
    assert [e.fields for e in after] == [p.headers for p in replay.sent if p.at > reconnected_at]
    assert [e.name for e in after].count("Hangup") == 4


def _row(c: ChannelSnapshot | FakeChannel) -> tuple[str, ...]:
    return (c.channel, c.uniqueid, c.linkedid, c.state, c.bridge_id, c.application, c.application_data)


# -- click-to-call ---------------------------------------------------------------------------


async def test_originate_returns_the_originate_response(fake: FakeAmi) -> None:
    fake.originate_trace = "outbound_click2call"  # the PBX plays the recorded click-to-call
    hub = Hub()
    connector = AmiConnector(settings_for(fake), hub.on_event, hub.on_resync)
    async with running(connector):
        await eventually(lambda: connector.connected)
        result = await connector.originate(
            channel="Local/101@agents/n",
            exten="74957654321",
            context="from-internal",
            caller_id='"Anna Petrova" <101>',
            variables={"HUB_ORIGINATE_ID": "c2c-0001"},
            timeout=20,
        )
        await fake.replays[0].wait()
        await eventually(lambda: len(hub.trace_events) == len(fake.replays[0].sent) - 1)

    assert isinstance(result, OriginateResult)
    assert (result.success, result.response, result.reason, result.reason_text) == (True, "Success", "4", "answered")
    assert result.channel.startswith("Local/101@agents-") and result.uniqueid
    [sent] = fake.actions_named("Originate")
    assert sent.get("ActionID") == result.action_id and result.action_id.startswith("hub-")
    assert sent.get("Async") == "true"
    assert sent.get_all("Variable") == ["HUB_ORIGINATE_ID=c2c-0001"]
    assert (sent.get("Channel"), sent.get("Exten"), sent.get("Context")) == (
        "Local/101@agents/n",
        "74957654321",
        "from-internal",
    )
    assert (sent.get("CallerID"), sent.get("Timeout"), sent.get("Priority")) == ('"Anna Petrova" <101>', "20000", "1")
    # The call's events stream as usual; the OriginateResponse answered originate() instead.
    names = [e.name for e in hub.trace_events]
    assert "OriginateResponse" not in names and "Newchannel" in names and "Hangup" in names


async def test_failed_originate_reports_the_reason(fake: FakeAmi) -> None:
    fake.originate_response = "Failure"
    connector = make_connector(fake)
    async with running(connector):
        await eventually(lambda: connector.connected)
        result = await connector.originate("PJSIP/104", "4953334455", "from-internal", "104", {}, timeout=5)
    assert (result.success, result.reason_text) == (False, "failed")
    assert fake.actions_named("Originate")[0].get_all("Variable") == []


async def test_originate_value_with_a_line_break_is_refused_before_sending(fake: FakeAmi) -> None:
    connector = make_connector(fake)
    async with running(connector):
        await eventually(lambda: connector.connected)
        with pytest.raises(ValueError, match="line break"):
            await connector.originate("PJSIP/101", "100", "x", '"A"\r\nAction: Command', {}, timeout=5)
    assert fake.actions_named("Originate") == [] and fake.actions_named("Command") == []


async def test_originate_while_disconnected_fails_and_is_never_sent_after_reconnect(fake: FakeAmi) -> None:
    hub = Hub()
    connector = AmiConnector(settings_for(fake), hub.on_event, hub.on_resync)
    args = ("PJSIP/101", "74951234567", "from-internal", "101", {"HUB_ORIGINATE_ID": "c2c-x"}, 20)
    async with running(connector):
        await eventually(lambda: connector.connected)

        # Cut under its feet: written into a connection that is already gone, never answered.
        fake.cut(down_for=0.3)
        with pytest.raises(AmiNotConnected):
            await connector.originate(*args)
        # Requested while the link is down: refused at once, not queued.
        assert not connector.connected
        started = asyncio.get_running_loop().time()
        with pytest.raises(AmiNotConnected, match="not connected"):
            await connector.originate(*args)
        assert asyncio.get_running_loop().time() - started < 0.05

        await eventually(lambda: connector.connected and connector.connects == 2, timeout=3)
        await asyncio.sleep(PING_INTERVAL + 0.1)  # time for anything queued to (wrongly) go out

    assert fake.actions_named("Originate") == []
    assert [a.name for a in fake.actions if a.session == fake.sessions[-1].id][:3] == [
        "Login",
        "CoreShowChannels",
        "QueueStatus",
    ]


async def test_stop_logs_off_and_does_not_reconnect(fake: FakeAmi) -> None:
    connector = make_connector(fake)
    task = asyncio.create_task(connector.run())
    await eventually(lambda: connector.connected)
    await connector.stop()
    await asyncio.wait_for(task, 1)
    assert fake.actions[-1].name == "Logoff"
    assert fake.sessions[0].closed_by == "logoff" and not connector.connected
    await asyncio.sleep(0.2)
    assert len(fake.sessions) == 1


# -- the fake itself: concurrent replays for the benchmark -------------------------------


async def test_renumbered_replays_are_independent_calls(fake: FakeAmi) -> None:
    replays = [fake.play("inbound_direct_answered", speed=50, renumber=True) for _ in range(3)]
    await eventually(lambda: all(any(p.name == "BridgeEnter" for p in r.played) for r in replays))
    linkedids = [{p.headers["Linkedid"] for p in r.played if "Linkedid" in p.headers} for r in replays]
    assert all(len(ids) == 1 for ids in linkedids) and len(set.union(*linkedids)) == 3
    channels = [{p.headers["Channel"] for p in r.played if p.name == "Newchannel"} for r in replays]
    assert not channels[0] & channels[1] and not channels[1] & channels[2]
    assert len(fake.live_channels()) == 3 * 4
    await asyncio.gather(*(r.wait() for r in replays))
    assert fake.live_channels() == []


# -- framing (property-based) ----------------------------------------------------------------

_names = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,11}", fullmatch=True)
_values = st.text(st.characters(min_codepoint=32, max_codepoint=0x44F), max_size=30)
_frames = st.lists(
    st.tuples(st.sampled_from(["Event", "Response"]), _names, st.lists(st.tuples(_names, _values), max_size=6)),
    min_size=1,
    max_size=8,
)


def _wire(frames: list[tuple[str, str, list[tuple[str, str]]]]) -> bytes:
    out = b"Asterisk Call Manager/11.0.0\r\n"
    for kind, name, headers in frames:
        out += "".join(f"{k}: {v}\r\n" for k, v in [(kind, name), *headers]).encode() + b"\r\n"
    return out


@given(_frames, st.lists(st.integers(min_value=1, max_value=64), max_size=20))
def test_frames_survive_any_split_of_the_stream(
    frames: list[tuple[str, str, list[tuple[str, str]]]], cuts: list[int]
) -> None:
    data = _wire(frames)
    reader, out, pos = FrameReader(64 * 1024), [], 0
    for size in cuts:
        out += reader.feed(data[pos : pos + size])
        pos += size
    out += reader.feed(data[pos:])
    assert isinstance(out[0], Banner) and out[0].version == "11.0.0"
    parsed = [f for f in out[1:] if isinstance(f, Frame)]
    assert [f.fields for f in parsed] == [_joined([(kind, name), *headers]) for kind, name, headers in frames]


def _joined(headers: list[tuple[str, str]]) -> dict[str, str]:
    """The headers as a Frame holds them: a repeated name's values joined with a line break."""
    fields: dict[str, str] = {}
    for name, value in headers:
        fields[name] = f"{fields[name]}\n{value}" if name in fields else value
    return fields


@given(st.binary(max_size=400), st.lists(st.integers(min_value=1, max_value=50), max_size=10))
def test_garbage_never_raises_and_the_next_good_frame_is_read(junk: bytes, cuts: list[int]) -> None:
    reader = FrameReader(256)
    reader.feed(b"Asterisk Call Manager/11.0.0\r\n")
    data, pos, out = junk + b"\r\n\r\nEvent: Good\r\nUniqueid: 1.1\r\n\r\n", 0, []
    for size in cuts:
        out += reader.feed(data[pos : pos + size])
        pos += size
    out += reader.feed(data[pos:])
    assert all(isinstance(x, Frame | Malformed) for x in out)
    assert isinstance(out[-1], Frame) and out[-1].fields == {"Event": "Good", "Uniqueid": "1.1"}
