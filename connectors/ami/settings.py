"""What the connector needs to know about one PBX, and nothing else.

The hub's configuration (pydantic, TOML + environment) is richer; it maps each ``[[pbx]]``
table onto this plain dataclass so the connector does not depend on the hub's config layer
and can be built by hand in tests and benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PbxSettings:
    """One Asterisk's AMI endpoint, credentials and the connector's timing.

    Timings are seconds.  ``ping_interval + ping_timeout`` bounds how long a dead peer (a
    half-open TCP connection, a hung Asterisk) goes unnoticed; the backoff pair bounds how hard
    a down PBX is hammered with reconnects.
    """

    name: str
    host: str
    port: int
    username: str
    secret: str = field(repr=False)  # never in logs or reprs
    region: str = "RU"  # default region of its phone numbers; passed through for the tracker
    ping_interval: float = 5.0
    ping_timeout: float = 3.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    # Every network wait has a timeout: TCP connect, the banner, and each action's reply
    # (Login, CoreShowChannels, QueueStatus, Logoff; Originate waits its own timeout plus this).
    connect_timeout: float = 10.0
    action_timeout: float = 10.0
    # A frame larger than this is dropped as malformed (AMI frames are a few hundred bytes;
    # without a bound, a peer that never sends the blank line would grow the buffer forever).
    max_frame_bytes: int = 64 * 1024
