"""The one retry policy (server.retry), without sleeping: a fake clock and fixed jitter."""

from __future__ import annotations

import pytest

from server.retry import Backoff, Retrying


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = Backoff(base_s=0.05, max_s=1.0)
    assert [policy.delay(n) for n in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert policy.delay(10_000) == 1.0


def test_equal_jitter_keeps_every_wait_at_least_half_its_ceiling() -> None:
    policy = Backoff(base_s=0.5, max_s=8.0, jitter=True)
    assert [policy.delay(n, rand=0.0) for n in range(5)] == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert policy.delay(3, rand=0.999999) == pytest.approx(4.0, rel=1e-5)
    assert policy.delay(0, rand=0.0, retry_after=3.0) == 3.0  # the server's word, raised to
    assert policy.delay(0, rand=0.0, retry_after=60.0) == 8.0  # never above the cap


def test_a_loop_gives_up_once_its_time_is_over_and_resets_after_a_success() -> None:
    now = [100.0]
    retrying = Retrying(Backoff(base_s=0.05, max_s=1.0), give_up_after_s=2.0, clock=lambda: now[0])
    waits = []
    while (delay := retrying.next_delay()) is not None:
        waits.append(delay)
        now[0] += delay
    assert waits == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]  # 2.55 s of waits: past 2 s, it stops
    forever = Retrying(Backoff(base_s=0.05, max_s=2.0))
    assert [forever.next_delay() for _ in range(3)] == [0.05, 0.1, 0.2]
    forever.reset()
    assert forever.next_delay() == 0.05


def test_a_policy_that_cannot_wait_is_refused() -> None:
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=0.0)
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=2.0, max_s=1.0)
