"""How long to wait before the next connection attempt.

Capped exponential backoff with jitter: a peer (a PBX, a mail server) that is down is not
hammered, a brief outage is retried quickly, and many connectors that lost their peers at
the same moment do not reconnect in lockstep.
"""

from __future__ import annotations

import random


class Backoff:
    """``initial * 2**n`` capped at ``maximum``, each delay drawn from [50%, 100%] of that."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * 2.0**self._attempt)
        self._attempt += 1
        return ceiling * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        """After a successful login: the next outage starts again from ``initial``."""
        self._attempt = 0
