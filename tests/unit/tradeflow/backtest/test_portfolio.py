"""Multi-symbol backtests: shared cash, exposure caps, missing candles, one-symbol identity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradeflow.backtest.engine import run_backtest
from tradeflow.backtest.portfolio import run_portfolio
from tradeflow.strategy import (
    CostSettings,
    ExitSettings,
    RiskSettings,
    SlippageSettings,
    TakeProfitTier,
)

NAN = float("nan")
MINUTE = 60_000
FREE = CostSettings(taker_bps=0, maker_bps=0, slippage=SlippageSettings(bps=0))


def flat_candles(prices, times=None) -> pd.DataFrame:
    p = np.asarray(prices, dtype=float)
    t = np.arange(len(p)) if times is None else np.asarray(times)
    return pd.DataFrame({"open_time": t.astype(np.int64) * MINUTE, "open": p, "high": p,
                         "low": p, "close": p})


def random_candles(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.005, n)))
    opens = np.r_[50, close[:-1]] * (1 + rng.normal(0, 0.001, n))
    return pd.DataFrame({
        "open_time": np.arange(n, dtype=np.int64) * MINUTE, "open": opens,
        "high": np.maximum(opens, close) * 1.003, "low": np.minimum(opens, close) * 0.997,
        "close": close,
    })


def test_one_symbol_portfolio_is_identical_to_the_single_backtest() -> None:
    candles = random_candles(1_500, 4)
    rng = np.random.default_rng(9)
    target = np.where(rng.random(1_500) < 0.05, rng.choice([0.0, 0.4, 1.0], 1_500), NAN)
    costs = CostSettings(taker_bps=10, maker_bps=2, slippage=SlippageSettings(
        kind="volatility", bps=1, volatility_multiplier=0.2, volatility_window=20))
    exits = ExitSettings(stop_loss_pct=1, trailing_stop_pct=1.5,
                         take_profit=(TakeProfitTier(pct=0.8, fraction=0.5),))
    risk = RiskSettings(max_position_fraction=0.7, max_total_exposure=0.9)
    single = run_backtest(candles, target, symbol="X/USDT", costs=costs, exits=exits, risk=risk)
    multi = run_portfolio({"X/USDT": candles}, {"X/USDT": target}, costs=costs, exits=exits,
                          risk=risk)
    assert len(single.fills) > 30
    assert np.array_equal(single.equity_curve, multi.equity_curve)
    pd.testing.assert_frame_equal(single.trades, multi.trades)
    pd.testing.assert_frame_equal(single.fills, multi.fills)
    assert single.metrics == multi.metrics


def test_shared_cash_goes_to_the_first_symbol_without_caps() -> None:
    candles = {"A/USDT": flat_candles([10] * 4), "B/USDT": flat_candles([20] * 4)}
    targets = {"A/USDT": [1.0, NAN, NAN, NAN], "B/USDT": [1.0, NAN, NAN, NAN]}
    r = run_portfolio(candles, targets, costs=FREE)
    assert r.position_matrix[1].tolist() == [1_000.0, 0.0]
    assert r.cash_curve.min() >= 0.0


def test_caps_split_exposure_at_decision_time() -> None:
    candles = {"A/USDT": flat_candles([10] * 4), "B/USDT": flat_candles([20] * 4)}
    targets = {"A/USDT": [1.0, NAN, NAN, NAN], "B/USDT": [1.0, NAN, NAN, NAN]}
    risk = RiskSettings(max_position_fraction=0.5, max_total_exposure=0.6)
    r = run_portfolio(candles, targets, costs=FREE, risk=risk)
    value = r.position_matrix[1] * np.array([10.0, 20.0])
    assert value.tolist() == pytest.approx([5_000.0, 1_000.0])


def test_sales_fund_purchases_at_the_same_open() -> None:
    candles = {"A/USDT": flat_candles([10, 10, 10, 12, 12]),
               "B/USDT": flat_candles([20, 20, 20, 20, 20])}
    targets = {"A/USDT": [1.0, NAN, 0.0, NAN, NAN], "B/USDT": [NAN, NAN, 1.0, NAN, NAN]}
    r = run_portfolio(candles, targets, costs=FREE)
    assert r.position_matrix[3].tolist() == [0.0, 500.0]
    fills = r.fills
    assert fills[["symbol", "side"]].values.tolist() == [
        ["A/USDT", "buy"], ["A/USDT", "sell"], ["B/USDT", "buy"]]


def test_a_missing_candle_delays_the_order_to_the_symbols_next_candle() -> None:
    candles = {"A/USDT": flat_candles([10] * 6),
               "B/USDT": flat_candles([20, 20, 25, 26], times=[0, 1, 4, 5])}
    targets = {"A/USDT": [NAN] * 6, "B/USDT": [NAN, 1.0, NAN, NAN]}
    r = run_portfolio(candles, targets, costs=FREE)
    buy = r.fills.iloc[0]
    assert (buy["symbol"], buy["time"], buy["price"]) == ("B/USDT", 4 * MINUTE, 25.0)
    assert np.isnan(r.close_matrix[2, 1])
    # A position is marked at its last close (20) while the symbol has no candles.
    held = run_portfolio(candles, {"A/USDT": [NAN] * 6, "B/USDT": [1.0, NAN, NAN, NAN]},
                         costs=FREE)
    assert held.position_matrix[:, 1].tolist() == [0, 500, 500, 500, 500, 500]
    assert held.equity_curve.tolist() == [10_000, 10_000, 10_000, 10_000, 12_500, 13_000]
