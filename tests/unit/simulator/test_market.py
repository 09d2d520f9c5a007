"""The market model: determinism, candle invariants, speed, and the planted signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from simulator.market import BLOCK_MINUTES, DAY_MS, MinuteSeries, make_spec
from tests.fixtures.simulator import START_MS, frozen_venue

ANCHOR = START_MS // DAY_MS * DAY_MS - 30 * DAY_MS
FIELDS = ("open", "high", "low", "close", "volume", "quote", "trades", "first_trade_id")


def series(symbol: str = "BTC/USDT", seed: int = 42, signal: float = 0.0) -> MinuteSeries:
    return MinuteSeries(make_spec(symbol, seed), ANCHOR, signal, 0.0012)


def log_returns(s: MinuteSeries, days: int) -> np.ndarray:
    s.ensure(days * BLOCK_MINUTES - 1)
    return np.diff(np.log(s.close[: days * BLOCK_MINUTES].astype(float)))


def autocorr(r: np.ndarray, lag: int) -> float:
    return float(np.corrcoef(r[:-lag], r[lag:])[0, 1])


def test_same_seed_gives_same_candles_whatever_the_order_of_requests() -> None:
    a, b = series(), series()
    a.ensure(10 * BLOCK_MINUTES)
    b.ensure(5)
    b.ensure(3 * BLOCK_MINUTES + 7)
    b.ensure(10 * BLOCK_MINUTES)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    other = series(seed=43)
    other.ensure(10)
    assert not np.array_equal(other.close[:10], a.close[:10])


def test_venue_ranges_asked_in_any_order_agree() -> None:
    first, second = frozen_venue(), frozen_venue()
    late = first.klines("ETH/USDT", "1m", START_MS - 300 * 60_000, limit=100)
    early = first.klines("ETH/USDT", "1m", START_MS - 2000 * 60_000, limit=100)
    early2 = second.klines("ETH/USDT", "1m", START_MS - 2000 * 60_000, limit=100)
    late2 = second.klines("ETH/USDT", "1m", START_MS - 300 * 60_000, limit=100)
    np.testing.assert_array_equal(early.ohlcv(), early2.ohlcv())
    np.testing.assert_array_equal(late.ohlcv(), late2.ohlcv())


def test_candles_are_realistic() -> None:
    s = series()
    s.ensure(30 * BLOCK_MINUTES - 1)
    assert (s.high >= np.maximum(s.open, s.close)).all()
    assert (s.low <= np.minimum(s.open, s.close)).all()
    assert (s.low > 0).all() and (s.volume > 0).all() and (s.trades >= 4).all()
    # the first trade of a minute is often at another price than the last of the one before
    assert 0.2 < np.mean(s.open[1:] != s.close[:-1]) < 0.45
    assert (s.taker_base <= s.volume).all() and (s.taker_quote <= s.quote).all()
    assert 0.4 < (s.taker_base / s.volume).mean() < 0.6
    np.testing.assert_array_equal(np.diff(s.first_trade_id), s.trades[:-1])
    assert (s.groups <= s.trades).all() and (s.groups >= 4).all()
    # high or low extend past the body most of the time, like real 1m candles
    assert np.mean(s.high > np.maximum(s.open, s.close)) > 0.5


def test_thirty_days_generate_in_one_call_as_whole_days() -> None:
    # How fast is bench/simulator.py's business; here only that the blocks join up.
    s = series("SOL/USDT")
    s.ensure(30 * BLOCK_MINUTES - 1)
    assert s.size == 30 * BLOCK_MINUTES
    # ids run on across blocks; the open stays within a few ticks of the close before
    np.testing.assert_array_equal(np.diff(s.first_trade_id), s.trades[:-1])
    np.testing.assert_array_equal(np.diff(s.first_agg_id), s.groups[:-1])
    np.testing.assert_array_equal(np.diff(s.first_update_id), 1 + 2 * s.groups[:-1])
    assert np.max(np.abs(s.open[1:] - s.close[:-1]) / s.close[:-1]) < 0.002


def test_volume_has_a_u_shaped_intraday_profile() -> None:
    s = series()
    s.ensure(30 * BLOCK_MINUTES - 1)
    hours = (np.arange(30 * BLOCK_MINUTES) // 60) % 24
    by_hour = np.array([s.volume[hours == h].mean() for h in range(24)])
    assert by_hour[[0, 23]].min() > 1.5 * by_hour[10:14].max()


def test_volatility_clusters() -> None:
    r = np.abs(log_returns(series(), 30))
    assert min(autocorr(r, lag) for lag in (1, 5, 30, 60)) > 0.1


def test_pure_random_walk_has_no_return_autocorrelation() -> None:
    r = log_returns(series(signal=0.0), 30)
    assert max(abs(autocorr(r, lag)) for lag in range(1, 16)) < 0.02


def test_planted_signal_shows_as_short_term_mean_reversion() -> None:
    r = log_returns(series(signal=1.0), 30)
    assert np.mean([autocorr(r, lag) for lag in range(1, 11)]) < -0.02


def _features(close: np.ndarray) -> pd.DataFrame:
    logp = pd.Series(np.log(close.astype(float)))
    ret = logp.diff()
    cols = {f"ret_{h}": logp.diff(h) for h in (1, 3, 5, 10, 15, 30, 60)}
    cols["vol_15"] = ret.rolling(15).std()
    cols["vol_60"] = ret.rolling(60).std()
    return pd.DataFrame(cols)


def _auc(signal: float, horizon: int = 10, days: int = 20) -> float:
    s = series(signal=signal)
    s.ensure(days * BLOCK_MINUTES - 1)
    close = s.close[: days * BLOCK_MINUTES]
    x = _features(close)
    future = np.log(np.roll(close, -horizon) / close)
    y = (future > 0).astype(int)
    rows = np.arange(close.size)
    keep = (rows >= 60) & (rows < close.size - horizon)
    x, y = x[keep], y[keep]
    split = int(len(y) * 0.7)
    model = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, random_state=0)
    model.fit(x[:split], y[:split])
    return float(roc_auc_score(y[split:], model.predict_proba(x[split:])[:, 1]))


@pytest.mark.parametrize("horizon", [5, 15])
def test_gradient_boosting_learns_the_signal_only_when_planted(horizon: int) -> None:
    assert _auc(1.0, horizon) > 0.6
    assert abs(_auc(0.0, horizon) - 0.5) < 0.03
