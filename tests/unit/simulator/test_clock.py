"""The simulated clock."""

from __future__ import annotations

import pytest

from simulator.clock import SimClock


def test_clock_runs_at_speed_jumps_forward_and_changes_rate_smoothly() -> None:
    wall = [1_000_000]
    clock = SimClock(start_ms=5_000_000, speed=60, wall=lambda: wall[0])
    assert clock.now_ms() == 5_000_000
    wall[0] += 1_000
    assert clock.now_ms() == 5_060_000
    assert clock.advance(40_000) == 5_100_000
    clock.set_speed(1)
    wall[0] += 500
    assert clock.now_ms() == 5_100_500
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_default_start_is_the_wall_clock_floored_to_the_minute() -> None:
    clock = SimClock(wall=lambda: 1_700_000_123_456)
    assert clock.start_ms == 1_700_000_100_000
    assert clock.now_ms() == 1_700_000_100_000
