"""The sliding-window limiter: no span of a window's length ever holds more than its limit,
whatever the windows' placement, several windows at once, and a restart's seed counted."""

from __future__ import annotations

import asyncio

import pytest

from connectors.smtp.pacing import SlidingWindowLimiter


class FakeClock:
    """Time that moves only when the limiter sleeps (asyncio.sleep is patched to advance it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        fake.now += seconds
        await real_sleep(0)

    monkeypatch.setattr("connectors.smtp.pacing.asyncio.sleep", sleep)
    return fake


async def _grants(limiter: SlidingWindowLimiter, clock: FakeClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        await limiter.acquire()
        times.append(clock.now)
    return times


def _busiest(times: list[float], span: float) -> int:
    return max(sum(1 for t in times if start <= t < start + span) for start in times)


async def test_every_window_holds_at_once(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter([(10, 1.0), (25, 60.0)], clock=clock)
    times = await _grants(limiter, clock, 60)
    assert _busiest(times, 1.0) == 10
    assert _busiest(times, 60.0) == 25
    assert times[:10] == [1000.0] * 10  # a burst up to the per-second limit goes at once
    assert times[25] == pytest.approx(1060.0)  # the 26th waits for the first to leave the minute


async def test_a_seeded_restart_does_not_start_a_fresh_hour(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter.per(None, None, 100, clock=clock)
    limiter.seed([600.0] * 99)  # 99 sends ten minutes ago, before the restart
    times = await _grants(limiter, clock, 2)
    assert times == [1000.0, pytest.approx(1000.0 + 3000.0)]  # one slot left; the next when those age out


async def test_no_limits_grant_at_once(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter.per(None, None, None, clock=clock)
    assert await _grants(limiter, clock, 1000) == [1000.0] * 1000


def test_the_longest_window_says_how_far_back_a_restart_must_look() -> None:
    assert SlidingWindowLimiter.per(5, None, 100).longest == 3600.0
    assert SlidingWindowLimiter.per(None, None, None).longest == 0.0
