"""Timeframe arithmetic on UTC millisecond timestamps.

Candles are stamped at their open time. Fixed timeframes (1s .. 1w) sit on a grid of
``k * duration`` since the Unix epoch, except weeks, which Binance opens on Monday 00:00 UTC.
Calendar months (``1M``) open on the first of each month at 00:00 UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np

from tradeflow.errors import UsageError

_UNITS_MS = {
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
_TF_RE = re.compile(r"^(\d+)([smhdwM])$")
# 1970-01-01 was a Thursday; Binance weeks open on Monday, 4 days later.
_WEEK_OFFSET_MS = 4 * 86_400_000
MONTH = "M"


class TimeframeError(UsageError, ValueError):
    """A timeframe string that is not of the form <n><s|m|h|d|w|M>.

    A :class:`~tradeflow.errors.UsageError` (one line and exit code 2 on the command line)
    and a ValueError (pydantic turns it into a config error naming the key).
    """


def parse(timeframe: str) -> tuple[int, str]:
    """Split ``'15m'`` into ``(15, 'm')``; raise TimeframeError when malformed."""
    match = _TF_RE.match(timeframe)
    if not match or int(match.group(1)) <= 0:
        raise TimeframeError(
            f"timeframe {timeframe!r} is not valid; allowed: <n><unit> with unit in s m h d w M"
        )
    return int(match.group(1)), match.group(2)


def is_calendar(timeframe: str) -> bool:
    """True for month timeframes, whose duration varies."""
    return parse(timeframe)[1] == MONTH


def duration_ms(timeframe: str) -> int:
    """Fixed duration of a timeframe in ms; months report 31 days (an upper bound)."""
    n, unit = parse(timeframe)
    if unit == MONTH:
        return n * 31 * 86_400_000
    return n * _UNITS_MS[unit]


def _offset(timeframe: str) -> int:
    return _WEEK_OFFSET_MS if parse(timeframe)[1] == "w" else 0


def floor(ts_ms: int, timeframe: str) -> int:
    """Open time of the candle that contains ``ts_ms``."""
    n, unit = parse(timeframe)
    if unit == MONTH:
        dt = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
        months = dt.year * 12 + dt.month - 1
        months -= months % n
        return _month_start(months)
    step = duration_ms(timeframe)
    off = _offset(timeframe)
    return (ts_ms - off) // step * step + off


def next_open(open_ms: int, timeframe: str) -> int:
    """Open time of the candle after the one opening at ``open_ms``."""
    n, unit = parse(timeframe)
    if unit == MONTH:
        dt = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
        return _month_start(dt.year * 12 + dt.month - 1 + n)
    return open_ms + duration_ms(timeframe)


def close_time(open_ms: int, timeframe: str) -> int:
    """First millisecond after the candle: it is final once the clock reaches this."""
    return next_open(open_ms, timeframe)


def last_closed_open(now_ms: int, timeframe: str) -> int:
    """Open time of the most recent candle that is closed at ``now_ms``."""
    current = floor(now_ms, timeframe)
    return previous_open(current, timeframe)


def previous_open(open_ms: int, timeframe: str) -> int:
    """Open time of the candle before the one opening at ``open_ms``."""
    n, unit = parse(timeframe)
    if unit == MONTH:
        dt = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
        return _month_start(dt.year * 12 + dt.month - 1 - n)
    return open_ms - duration_ms(timeframe)


def grid(start_ms: int, end_ms: int, timeframe: str) -> np.ndarray:
    """All open times on the grid with ``start_ms <= t <= end_ms`` (int64 array)."""
    first = floor(start_ms, timeframe)
    if first < start_ms:
        first = next_open(first, timeframe)
    if first > end_ms:
        return np.empty(0, dtype=np.int64)
    if is_calendar(timeframe):
        out = []
        t = first
        while t <= end_ms:
            out.append(t)
            t = next_open(t, timeframe)
        return np.asarray(out, dtype=np.int64)
    step = duration_ms(timeframe)
    return np.arange(first, end_ms + 1, step, dtype=np.int64)


def count_between(start_ms: int, end_ms: int, timeframe: str) -> int:
    """Number of grid candles with ``start_ms <= open_time <= end_ms``."""
    if is_calendar(timeframe):
        return int(grid(start_ms, end_ms, timeframe).size)
    first = floor(start_ms, timeframe)
    if first < start_ms:
        first += duration_ms(timeframe)
    if first > end_ms:
        return 0
    return (end_ms - first) // duration_ms(timeframe) + 1


def _month_start(months_since_year0: int) -> int:
    year, month0 = divmod(months_since_year0, 12)
    return int(datetime(year, month0 + 1, 1, tzinfo=UTC).timestamp() * 1000)


def to_datetime(ts_ms: int) -> datetime:
    """UTC datetime of a millisecond timestamp."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def iso(ts_ms: int) -> str:
    """Compact ISO-8601 UTC rendering used in reports and logs."""
    return to_datetime(ts_ms).strftime("%Y-%m-%d %H:%M")
