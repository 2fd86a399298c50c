"""The hub's logging as a benchmark runs it: as ``hub run`` logs (key=value at INFO), written to
/dev/null so the terminal shows only the figures, with warnings tallied to print under the table."""

from __future__ import annotations

import logging
import os
from collections import Counter

from hub import logs


class WarningTally(logging.Handler):
    """Counts what the hub logs at WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.seen[f"{record.name}: {record.getMessage()}"] += 1


def configure_logs() -> WarningTally:
    logs.configure("INFO")
    root = logging.getLogger()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115  # lives as long as the process
    tally = WarningTally()
    root.addHandler(tally)
    return tally
