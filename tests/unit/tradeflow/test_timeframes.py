"""Timeframe grid arithmetic, including Monday weeks and calendar months."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tradeflow import timeframes as tf


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_fixed_floor_and_next() -> None:
    t = ms(2024, 3, 5, 10, 37, 12)
    assert tf.floor(t, "1m") == ms(2024, 3, 5, 10, 37)
    assert tf.floor(t, "1h") == ms(2024, 3, 5, 10)
    assert tf.floor(t, "4h") == ms(2024, 3, 5, 8)
    assert tf.next_open(ms(2024, 3, 5, 10), "1h") == ms(2024, 3, 5, 11)
    assert tf.last_closed_open(t, "1h") == ms(2024, 3, 5, 9)


def test_weeks_open_on_monday() -> None:
    assert tf.floor(ms(2024, 3, 7, 12), "1w") == ms(2024, 3, 4)  # Thursday -> Monday
    assert datetime.fromtimestamp(tf.floor(ms(2024, 3, 7), "1w") / 1000, UTC).weekday() == 0


def test_calendar_months() -> None:
    assert tf.floor(ms(2024, 2, 29, 23), "1M") == ms(2024, 2, 1)
    assert tf.next_open(ms(2024, 1, 1), "1M") == ms(2024, 2, 1)
    assert tf.next_open(ms(2024, 12, 1), "1M") == ms(2025, 1, 1)
    assert tf.previous_open(ms(2024, 1, 1), "1M") == ms(2023, 12, 1)
    assert list(tf.grid(ms(2024, 1, 15), ms(2024, 4, 1), "1M")) == [
        ms(2024, 2, 1), ms(2024, 3, 1), ms(2024, 4, 1)]


def test_grid_and_count_agree() -> None:
    start, end = ms(2024, 1, 1, 0, 0, 30), ms(2024, 1, 1, 2)
    g = tf.grid(start, end, "1m")
    assert g[0] == ms(2024, 1, 1, 0, 1) and g[-1] == end
    assert len(g) == tf.count_between(start, end, "1m") == 120


@pytest.mark.parametrize("bad", ["", "1", "m", "0m", "1x", "1.5h"])
def test_malformed_timeframes(bad: str) -> None:
    with pytest.raises(tf.TimeframeError):
        tf.parse(bad)
