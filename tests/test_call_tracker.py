"""The call tracker against recorded Asterisk traces: what operators see, and what the call log says."""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_core.telephony.channels import extension_of, interface_extension, is_extension
from crm_core.telephony.events import (
    Answered,
    CallFinished,
    CallKey,
    CallRecord,
    ChannelSnapshot,
    PbxEvent,
    Ringing,
    RingingStopped,
    TrackerOutput,
)
from crm_core.telephony.tracker import CallTracker
from tests.ami_traces import (
    REPLAY_START,
    TraceFrame,
    expected,
    is_event,
    load_trace,
    parse_frame,
    trace_events,
    trace_names,
)

TRACES = trace_names()
COMPARED = (
    "direction",
    "caller",
    "caller_name",
    "did",
    "queue",
    "status",
    "reason",
    "rang",
    "answered_by",
    "transferred_to",
    "final_operator",
    "operator",
    "callee",
    "originate_id",
)
# Absent from an expected call, these must still be empty rather than invented.
ABSENT_MEANS_NONE = ("transferred_to", "originate_id")


def run(events: list[PbxEvent], tracker: CallTracker | None = None) -> list[TrackerOutput]:
    tracker = tracker or CallTracker(region="RU")
    return [output for event in events for output in tracker.feed(event)]


def records(outputs: list[TrackerOutput]) -> list[CallRecord]:
    return [output.record for output in outputs if isinstance(output, CallFinished)]


def pair_up(expected_calls: list[dict[str, Any]], logged: list[CallRecord]) -> list[tuple[dict[str, Any], CallRecord]]:
    if len(expected_calls) == 1:
        return [(expected_calls[0], logged[0])]
    by_caller = {record.caller: record for record in logged}
    return [(call, by_caller[call["caller"]]) for call in expected_calls]


def assert_matches(want: dict[str, Any], record: CallRecord) -> None:
    for field in COMPARED:
        if field in want:
            assert getattr(record, field) == want[field], field
        elif field in ABSENT_MEANS_NONE:
            assert getattr(record, field) is None, field
    if "talk_seconds" in want:
        assert abs(record.talk_seconds - want["talk_seconds"]) <= 1, (record.talk_seconds, want["talk_seconds"])
    if record.status == "missed":
        assert record.talk_seconds == 0 and record.answered_at is None


# -- the call log ------------------------------------------------------------------------------


@pytest.mark.parametrize("speed", [1, 50])
@pytest.mark.parametrize("name", TRACES)
def test_every_trace_logs_the_calls_asterisk_reported(name: str, speed: int) -> None:
    logged = records(run(trace_events(name, speed=speed)))
    want = expected(name)
    assert len(logged) == len(want)
    assert len({record.key for record in logged}) == len(logged)
    for call, record in pair_up(want, logged):
        assert_matches(call, record)


@pytest.mark.parametrize("speed", [0.25, 1, 50, 1000])
def test_talk_time_is_the_pbxs_whatever_the_replay_speed(speed: float) -> None:
    (record,) = records(run(trace_events("inbound_blind_transfer", speed=speed)))
    assert abs(record.talk_seconds - 12) <= 1
    assert record.started_at == datetime(2026, 11, 23, 23, 30, 36, tzinfo=UTC)
    assert record.ended_at == datetime(2026, 11, 23, 23, 30, 51, tzinfo=UTC)
    assert record.answered_at is not None and abs((record.answered_at - record.started_at).total_seconds() - 3) < 1


def test_call_times_are_utc_on_the_pbxs_clock() -> None:
    (record,) = records(run(trace_events("inbound_queue_answered")))
    for moment in (record.started_at, record.answered_at, record.ended_at):
        assert moment is not None and moment.utcoffset() == timedelta(0)
    assert record.started_at == datetime(2026, 11, 23, 23, 27, 50, tzinfo=UTC)
    assert record.hangup_cause == "Normal Clearing"


