"""Built-in technical sources: RSI bands, moving-average cross, (higher-timeframe) trend.

All are pure functions of the candles; parameters come from the strategy YAML as keyword
arguments, and bad values raise ValueError naming the parameter and what is allowed.
"""

from __future__ import annotations

import numpy as np

from tradeflow import timeframes
from tradeflow.indicators import decay_length, rsi, sma
from tradeflow.signals.base import BUY, NEUTRAL, SELL, Frame, SignalSource, SourceSignals, column


def wilder_warmup(period: int, eps: float = 1e-10) -> int:
    """Rows after which Wilder's average (RSI) keeps less than ``eps`` of its seed."""
    return period + decay_length(1.0 / period, eps)


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _cold(values: np.ndarray, direction: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), np.nan, direction)


class RsiBands(SignalSource):
    """BUY when RSI(period) < ``buy_below``, SELL when > ``sell_above``; confidence grows
    from 0.5 at the band edge to 1 at RSI 0 (or 100)."""

    def __init__(self, period: int = 14, buy_below: float = 30.0,
                 sell_above: float = 70.0) -> None:
        _need(isinstance(period, int) and period >= 2, f"period must be an integer >= 2; "
              f"got {period!r}")
        _need(0 < buy_below < sell_above < 100,
              f"need 0 < buy_below < sell_above < 100; got {buy_below!r} and {sell_above!r}")
        self.period, self.buy_below, self.sell_above = period, float(buy_below), float(sell_above)
        self.describes = f"RSI({period})"

    @property
    def warmup(self) -> int:
        return wilder_warmup(self.period)

    def compute(self, candles: Frame, symbol: str | None = None) -> SourceSignals:
        r = rsi(column(candles, "close"), self.period)
        direction = np.where(r < self.buy_below, BUY, np.where(r > self.sell_above, SELL,
                                                                 NEUTRAL))
        depth = np.where(direction > 0, (self.buy_below - r) / self.buy_below,
                         (r - self.sell_above) / (100.0 - self.sell_above))
        confidence = np.where(direction == 0, 0.0, 0.5 + 0.5 * depth)
        return SourceSignals.of(_cold(r, direction), confidence, r)


class MaCross(SignalSource):
    """BUY on the candle where SMA(fast) crosses above SMA(slow), SELL where it crosses below,
    nothing in between."""

    def __init__(self, fast: int = 10, slow: int = 50) -> None:
        _need(isinstance(fast, int) and isinstance(slow, int) and 1 <= fast < slow,
              f"need integers 1 <= fast < slow; got {fast!r} and {slow!r}")
        self.fast, self.slow = fast, slow
        self.describes = f"SMA({fast}) - SMA({slow})"

    @property
    def warmup(self) -> int:
        return self.slow  # one row more than the slow average: the cross needs a previous row

    def compute(self, candles: Frame, symbol: str | None = None) -> SourceSignals:
        close = column(candles, "close")
        gap = sma(close, self.fast) - sma(close, self.slow)
        prev = np.r_[np.nan, gap[:-1]]
        direction = np.where((prev <= 0) & (gap > 0), BUY,
                             np.where((prev >= 0) & (gap < 0), SELL, NEUTRAL))
        direction = np.where(np.isnan(prev) | np.isnan(gap), np.nan, direction)
        return SourceSignals.of(direction, 1.0, gap)


def closed_higher(open_time: np.ndarray, close: np.ndarray, timeframe: str,
                  higher: str) -> tuple[np.ndarray, np.ndarray]:
    """Closes of the higher-timeframe candles and, per row, the index of the newest higher
    candle that has closed by the row's close (-1: none yet).

    A higher candle's close is the close of its last row; it counts as closed at a row once
    that row closes at or after the higher candle's end (a missing last row is covered by the
    first row of a later higher candle).
    """
    step, big = timeframes.duration_ms(timeframe), timeframes.duration_ms(higher)
    bucket = np.floor_divide(open_time, big)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], bucket.shape[0]] - 1  # last row of each higher candle
    closes = close[ends]
    end_time = (bucket[starts] + 1) * big
    known = np.searchsorted(end_time, open_time + step, side="right") - 1
    return closes, known


class Trend(SignalSource):
    """BUY while the close is above its SMA(period), SELL while below; on ``timeframe`` (a
    higher timeframe than the strategy's) only closed higher candles count, so a 1m strategy
    sees the 15m trend as of the last 15m candle that has closed."""

    def __init__(self, period: int = 20, timeframe: str | None = None, *,
                 base_timeframe: str = "1m") -> None:
        _need(isinstance(period, int) and period >= 1, f"period must be an integer >= 1; "
              f"got {period!r}")
        tf = timeframe or base_timeframe
        try:
            ratio = timeframes.duration_ms(tf) // timeframes.duration_ms(base_timeframe)
        except ValueError as exc:
            raise ValueError(f"timeframe: {exc}") from None
        _need(ratio >= 1 and timeframes.duration_ms(tf) % timeframes.duration_ms(
            base_timeframe) == 0, f"timeframe must be a multiple of the strategy's "
              f"{base_timeframe}; got {tf!r}")
        self.period, self.timeframe, self.base, self.ratio = period, tf, base_timeframe, ratio
        self.describes = f"close / SMA({period}) on {tf} - 1"

    @property
    def warmup(self) -> int:
        # period closed higher candles, plus the one a window may start in the middle of
        return (self.period + 1) * self.ratio

    def compute(self, candles: Frame, symbol: str | None = None) -> SourceSignals:
        close = column(candles, "close")
        if self.ratio == 1:
            dev = close / sma(close, self.period) - 1.0
        else:
            times = np.asarray(candles["open_time"], dtype=np.int64)
            closes, known = closed_higher(times, close, self.base, self.timeframe)
            higher = closes / sma(closes, self.period) - 1.0
            dev = np.where(known >= 0, higher[np.maximum(known, 0)], np.nan)
        direction = np.where(dev > 0, BUY, np.where(dev < 0, SELL, NEUTRAL))
        return SourceSignals.of(_cold(dev, direction), 1.0, dev)
