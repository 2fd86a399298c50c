"""Sending no faster than the provider allows: limits per second, minute and hour at once.

A sliding window, not a fixed one: "100 per minute" means no 60-second span ever holds more
than 100 sends, however the spans are placed, which is what providers count.  The limiter
can be seeded with the send times of the last hour, so a restart does not start a fresh hour.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable

_EPSILON = 1e-6  # seconds


class SlidingWindowLimiter:
    """``await acquire()`` before each send; it returns once every window has room."""

    def __init__(self, limits: Iterable[tuple[int, float]], clock: Callable[[], float] = time.monotonic) -> None:
        self._windows = [(count, span, deque[float]()) for count, span in limits if count > 0]
        self._clock = clock
        self._lock = asyncio.Lock()

    @classmethod
    def per(
        cls, second: int | None, minute: int | None, hour: int | None, clock: Callable[[], float] = time.monotonic
    ) -> SlidingWindowLimiter:
        spans = ((second, 1.0), (minute, 60.0), (hour, 3600.0))
        return cls(((count, span) for count, span in spans if count), clock)

    @property
    def longest(self) -> float:
        """The longest window's span in seconds; 0 when nothing is limited."""
        return max((span for _count, span, _times in self._windows), default=0.0)

    def seed(self, ages: Iterable[float]) -> None:
        """Sends that happened ``age`` seconds ago (before a restart), oldest first or not."""
        now = self._clock()
        for age in sorted(ages, reverse=True):
            for _count, span, times in self._windows:
                if age < span:
                    times.append(now - age)

    async def acquire(self) -> None:
        async with self._lock:  # one waiter at a time: sends are granted in the order asked
            while True:
                now = self._clock()
                wait = 0.0
                for count, span, times in self._windows:
                    while times and times[0] <= now - span:
                        times.popleft()
                    if len(times) >= count:
                        wait = max(wait, times[len(times) - count] + span - now)
                if wait <= _EPSILON:  # float rounding must not leave a sleep too short to move the clock
                    for _count, _span, times in self._windows:
                        times.append(now)
                    return
                await asyncio.sleep(wait)