def test_load_of_twenty_callers_leaves_no_call_open() -> None:
    tracker = CallTracker()
    logged = records(run(trace_events("load_20_callers", speed=50), tracker))
    assert Counter(record.status for record in logged) == {"missed": 17, "answered": 3}
    assert tracker.active_calls() == []


# -- screen-pops -------------------------------------------------------------------------------


def pops(outputs: list[TrackerOutput]) -> list[tuple[str, str, str | None]]:
    """(kind, extension, reason) per pop event, in order."""
    seen: list[tuple[str, str, str | None]] = []
    for output in outputs:
        if isinstance(output, Ringing):
            seen.append(("ring", output.extension, None))
        elif isinstance(output, RingingStopped):
            seen.append(("stop", output.extension, output.reason))
        elif isinstance(output, Answered):
            seen.append(("answer", output.extension, None))
    return seen


@pytest.mark.parametrize("name", TRACES)
def test_every_pop_is_opened_once_and_withdrawn_once(name: str) -> None:
    outputs = run(trace_events(name))
    open_pops: dict[tuple[CallKey, str], Ringing] = {}
    rung: set[tuple[CallKey, str]] = set()
    for output in outputs:
        if isinstance(output, Ringing):
            pop = (output.key, output.extension)
            assert pop not in rung, f"second pop for {pop}"
            rung.add(pop)
            open_pops[pop] = output
        elif isinstance(output, RingingStopped):
            assert open_pops.pop((output.key, output.extension), None) is not None
            assert output.at >= REPLAY_START
        elif isinstance(output, CallFinished):
            assert not [pop for pop in open_pops if pop[0] == output.record.key], "pop left open at the end"
            assert {(output.record.key, extension) for extension in output.record.rang} <= rung
    assert not open_pops


def test_queue_call_answered_by_101_withdraws_102_as_answered_elsewhere() -> None:
    outputs = run(trace_events("inbound_queue_answered"))
    assert pops(outputs) == [
        ("ring", "101", None),
        ("ring", "102", None),
        ("stop", "101", "answered"),
        ("stop", "102", "answered_elsewhere"),
        ("answer", "101", None),
    ]
    (elsewhere,) = [o for o in outputs if isinstance(o, RingingStopped) and o.extension == "102"]
    assert elsewhere.by == "101"
    ringing = [o for o in outputs if isinstance(o, Ringing)]
    assert {(r.caller, r.caller_name, r.did, r.queue, r.direction) for r in ringing} == {
        ("+74951234567", "Ivan Sidorov", "4950000000", "support", "inbound")
    }


def test_abandoned_queue_call_withdraws_pops_as_caller_hung_up() -> None:
    outputs = run(trace_events("inbound_queue_missed"))
    assert [p for p in pops(outputs) if p[0] == "stop"] == [
        ("stop", "201", "caller_hung_up"),
        ("stop", "202", "caller_hung_up"),
    ]


def test_unanswered_direct_call_withdraws_the_pop_as_no_answer() -> None:
    assert pops(run(trace_events("inbound_direct_noanswer"))) == [("ring", "104", None), ("stop", "104", "no_answer")]


def test_busy_extension_never_pops() -> None:
    assert pops(run(trace_events("inbound_direct_busy"))) == []


def test_blind_transfer_pops_the_new_operator() -> None:
    assert pops(run(trace_events("inbound_blind_transfer"))) == [
        ("ring", "102", None),
        ("stop", "102", "answered"),
        ("answer", "102", None),
        ("ring", "101", None),
        ("stop", "101", "answered"),
        ("answer", "101", None),
    ]


def test_click_to_call_pops_the_operator_with_the_number_once_known() -> None:
    outputs = run(trace_events("outbound_click2call"))
    assert pops(outputs) == [("ring", "101", None), ("stop", "101", "answered"), ("answer", "101", None)]
    (ringing,) = [o for o in outputs if isinstance(o, Ringing)]
    assert ringing.direction == "outbound"


# -- replays and reconnects ------------------------------------------------------------------------


def comparable(outputs: list[TrackerOutput]) -> list[Any]:
    return [output.record if isinstance(output, CallFinished) else output for output in outputs]


