"""The AMI connector's failures, as a small hierarchy callers can catch by meaning.

``AmiNotConnected`` is the one click-to-call cares about: the action was not (or may not have
been) carried out because there was no session.  ``AmiConnectionLost`` is the subtle case of
it: the action was written, the connection dropped before the answer, so the PBX may or may
not have acted on it; it is never re-sent on the next connection.
"""

from __future__ import annotations


class AmiError(Exception):
    """Anything that went wrong talking AMI to one PBX."""

    def __init__(self, pbx: str, message: str) -> None:
        super().__init__(f"{pbx}: {message}")
        self.pbx = pbx


class AmiNotConnected(AmiError):
    """No logged-in session to this PBX right now; the action was not sent."""


class AmiConnectionLost(AmiNotConnected):
    """The connection dropped while an action waited for its answer; its outcome is unknown."""


class AmiLoginRejected(AmiError):
    """The PBX refused the username or secret (``Response: Error`` to ``Login``)."""


class AmiActionFailed(AmiError):
    """The PBX answered an action with ``Response: Error`` (e.g. Originate with a bad channel)."""

    def __init__(self, pbx: str, action: str, reason: str) -> None:
        super().__init__(pbx, f"{action} failed: {reason}")
        self.action = action
        self.reason = reason


class AmiActionTimeout(AmiError, TimeoutError):
    """An action's answer did not arrive in time."""


class AmiProtocolError(AmiError):
    """The peer does not speak AMI (no ``Asterisk Call Manager/`` banner)."""
