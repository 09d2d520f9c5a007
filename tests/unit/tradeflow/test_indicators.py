"""Indicator parity with TA-Lib (the reference) and window independence of rolling stats."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import talib

from tests.unit.models.test_features_support import random_walk_candles
from tradeflow import indicators as ind

TOL = 1e-6


@pytest.fixture(scope="module")
def ohlc() -> dict[str, np.ndarray]:
    c = random_walk_candles(4_000, seed=11)
    return {k: c[k].to_numpy() for k in ("high", "low", "close")}


def assert_parity(ours: np.ndarray, ref: np.ndarray) -> None:
    """Same warm-up (NaN) prefix, then equal within TOL (absolute, and relative to 1)."""
    assert np.array_equal(np.isnan(ours), np.isnan(ref)), "warm-up lengths differ"
    valid = ~np.isnan(ref)
    assert valid.sum() > len(ref) * 0.9
    np.testing.assert_allclose(ours[valid], ref[valid], rtol=TOL, atol=TOL)


@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi_matches_talib(ohlc: dict[str, np.ndarray], period: int) -> None:
    assert_parity(ind.rsi(ohlc["close"], period), talib.RSI(ohlc["close"], period))


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 16)])
def test_macd_matches_talib_all_three_outputs(
    ohlc: dict[str, np.ndarray], fast: int, slow: int, signal: int
) -> None:
    ours = ind.macd(ohlc["close"], fast, slow, signal)
    ref = talib.MACD(ohlc["close"], fast, slow, signal)
    for o, r in zip(ours, ref, strict=True):
        assert_parity(o, r)


@pytest.mark.parametrize(("period", "stds"), [(20, 2.0), (10, 1.5), (55, 3.0)])
def test_bbands_match_talib_and_derived_pctb_width(
    ohlc: dict[str, np.ndarray], period: int, stds: float
) -> None:
    close = ohlc["close"]
    upper, middle, lower = ind.bbands(close, period, stds)
    ru, rm, rl = talib.BBANDS(close, period, stds, stds, talib.MA_Type.SMA)
    for o, r in ((upper, ru), (middle, rm), (lower, rl)):
        assert_parity(o, r)
    assert_parity((close - lower) / (upper - lower), (close - rl) / (ru - rl))
    assert_parity((upper - lower) / middle, (ru - rl) / rm)


@pytest.mark.parametrize("period", [1, 14, 50])
def test_atr_matches_talib(ohlc: dict[str, np.ndarray], period: int) -> None:
    h, low, c = ohlc["high"], ohlc["low"], ohlc["close"]
    assert_parity(ind.atr(h, low, c, period), talib.ATR(h, low, c, period))
    assert_parity(ind.true_range(h, low, c), talib.TRANGE(h, low, c))


@pytest.mark.parametrize("period", [1, 9, 26])
def test_ema_and_sma_match_talib(ohlc: dict[str, np.ndarray], period: int) -> None:
    assert_parity(ind.ema(ohlc["close"], period), talib.EMA(ohlc["close"], period))
    if period > 1:
        assert_parity(ind.sma(ohlc["close"], period), talib.SMA(ohlc["close"], period))


def test_rolling_stats_depend_on_the_window_only(ohlc: dict[str, np.ndarray]) -> None:
    x = ohlc["close"]
    for n in (1, 3, 20, 61):
        mean, std = ind.rolling_mean_std(x, n)
        tail_mean, tail_std = ind.rolling_mean_std(x[1234:], n)
        # Bit for bit: no running sum carries rounding from rows before the window.
        assert np.array_equal(mean[1234 + n - 1:], tail_mean[n - 1:])
        assert np.array_equal(std[1234 + n - 1:], tail_std[n - 1:])
        assert np.array_equal(ind.rolling_sum(x, n)[1234 + n - 1:],
                              ind.rolling_sum(x[1234:], n)[n - 1:])
    window = x[500:520]
    mean, std = ind.rolling_mean_std(x, 20, ddof=1)
    assert mean[519] == pytest.approx(window.mean(), rel=1e-15)
    assert std[519] == pytest.approx(window.std(ddof=1), rel=1e-12)


def test_two_pass_std_keeps_precision_at_large_prices() -> None:
    # Prices near 1e9 with a spread of 1e-3: sums of squares would cancel every digit.
    x = 1e9 + np.tile([0.0, 1e-3], 50)
    _, std = ind.rolling_mean_std(x, 20)
    np.testing.assert_allclose(std[19:], 5e-4, rtol=1e-4)


def test_rsi_of_flat_prices_is_neutral() -> None:
    out = ind.rsi(np.full(50, 7.0), 14)
    assert np.isnan(out[:14]).all()
    assert (out[14:] == 50.0).all()


def test_rsi_extremes() -> None:
    up = ind.rsi(np.arange(1.0, 40.0), 14)
    assert (up[14:] == 100.0).all()
    down = ind.rsi(np.arange(40.0, 1.0, -1.0), 14)
    assert (down[14:] == 0.0).all()


def test_short_inputs_are_all_nan() -> None:
    x = np.linspace(1, 2, 10)
    assert np.isnan(ind.rsi(x, 14)).all()
    assert all(np.isnan(a).all() for a in ind.macd(x))
    assert np.isnan(ind.atr(x, x, x, 14)).all()
    assert np.isnan(ind.bbands(x, 20)[0]).all()


@pytest.mark.parametrize(
    "call",
    [
        lambda x: ind.rsi(x, 1),
        lambda x: ind.macd(x, 26, 12, 9),
        lambda x: ind.atr(x, x, x, 0),
        lambda x: ind.bbands(x, 1),
        lambda x: ind.rolling_mean_std(x, 1, ddof=1),
    ],
)
def test_bad_periods_are_rejected(call: Callable[[np.ndarray], object]) -> None:
    with pytest.raises(ValueError):
        call(np.linspace(1, 2, 100))


def test_decay_length_is_where_the_seed_weight_drops_below_eps() -> None:
    alpha, eps = 1 / 14, 1e-9
    steps = ind.decay_length(alpha, eps)
    assert (1 - alpha) ** steps <= eps < (1 - alpha) ** (steps - 1)