@pytest.mark.parametrize("name", TRACES)
def test_events_delivered_twice_change_nothing(name: str) -> None:
    events = trace_events(name)
    once = run(events)
    twice = run([event for event in events for _ in range(2)])
    assert comparable(twice) == comparable(once)


@pytest.mark.parametrize("name", ["inbound_queue_answered", "load_20_callers"])
def test_a_whole_trace_replayed_after_a_reconnect_logs_nothing_again(name: str) -> None:
    tracker = CallTracker()
    events = trace_events(name)
    first = run(events, tracker)
    again = run(events, tracker)
    assert records(first) and again == []


def cut(name: str, fraction: float) -> tuple[list[PbxEvent], list[PbxEvent]]:
    events = trace_events(name)
    middle = math.floor(len(events) * fraction)
    return events[:middle], events[middle:]


@pytest.mark.parametrize("fraction", [0.2, 0.35, 0.5, 0.7, 0.9])
def test_a_queue_call_lost_in_an_outage_is_finished_once_by_the_resync(fraction: float) -> None:
    tracker = CallTracker()
    before, after = cut("inbound_queue_answered", fraction)
    outputs = run(before, tracker)
    assert tracker.active_calls(), "every cut point chosen falls while the call is in progress"
    at = before[-1].received_at + timedelta(seconds=1)
    resynced = tracker.resync("pbx1", [], at)
    (record,) = records(resynced)
    answer = next((e for e in before if e.name == "DialEnd" and e.get("DialStatus") == "ANSWER"), None)
    if answer is not None:
        assert (record.status, record.reason, record.answered_by) == ("answered", None, "101")
        talked_until_the_resync = (at - answer.received_at).total_seconds()
        assert abs(record.talk_seconds - talked_until_the_resync) <= 1
    else:
        assert (record.status, record.reason, record.answered_by) == ("missed", "abandoned", None)
        assert [p for p in pops(resynced) if p[0] == "stop"] == [("stop", e, "ended") for e in record.rang]
    all_outputs = outputs + resynced + run(after, tracker)
    assert len(records(all_outputs)) == 1
    assert tracker.active_calls() == []
    assert tracker.resync("pbx1", [], at + timedelta(seconds=5)) == []


def test_a_direct_call_lost_while_ringing_is_a_missed_no_answer() -> None:
    tracker = CallTracker()
    events = trace_events("inbound_direct_noanswer")
    ringing = next(i for i, e in enumerate(events) if e.name == "Newstate" and e.get("ChannelStateDesc") == "Ringing")
    run(events[: ringing + 1], tracker)
    outputs = tracker.resync("pbx1", [], events[ringing].received_at + timedelta(seconds=30))
    assert pops(outputs) == [("stop", "104", "ended")]
    (record,) = records(outputs)
    assert (record.status, record.reason, record.rang) == ("missed", "no_answer", ["104"])
    assert record.caller == "+74953334455"


def live_channels(frames: list[TraceFrame], until: float) -> list[ChannelSnapshot]:
    """What CoreShowChannels would list at ``until`` seconds into the trace."""
    live: dict[str, dict[str, Any]] = {}
    for frame in frames:
        if frame.t > until or frame.direction != "in" or not is_event(frame.raw):
            continue
        headers = parse_frame(frame.raw)
        uniqueid = headers.get("Uniqueid", "")
        if headers["Event"] == "Newchannel":
            live[uniqueid] = {**headers, "created": frame.t, "bridge": ""}
        elif uniqueid in live and headers["Event"] == "Hangup":
            del live[uniqueid]
        elif uniqueid in live:
            live[uniqueid].update({k: v for k, v in headers.items() if k in ("ChannelStateDesc", "CallerIDNum")})
            if headers["Event"] in ("BridgeEnter", "BridgeLeave"):
                live[uniqueid]["bridge"] = headers["BridgeUniqueid"] if headers["Event"] == "BridgeEnter" else ""
    return [
        ChannelSnapshot(
            channel=c["Channel"],
            uniqueid=uniqueid,
            linkedid=c["Linkedid"],
            state=c["ChannelStateDesc"],
            caller=c["CallerIDNum"],
            connected=c.get("ConnectedLineNum", ""),
            context=c["Context"],
            exten=c["Exten"],
            application="",
            duration_seconds=int(until - c["created"]),
            bridge_id=c["bridge"],
        )
        for uniqueid, c in live.items()
    ]


