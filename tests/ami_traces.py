"""The recorded AMI traces in shared/ami-traces, read for tests: frames, their headers, the truth.

The traces live beside the repository (``../shared/ami-traces``); ``HUB_AMI_TRACES`` points
elsewhere.  A frame is what crossed the socket; an event is a frame whose first header is
``Event`` (an OriginateResponse is one, though it also carries a ``Response`` header), while
action responses start with ``Response`` and the banner has no header at all.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crm_core.telephony.events import PbxEvent

TRACES_DIR = Path(
    os.environ.get("HUB_AMI_TRACES") or Path(__file__).resolve().parents[1].parent / "shared" / "ami-traces"
)
# The hub's clock when a replay starts: far from the PBX's (November 2026), as a real offset would be.
REPLAY_START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TraceFrame:
    t: float  # seconds since the banner
    direction: str  # "in" (PBX -> client) or "out"
    raw: str


def trace_names() -> list[str]:
    """Every recorded scenario; none found is an error, never an empty (silently skipped) test list."""
    names = sorted(path.stem for path in TRACES_DIR.glob("*.jsonl"))
    if not names:
        raise FileNotFoundError(
            f"no AMI traces in {TRACES_DIR}: the shared/ folder belongs beside the repository (or set HUB_AMI_TRACES)"
        )
    return names


def load_trace(name: str) -> list[TraceFrame]:
    frames = []
    with (TRACES_DIR / f"{name}.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                item = json.loads(line)
                frames.append(TraceFrame(t=float(item["t"]), direction=item["dir"], raw=item["raw"]))
    return frames


def parse_frame(raw: str) -> dict[str, str]:
    """``Key: Value`` lines, split on the first ": "; lines without one (the banner) are skipped."""
    headers: dict[str, str] = {}
    for line in raw.replace("\r\n", "\n").split("\n"):
        if ": " in line:
            key, value = line.split(": ", 1)
        elif line.endswith(":"):
            key, value = line[:-1], ""
        else:
            continue
        headers.setdefault(key, value)
    return headers


def is_event(raw: str) -> bool:
    return raw.lstrip().startswith("Event:")


def expected(name: str) -> list[dict[str, Any]]:
    with (TRACES_DIR / "expected.json").open(encoding="utf-8") as file:
        return list(json.load(file)[name])


def trace_events(
    name: str, *, speed: float = 1.0, pbx: str = "pbx1", frames: list[TraceFrame] | None = None
) -> list[PbxEvent]:
    """The trace's events as a connector would hand them over, received ``speed`` times faster."""
    events = []
    for frame in frames if frames is not None else load_trace(name):
        if frame.direction != "in" or not is_event(frame.raw):
            continue
        headers = parse_frame(frame.raw)
        received = REPLAY_START + timedelta(seconds=frame.t / speed)
        events.append(PbxEvent(pbx=pbx, name=headers["Event"], fields=headers, received_at=received))
    return events
