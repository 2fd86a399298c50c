"""Click-to-call on the wire: the ``Originate`` action and what its answer means.

``Async: true`` makes Asterisk answer at once ("Originate successfully queued") and report
the outcome later in an ``OriginateResponse`` event carrying our ActionID; waiting for that
event is what tells the operator whether their phone was actually rung.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# OriginateResponse "Reason": the Asterisk control frame that ended the attempt.
REASONS = {
    "0": "failed",
    "1": "hung up",
    "3": "no answer",
    "4": "answered",
    "5": "busy",
    "8": "congestion",
}


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """The ``OriginateResponse`` event: Success once the first leg answered, Failure otherwise."""

    action_id: str
    response: str  # "Success" or "Failure"
    reason: str  # numeric code, see REASONS
    channel: str
    uniqueid: str
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.response.lower() == "success"

    @property
    def reason_text(self) -> str:
        return REASONS.get(self.reason, f"reason {self.reason}")


def originate_action(
    action_id: str,
    channel: str,
    exten: str,
    context: str,
    caller_id: str,
    variables: Mapping[str, str],
    timeout: float,
    priority: int = 1,
) -> dict[str, str | list[str]]:
    """The action's headers.  ``timeout`` is seconds (AMI wants milliseconds).

    Values are checked for line breaks: AMI is line-based, so a caller id such as
    ``"Anna\\r\\nAction: Command"`` would otherwise inject a second action.
    """
    fields: dict[str, str | list[str]] = {
        "Action": "Originate",
        "ActionID": action_id,
        "Channel": channel,
        "Exten": exten,
        "Context": context,
        "Priority": str(priority),
        "CallerID": caller_id,
        "Timeout": str(max(1, round(timeout * 1000))),
        "Async": "true",
    }
    if variables:
        fields["Variable"] = [f"{name}={value}" for name, value in variables.items()]
    for name, value in [*fields.items(), *((f"variable {k}", k) for k in variables)]:
        for item in value if isinstance(value, list) else [value]:
            if "\r" in item or "\n" in item:
                raise ValueError(f"Originate {name} must not contain a line break: {item!r}")
    return fields