def test_a_resync_takes_up_a_live_call_it_never_saw_and_later_events_finish_it() -> None:
    frames = load_trace("inbound_queue_answered")
    talking = 6.0  # 101 answered at 4 s; the caller hangs up at 9 s
    tracker = CallTracker()
    at = REPLAY_START + timedelta(seconds=talking)
    taken_up = tracker.resync("pbx1", live_channels(frames, talking), at)
    assert pops(taken_up) == [("answer", "101", None)]  # pop-on-answer screens pop again
    assert tracker.active_calls() == [CallKey("pbx1", "1795476470.0")]
    later = [e for e in trace_events("inbound_queue_answered") if e.received_at > at]
    (record,) = records(run(later, tracker))
    assert (record.direction, record.caller, record.did, record.status) == (
        "inbound",
        "+74951234567",
        "4950000000",
        "answered",
    )
    assert (record.answered_by, record.final_operator) == ("101", "101")
    assert 4 <= record.talk_seconds <= 9  # answered no earlier than 101's leg was created, 3 s before
    assert tracker.active_calls() == []


def test_a_resync_while_ringing_pops_the_ringing_phones_of_a_call_it_never_saw() -> None:
    frames = load_trace("inbound_queue_missed")
    tracker = CallTracker()
    outputs = tracker.resync("pbx1", live_channels(frames, 4.0), REPLAY_START + timedelta(seconds=4))
    assert sorted(pops(outputs)) == [("ring", "201", None), ("ring", "202", None)]
    later = [e for e in trace_events("inbound_queue_missed") if e.received_at > REPLAY_START + timedelta(seconds=4)]
    finished = run(later, tracker)
    (record,) = records(finished)
    assert (record.status, record.reason, record.caller) == ("missed", "abandoned", "+74957770011")
    assert sorted(p for p in pops(finished)) == [("stop", "201", "caller_hung_up"), ("stop", "202", "caller_hung_up")]


def test_a_resync_that_lists_a_known_call_changes_nothing() -> None:
    frames = load_trace("inbound_queue_answered")
    tracker = CallTracker()
    events = trace_events("inbound_queue_answered")
    at = REPLAY_START + timedelta(seconds=6)
    outputs = run([e for e in events if e.received_at <= at], tracker)
    assert tracker.resync("pbx1", live_channels(frames, 6.0), at) == []
    outputs += run([e for e in events if e.received_at > at], tracker)
    assert comparable(outputs) == comparable(run(events))


# -- other channel technologies ----------------------------------------------------------------------

_LOCAL_AGENT_LEG = re.compile(r"Local/(\d+)@agents(?:-[a-z]+)?-([0-9a-f]{8});[12]")
_LOCAL_MEMBER = re.compile(r"Local/(\d+)@agents(?:-[a-z]+)?/n")


def as_pjsip(frames: list[TraceFrame]) -> list[TraceFrame]:
    """The same calls on a PBX whose phones are PJSIP endpoints rather than Local channels."""
    return [
        replace(frame, raw=_LOCAL_MEMBER.sub(r"PJSIP/\1", _LOCAL_AGENT_LEG.sub(r"PJSIP/\1-\2", frame.raw)))
        for frame in frames
    ]


@pytest.mark.parametrize("name", TRACES)
def test_pjsip_channel_names_give_the_same_call_log(name: str) -> None:
    frames = as_pjsip(load_trace(name))
    assert not any(_LOCAL_AGENT_LEG.search(f.raw) or _LOCAL_MEMBER.search(f.raw) for f in frames)
    assert any("PJSIP/" in f.raw for f in frames if f.direction == "in" and is_event(f.raw))
    outputs = run(trace_events(name, frames=frames))
    assert comparable(outputs) == comparable(run(trace_events(name)))
    for call, record in pair_up(expected(name), records(outputs)):
        assert_matches(call, record)


