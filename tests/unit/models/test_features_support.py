"""Candle factories shared by the feature, label and look-ahead tests (and a check of them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

MINUTE_MS = 60_000
DAY_MS = 86_400_000
# 2023-11-14 00:00 UTC, a Tuesday.
T0 = 1_699_920_000_000


def random_walk_candles(
    n: int,
    *,
    seed: int = 0,
    start_ms: int = T0,
    step_ms: int = MINUTE_MS,
    price: float = 30_000.0,
    sigma: float = 1e-3,
) -> pd.DataFrame:
    """Realistic OHLCV: log-normal random-walk closes, opens at the previous close, wicks."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0, sigma, n)))
    open_ = np.r_[price, close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, sigma / 2, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, sigma / 2, n)))
    volume = rng.lognormal(2.0, 1.0, n)
    volume[rng.random(n) < 0.01] = 0.0  # quiet candles happen on real markets
    return pd.DataFrame({
        "open_time": start_ms + step_ms * np.arange(n, dtype=np.int64),
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
    })


def with_gap(candles: pd.DataFrame, start: int, length: int) -> pd.DataFrame:
    """The same candles with ``length`` rows from ``start`` missing (an exchange outage)."""
    return pd.concat([candles.iloc[:start], candles.iloc[start + length:]], ignore_index=True)


def test_random_walk_candles_are_consistent() -> None:
    c = random_walk_candles(5_000, seed=3)
    assert (c["high"] >= c[["open", "close"]].max(axis=1)).all()
    assert (c["low"] <= c[["open", "close"]].min(axis=1)).all()
    assert (np.diff(c["open_time"]) == MINUTE_MS).all()
    assert (c["volume"] >= 0).all() and (c["volume"] == 0).any()
    assert c["open_time"].iloc[0] % DAY_MS == 0
