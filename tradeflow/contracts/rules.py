"""The rules candles are held to, by name, severity and policy, plus vectorised grid arithmetic.

Every layer (pandera border checks, the store's write path, the Great Expectations suite,
quarantine, reports) names rules from this one table, so a count in a report can be traced to
one definition.

Hard rules are the contract: the store refuses a frame that breaks one of the ``refuse`` rules
(an implausible time, a candle off its grid, a missing or non-positive price: nothing true can
be stored) and quarantines candles breaking the others (a high below the body). Soft rules are
judgements of validation; what happens to a failing candle is its policy (``warn``,
``quarantine`` or ``exclude``), set per profile (``validation.policies``). Rules about a
series rather than a candle (a gap, a stale last candle) can only warn: there is no candle to
set aside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tradeflow import timeframes

Severity = Literal["hard", "soft"]
HARD: Severity = "hard"
SOFT: Severity = "soft"
AtStore = Literal["refuse", "quarantine", "none"]

# A candle before the first bitcoin block or after 2100 is a unit mistake (seconds or
# microseconds read as milliseconds, a 1970 default), never market data.
PLAUSIBLE_FROM_MS = 1_230_940_800_000  # 2009-01-03 00:00 UTC
PLAUSIBLE_TO_MS = 4_102_444_800_000    # 2100-01-01 00:00 UTC


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    severity: Severity
    description: str
    per_candle: bool = True        # False: a finding about the series, which can only warn
    at_store: AtStore = "none"     # what the store's write path does with a failing candle


_ALL = (
    Rule("column_present", HARD, "every required column is present", at_store="refuse"),
    Rule("dtype", HARD, "open_time is int64; open, high, low, close, volume are float64",
         at_store="refuse"),
    Rule("open_time_not_null", HARD, "open_time is present", at_store="refuse"),
    Rule("plausible_time", HARD, "open_time lies between 2009-01-03 and 2100-01-01 UTC "
         "(in milliseconds)", at_store="refuse"),
    Rule("price_not_nan", HARD, "open, high, low and close are present (not NaN)",
         at_store="refuse"),
    Rule("price_positive", HARD, "open, high, low and close are positive and finite",
         at_store="refuse"),
    Rule("volume_not_nan", HARD, "volume is present (not NaN)", at_store="quarantine"),
    Rule("volume_non_negative", HARD, "volume >= 0", at_store="quarantine"),
    Rule("high_ge_body", HARD, "high >= max(open, close)", at_store="quarantine"),
    Rule("low_le_body", HARD, "low <= min(open, close)", at_store="quarantine"),
    Rule("on_grid", HARD, "open_time lies on the timeframe grid (1w: Mondays, 1M: months)",
         at_store="refuse"),
    # The store sorts a batch and keeps the last of equal keys, so these never fail there.
    Rule("unique_open_time", HARD, "no two candles share an open_time"),
    Rule("increasing_open_time", HARD, "open_time never goes backwards"),
    Rule("extreme_return", SOFT, "|log return| within k rolling standard deviations"),
    Rule("extreme_wick", SOFT, "wick beyond the body within k rolling std of returns"),
    Rule("synthetic_fill", SOFT, "not a forward-filled candle: zero volume with open = high = "
         "low = close = the previous close (how exchanges paper over minutes without trades)"),
    Rule("timeframe_spacing", SOFT, "the series' dominant spacing between candles is its "
         "timeframe (not a coarser file stored under a finer name)"),
    Rule("volume_spike", SOFT, "volume z-score against the rolling window within the limit"),
    Rule("trades_vs_candles", SOFT, "a candle of a series with stored trades is the aggregate "
         "of its trades: open, high, low, close and count exactly, volume, quote volume and "
         "taker-buy volumes to 1e-9 (judged where the trades cover the whole candle)"),
    Rule("gap", SOFT, "no candle missing between two stored ones (recorded unfillable gaps "
         "are reported apart)", per_candle=False),
    Rule("stale", SOFT, "the last candle is at most N candles behind the last closed one",
         per_candle=False),
)
RULES: dict[str, Rule] = {r.name: r for r in _ALL}
HARD_RULES = tuple(r.name for r in _ALL if r.severity == HARD)
SOFT_RULES = tuple(r.name for r in _ALL if r.severity == SOFT)
REFUSED_AT_STORE = tuple(r.name for r in _ALL if r.at_store == "refuse")
QUARANTINED_AT_STORE = tuple(r.name for r in _ALL if r.at_store == "quarantine")
PRICE_COLUMNS = ("open", "high", "low", "close")

# Months counted from year 0 (as tradeflow.timeframes does) = months since 1970 + this.
_MONTHS_TO_1970 = 1970 * 12
_MONTH_MIN_MS, _MONTH_MAX_MS = 28 * 86_400_000, 31 * 86_400_000


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


@dataclass(frozen=True, slots=True)
class Spacing:
    """How far apart consecutive candles are: the most common and the smallest step (ms)."""

    dominant_ms: int
    dominant_share: float  # share of the steps that are the dominant one
    smallest_ms: int
    steps: int             # how many steps were measured

    @property
    def label(self) -> str:
        """The dominant step as a timeframe (``1m``, ``1h``, ``1M``) or in ms."""
        return spacing_label(self.dominant_ms)


def spacing(times: np.ndarray) -> Spacing | None:
    """The spacing of ascending open times; None with fewer than two distinct times."""
    steps = np.diff(np.asarray(times, dtype=np.int64))
    steps = steps[steps > 0]
    if not steps.size:
        return None
    # Months vary from 28 to 31 days: any such step counts as one month.
    steps = np.where((steps >= _MONTH_MIN_MS) & (steps <= _MONTH_MAX_MS), _MONTH_MAX_MS, steps)
    values, counts = np.unique(steps, return_counts=True)
    top = int(np.argmax(counts))
    return Spacing(int(values[top]), float(counts[top] / steps.size), int(values[0]),
                   int(steps.size))


def spacing_agrees(found: Spacing | None, timeframe: str) -> bool:
    """True when candles spaced as ``found`` belong to ``timeframe``.

    The timeframe's step must be the dominant or the smallest spacing: gaps make larger
    steps (an illiquid market), never smaller ones, and a file of another timeframe is
    dominated by that timeframe's step.
    """
    if found is None:
        return True
    n, unit = timeframes.parse(timeframe)
    if unit == timeframes.MONTH and n > 1:
        return any(n * _MONTH_MIN_MS <= s <= n * _MONTH_MAX_MS
                   for s in (found.dominant_ms, found.smallest_ms))
    step = timeframes.duration_ms(timeframe)  # 1M: 31 days, as spacing() counts a month
    return step in (found.dominant_ms, found.smallest_ms)


def spacing_label(ms: int) -> str:
    """A step in ms as the largest whole timeframe unit (``60000`` -> ``1m``), else ``N ms``."""
    if ms == _MONTH_MAX_MS:
        return "1M"
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000),
                       ("m", 60_000), ("s", 1_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms} ms"