@pytest.mark.parametrize(
    ("name", "extension"),
    [
        ("Local/101@agents-00000001;1", "101"),
        ("Local/101@agents/n", "101"),
        ("PJSIP/101-0000000a", "101"),
        ("PJSIP/101-0000001", "101"),
        ("SIP/2001-00ab12cd", "2001"),
        ("PJSIP/101", "101"),
        ("PJSIP/my-trunk-00000003", "my-trunk"),
        ("Local/4950000000@from-trunk-00000000;2", "4950000000"),
    ],
)
def test_extension_is_the_resource_of_any_channel_name(name: str, extension: str) -> None:
    assert extension_of(name) == extension


def test_queue_member_interfaces_name_extensions() -> None:
    assert interface_extension("Local/101@agents/n") == "101"
    assert interface_extension("PJSIP/101") == "101"
    assert is_extension("101") and not is_extension("4950000000") and not is_extension("my-trunk")


# -- garbage -------------------------------------------------------------------------------------------

HANDLED = [
    "Newchannel",
    "Newstate",
    "NewCallerid",
    "NewConnectedLine",
    "DialBegin",
    "DialEnd",
    "DialState",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
    "BridgeEnter",
    "BridgeLeave",
    "BlindTransfer",
    "AttendedTransfer",
    "LocalBridge",
    "Hangup",
    "HangupRequest",
    "VarSet",
    "Cdr",
    "OriginateResponse",
]
HEADERS = [
    "Channel",
    "Uniqueid",
    "Linkedid",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "Context",
    "Exten",
    "DestChannel",
    "DestUniqueid",
    "DestLinkedid",
    "DialStatus",
    "Interface",
    "Queue",
    "BridgeUniqueid",
    "Variable",
    "Value",
    "UniqueID",
    "EndTime",
    "Response",
    "Extension",
    "TransfereeLinkedid",
    "TransferTargetChannel",
    "LocalOneLinkedid",
    "LocalOneUniqueid",
    "Cause-txt",
]
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "1795476470.0",
            "1795476470.1",
            "Local/101@agents-00000001;1",
            "PJSIP/102-0000000a",
            "Local/4950000000@from-trunk-00000000;2",
            "from-trunk",
            "agents",
            "Ringing",
            "Up",
            "ANSWER",
            "CANCEL",
            "BUSY",
            "RINGING",
            "2026-11-23 23:27:58",
            "anonymous",
            "+74951234567",
            "Local/101@agents/n",
            "b-1",
        ]
    ),
)
EVENTS = st.builds(
    lambda name, fields, seconds: PbxEvent("pbx1", name, fields, REPLAY_START + timedelta(seconds=seconds)),
    st.one_of(st.sampled_from(HANDLED), st.text(max_size=20)),
    st.dictionaries(st.one_of(st.sampled_from(HEADERS), st.text(max_size=10)), VALUES, max_size=12),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
SNAPSHOTS = st.builds(
    ChannelSnapshot,
    channel=VALUES,
    uniqueid=VALUES,
    linkedid=VALUES,
    state=VALUES,
    caller=VALUES,
    connected=VALUES,
    context=VALUES,
    exten=VALUES,
    application=VALUES,
    duration_seconds=st.integers(min_value=-(10**6), max_value=10**9),
    bridge_id=VALUES,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENTS, max_size=40), snapshots=st.lists(SNAPSHOTS, max_size=6))
