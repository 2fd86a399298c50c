"""What can go wrong talking to 1C, named for what the user must do about it."""

from __future__ import annotations

from crm_core.onec.port import PeerError, PeerUnavailable


class OdataError(PeerError):
    """1C answered with an ``odata.error``; ``str()`` is 1C's own message, meant for the user."""

    def __init__(self, message: str, *, status: int, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.transient = status == 500 and code == "-1"


class OnecUnavailable(PeerUnavailable):
    """No answer, a cut connection, or the web server in front of 1C failing (502, 503, 504)."""


class OnecLoginRejected(PeerUnavailable):
    """401: the infobase user or password is wrong, or the user may not use OData."""


class OnecNotPublished(PeerUnavailable):
    """The object is not in the standard interface's composition; only 1C's administrator can add it."""

    def __init__(self, entity_set: str) -> None:
        super().__init__(
            f"1C does not publish {entity_set} in its standard OData interface. The 1C administrator must add it: "
            "in Designer, Administration > Publish to web server with 'Publish standard OData interface' on, then, "
            "in the infobase, set the interface's composition (the data processor «Настройка стандартного "
            f"интерфейса OData», or the method УстановитьСоставСтандартногоИнтерфейсаOData) to include {entity_set}."
        )
        self.entity_set = entity_set


class OnecSchemaMismatch(PeerUnavailable):
    """The configuration lacks a property the field map names: a wrong ``kind`` or ``field_map``."""
