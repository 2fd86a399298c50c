"""Asterisk Manager Interface: one ``AmiConnector`` per PBX turns its AMI stream into ``PbxEvent``s.

panoramisk supplies the protocol layer (actions, responses, event lists); this package adds
framing that survives garbage, the session lifecycle (login, resync, keepalive, backoff) and
click-to-call.  Modules: ``settings`` (what to connect to), ``errors``, ``frames`` (bytes ->
frames), ``protocol`` (one connection), ``snapshot`` (CoreShowChannels -> ChannelSnapshot),
``originate`` (the Originate action and its result), ``backoff``, ``connector`` (the loop).
"""

from connectors.ami.connector import AmiConnector, EventHandler, ResyncHandler
from connectors.ami.errors import (
    AmiActionFailed,
    AmiActionTimeout,
    AmiConnectionLost,
    AmiError,
    AmiLoginRejected,
    AmiNotConnected,
    AmiProtocolError,
)
from connectors.ami.originate import OriginateResult
from connectors.ami.settings import PbxSettings

__all__ = [
    "AmiActionFailed",
    "AmiActionTimeout",
    "AmiConnectionLost",
    "AmiConnector",
    "AmiError",
    "AmiLoginRejected",
    "AmiNotConnected",
    "AmiProtocolError",
    "EventHandler",
    "OriginateResult",
    "PbxSettings",
    "ResyncHandler",
]