def test_garbage_events_never_raise(caplog: pytest.LogCaptureFixture, events: list[PbxEvent], snapshots: list) -> None:
    caplog.clear()
    tracker = CallTracker()
    with caplog.at_level(logging.ERROR, logger="crm_core.telephony.tracker"):
        for event in events:
            assert isinstance(tracker.feed(event), list)
        assert isinstance(tracker.resync("pbx1", snapshots, REPLAY_START), list)
        for event in events:
            tracker.feed(event)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_events_without_linkedid_or_of_unknown_kinds_are_skipped() -> None:
    tracker = CallTracker()
    at = REPLAY_START
    assert tracker.feed(PbxEvent("pbx1", "Hangup", {"Uniqueid": "1.1"}, at)) == []
    assert tracker.feed(PbxEvent("pbx1", "Newchannel", {"Channel": "PJSIP/101-00000001"}, at)) == []
    assert tracker.feed(PbxEvent("pbx1", "PeerStatus", {"Linkedid": "1.1"}, at)) == []
    assert tracker.feed(PbxEvent("pbx1", "Cdr", {"UniqueID": "nope", "EndTime": "yesterday"}, at)) == []
    assert tracker.active_calls() == []


def test_recording_file_and_originate_id_come_from_channel_variables() -> None:
    events = trace_events("inbound_direct_answered")
    answered = next(e for e in events if e.name == "DialEnd" and e.get("DialStatus") == "ANSWER")
    mixmonitor = PbxEvent(
        "pbx1",
        "VarSet",
        {**answered.fields, "Variable": "MIXMONITOR_FILENAME", "Value": "/var/spool/asterisk/monitor/x.wav"},
        answered.received_at,
    )
    index = events.index(answered)
    (record,) = records(run(events[: index + 1] + [mixmonitor] + events[index + 1 :]))
    assert record.recording_file == "/var/spool/asterisk/monitor/x.wav"
    (click,) = records(run(trace_events("outbound_click2call")))
    assert click.originate_id == "c2c-0001" and click.recording_file is None


def test_active_calls_lists_calls_in_progress_per_pbx() -> None:
    tracker = CallTracker()
    events = trace_events("inbound_queue_answered")
    run(events[: len(events) // 2], tracker)
    assert tracker.active_calls() == [CallKey("pbx1", "1795476470.0")]
    assert tracker.active_calls("pbx1") == tracker.active_calls()
    assert tracker.active_calls("other") == []
    run(trace_events("inbound_queue_answered", pbx="other")[:10], tracker)
    assert tracker.active_calls("other") == [CallKey("other", "1795476470.0")]


@st.composite
def damaged_traces(draw: st.DrawFn) -> list[PbxEvent]:
    """A real trace with events lost, repeated, and headers missing, as a flaky link might deliver it."""
    events = trace_events(draw(st.sampled_from([n for n in TRACES if n != "load_20_callers"])))
    damaged: list[PbxEvent] = []
    for event in events:
        fate = draw(st.sampled_from(["keep"] * 6 + ["drop", "twice", "strip"]))
        if fate == "strip":
            lost = draw(st.sets(st.sampled_from(sorted(event.fields)), max_size=3))
            event = replace(event, fields={k: v for k, v in event.fields.items() if k not in lost})
        if fate != "drop":
            damaged.extend([event] * (2 if fate == "twice" else 1))
    return damaged


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=damaged_traces())
def test_a_damaged_stream_still_pairs_pops_and_finishes_each_call_at_most_once(
    caplog: pytest.LogCaptureFixture, events: list[PbxEvent]
) -> None:
    caplog.clear()
    tracker = CallTracker()
    with caplog.at_level(logging.ERROR, logger="crm_core.telephony.tracker"):
        outputs = run(events, tracker)
        outputs += tracker.resync("pbx1", [], REPLAY_START + timedelta(days=1))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finished = [r.key for r in records(outputs)]
    assert len(finished) == len(set(finished))
    open_pops: set[tuple[CallKey, str]] = set()
    for output in outputs:
        if isinstance(output, Ringing):
            assert (output.key, output.extension) not in open_pops
            open_pops.add((output.key, output.extension))
        elif isinstance(output, RingingStopped):
            open_pops.remove((output.key, output.extension))
    assert not open_pops and tracker.active_calls() == []
