"""The rules candles are held to, by name and severity, plus vectorised grid arithmetic.

Every layer (pandera border checks, the Great Expectations suite, quarantine, reports) names
rules from this one table, so a count in a report can be traced to one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tradeflow import timeframes

Severity = Literal["hard", "soft"]
HARD: Severity = "hard"
SOFT: Severity = "soft"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    severity: Severity
    description: str


_ALL = (
    Rule("column_present", HARD, "every required column is present"),
    Rule("dtype", HARD, "open_time is int64; open, high, low, close, volume are float64"),
    Rule("open_time_not_null", HARD, "open_time is present"),
    Rule("price_not_nan", HARD, "open, high, low and close are present (not NaN)"),
    Rule("price_positive", HARD, "open, high, low and close are positive and finite"),
    Rule("volume_not_nan", HARD, "volume is present (not NaN)"),
    Rule("volume_non_negative", HARD, "volume >= 0"),
    Rule("high_ge_body", HARD, "high >= max(open, close)"),
    Rule("low_le_body", HARD, "low <= min(open, close)"),
    Rule("on_grid", HARD, "open_time lies on the timeframe grid (1w: Mondays, 1M: months)"),
    Rule("unique_open_time", HARD, "no two candles share an open_time"),
    Rule("increasing_open_time", HARD, "open_time never goes backwards"),
    Rule("extreme_return", SOFT, "|log return| within k rolling standard deviations"),
    Rule("extreme_wick", SOFT, "wick beyond the body within k rolling std of returns"),
    Rule("zero_volume_run", SOFT, "no run of more than K flat zero-volume candles"),
    Rule("volume_spike", SOFT, "volume z-score against the rolling window within the limit"),
    Rule("stale", SOFT, "the last candle is at most N candles behind the last closed one"),
)
RULES: dict[str, Rule] = {r.name: r for r in _ALL}
HARD_RULES = tuple(r.name for r in _ALL if r.severity == HARD)
SOFT_RULES = tuple(r.name for r in _ALL if r.severity == SOFT)
PRICE_COLUMNS = ("open", "high", "low", "close")

# Months counted from year 0 (as tradeflow.timeframes does) = months since 1970 + this.
_MONTHS_TO_1970 = 1970 * 12


def grid_offset(times: np.ndarray, timeframe: str) -> np.ndarray:
    """Milliseconds each open time lies after its grid point (0 = on the grid), vectorised."""
    times = np.asarray(times, dtype=np.int64)
    n, unit = timeframes.parse(timeframe)
    if unit == timeframes.MONTH:
        months = times.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
        months -= (months + _MONTHS_TO_1970) % n
        floor = months.astype("datetime64[M]").astype("datetime64[ms]").astype(np.int64)
        return times - floor
    step = timeframes.duration_ms(timeframe)
    # Weeks open on Monday, not on the epoch's Thursday: floor(0) carries that offset.
    offset = timeframes.floor(0, timeframe) % step
    return (times - offset) % step
